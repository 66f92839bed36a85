"""``qfm predict`` throughput ÷ bare backbone throughput on the same crops.

For each profile — the CPU default (``qfm.config.ModelConfig()`` as it stands) and the
paper's (``qfm.paper.PAPER_PROFILE``'s model) — :func:`qfm.bench.predict_vs_backbone` saves a
random-weight checkpoint and times ``qfm predict`` scoring synthetic JPEG photos (decoding in
DataLoader workers, batching, multi-crop averaging, the score table) against the backbone
alone (``forward_features``) on the very same crops, already decoded, with as many threads as
predict leaves its model. Runs alternate so machine load hits both alike; the ratio is the
median of the per-pair ratios. Target: predict ÷ backbone ≥ 0.8. Also reported: decoding +
cropping alone in one process, which bounds how far workers can hide it.

    .venv/bin/python benchmarks/predict_throughput.py [--images N] [--size 512x384]
        [--repeats 3] [--workers N] [--profiles default paper] [--out FILE]

CPU, 2 cores: minutes. The measured numbers live in
``benchmarks/results/predict_throughput.json`` (with the machine's cores and load) and on the
book's Performance page, not here.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from qfm.bench import Record, add_out_argument, predict_vs_backbone, synthetic_photos
from qfm.config import RunConfig, override
from qfm.paper import profile_section

PROFILES = {  # model overrides, photos to score (enough that start-up costs are small)
    "default": ({}, 256),  # whatever ModelConfig() is today
    "paper": ({**profile_section("model"), "weights": "none"}, 24),
}
TARGET = 0.8  # predict ÷ backbone, at least


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=0, help="photos to score (0: per profile, "
                   "256 default / 24 paper)")
    p.add_argument("--size", default="512x384", help="photo size WxH")
    p.add_argument("--batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--repeats", type=int, default=3, help="timed (predict, backbone) pairs")
    p.add_argument("--workers", type=int, default=None, help="predict's decoding workers "
                   "(default: predict's own, half the cores)")
    p.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    add_out_argument(p, "predict_throughput")
    args = p.parse_args()
    record = Record("predict_throughput")
    w, h = (int(v) for v in args.size.lower().split("x"))
    cores = len(os.sched_getaffinity(0))
    workers = min(4, cores // 2) if args.workers is None else args.workers  # predict's default
    out = {"photo_size": [w, h], "batch": args.batch, "repeats": args.repeats,
           "target_ratio": TARGET, "profiles": {}}
    for name in args.profiles:
        overrides, n = PROFILES[name]
        cfg = override(RunConfig(), {f"model.{k}": v for k, v in overrides.items()})
        with tempfile.TemporaryDirectory() as tmp:
            files = synthetic_photos(tmp, args.images or n, (w, h))
            out["profiles"][name] = predict_vs_backbone(
                cfg, files, tmp, torch.device("cpu"), batch=args.batch, repeats=args.repeats,
                workers=workers, backbone_threads=max(1, min(torch.get_num_threads(),
                                                             cores - workers)))
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
