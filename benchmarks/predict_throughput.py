"""``qfm predict`` throughput ÷ bare backbone throughput on the same crops.

For each profile — the CPU default (``params.yaml``'s ``model`` and ``train`` sections as they
stand: the Lite0 upstream with its shipped ImageNet weights, mapped by ``qfm weights`` into a
temporary folder) and the paper's (``qfm.paper.PAPER_PROFILE``'s model) —
:func:`harness.predict_vs_backbone` saves a checkpoint and times ``qfm predict`` scoring synthetic JPEG photos (decoding in
DataLoader workers, batching, multi-crop averaging, the score table) against the backbone
alone (``forward_features``) on the very same crops, already decoded, with as many threads as
predict leaves its model. Runs alternate so machine load hits both alike; the ratio is the
median of the per-pair ratios. Target: predict ÷ backbone ≥ 0.8. Also reported: decoding +
cropping alone in one process, which bounds how far workers can hide it.

    .venv/bin/python benchmarks/predict_throughput.py [--images N] [--size 512x384]
        [--repeats 3] [--workers N] [--profiles default paper] [--out FILE]

CPU, 2 cores: minutes for the default, half an hour for the paper profile. A profile left out
of ``--profiles`` keeps its entry of the previous result file, marked ``"carried_over": true``
with the date it was measured, so that the file always holds both. The measured numbers live in
``benchmarks/results/predict_throughput.json`` (with the machine's cores and load, the ratio
and the goal) and on the book's Performance page, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from harness import (Record, add_out_argument, cpu_default, predict_vs_backbone,
                     shipped_weights, synthetic_photos)
from qfm.config import RunConfig, override
from qfm.paper import profile_section

PROFILES = {  # model overrides of the base config, photos to score (start-up costs small)
    "default": (None, 256),  # params.yaml's model and train sections as they stand
    "paper": ({**profile_section("model"), "weights": "none"}, 24),
}
TARGET = 0.8  # predict ÷ backbone, at least


def profile_config(name: str) -> RunConfig:
    """The configuration a profile is timed with."""
    overrides = PROFILES[name][0]
    if overrides is None:
        return cpu_default()
    return override(RunConfig(), {f"model.{k}": v for k, v in overrides.items()})


def carried_over(out: str | None, names: list[str]) -> dict:
    """The previous result file's entries of the profiles not measured in this run."""
    if out is None or out == "-" or not Path(out).is_file():
        return {}
    try:
        old = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return {}
    when = old.get("machine", {}).get("finished")
    return {k: {**v, "carried_over": True, "measured": v.get("measured", when)}
            for k, v in old.get("profiles", {}).items() if k in PROFILES and k not in names}


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
           "target_ratio": TARGET, "goal": f"predict ÷ backbone >= {TARGET}", "profiles": {}}
    for name in args.profiles:
        cfg = profile_config(name)
        with tempfile.TemporaryDirectory() as tmp:
            files = synthetic_photos(tmp, args.images or PROFILES[name][1], (w, h))
            with shipped_weights(cfg, tmp):
                res = predict_vs_backbone(
                    cfg, files, tmp, torch.device("cpu"), batch=args.batch,
                    repeats=args.repeats, workers=workers,
                    backbone_threads=max(1, min(torch.get_num_threads(), cores - workers)))
        out["profiles"][name] = {"weights": cfg.model.weights, "tokens": cfg.model.tokens,
                                 **res, "meets_goal": res["ratio_predict_over_backbone"]
                                 >= TARGET}
    out["profiles"].update(carried_over(args.out, args.profiles))
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
