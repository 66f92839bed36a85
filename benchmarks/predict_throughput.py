"""``qfm predict`` throughput ÷ bare backbone throughput on the same crops (prints JSON).

For each profile — the CPU default (``qfm.config.ModelConfig()`` as it stands) and the
paper's (deit3_small_patch16_224 at 224, 6 heads) — a random-weight checkpoint is saved and
``qfm.predict.score_files`` scores a folder of synthetic JPEG photos (decoding in DataLoader
workers, batching, multi-crop averaging, CSV-ready table). The reference is the backbone
alone (``forward_features``) on the very same crops, already decoded and batched. Runs
alternate (predict, backbone, predict, …) so machine load hits both alike; the ratio is the
median of the per-pair ratios. Target: predict ÷ backbone ≥ 0.8. Also reported: decoding +
cropping alone in one process, which bounds how far workers can hide it.

    .venv/bin/python benchmarks/predict_throughput.py [--images N] [--size 512x384]
        [--repeats 3] [--workers N] [--profiles default paper]

CPU, 2 cores: a few minutes. The measured numbers live in
``benchmarks/results/predict_throughput.json`` (with the machine's cores and load) and on the
book's Performance page, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from qfm.checkpoint import save_tensors
from qfm.config import ModelConfig, RunConfig, to_dict
from qfm.model import build_model
from qfm.predict import ImageFiles, score_files

PROFILES = {  # model overrides, photos to score (enough that start-up costs are small)
    "default": ({}, 256),  # whatever ModelConfig() is today
    "paper": ({"backbone": "deit3_small_patch16_224", "img_size": 224, "heads": 6, "dim": 0},
              24),
}


def make_photos(folder: Path, n: int, w: int, h: int) -> list[str]:
    """Synthetic JPEG photos: smooth gradients plus texture (decode cost of real photos)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    files = []
    for i in range(n):
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), np.sin(4 * (xx + yy))], -1)
        arr = np.clip(127 + 90 * base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        files.append(str(folder / f"photo_{i:03d}.jpg"))
        Image.fromarray(arr).save(files[-1], quality=90)
    return files


def bench_profile(name: str, overrides: dict, files: list[str], folder: Path, args) -> dict:
    """Time predict and the bare backbone on one profile.

    The backbone runs with as many threads as predict gives its model (the cores its
    decoding workers leave free) and, for reference, with all of torch's threads.
    """
    cfg = RunConfig()
    cfg.model = ModelConfig(**{**to_dict(cfg.model), **overrides})
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    ckpt = folder / f"{name}.safetensors"
    save_tensors(model.state_dict(), ckpt, {"config": to_dict(cfg), "dataset": "world",
                                            "label_scale": {"offset": 0.0, "scale": 1.0}})
    size, k = cfg.model.img_size, cfg.train.test_crops
    ds = ImageFiles(files, size, k)
    all_threads = torch.get_num_threads()
    model_threads = max(1, min(all_threads, args.cores - args.workers))
    torch.set_num_threads(1)  # as in a decoding worker
    t0 = time.perf_counter()
    crops = torch.stack([ds[i][1] for i in range(len(ds))])  # (N, K, 3, S, S)
    decode_s = time.perf_counter() - t0
    net = model.backbone.net

    def run_predict() -> float:
        torch.set_num_threads(all_threads)  # predict sets its own budget
        t = time.perf_counter()
        table = score_files([str(folder / "*.jpg")], ckpt, batch_size=args.batch, device="cpu",
                            workers=args.workers, progress=False)
        assert (table["error"] == "").all() and len(table) == len(files)
        return time.perf_counter() - t

    @torch.no_grad()
    def run_backbone(threads: int) -> float:
        torch.set_num_threads(threads)
        t = time.perf_counter()
        for b in range(0, len(crops), args.batch):
            net.forward_features(crops[b:b + args.batch].flatten(0, 1))
        return time.perf_counter() - t

    run_predict(), run_backbone(model_threads)  # warm-up
    pred_s, back_s, back_all_s = [], [], []
    for _ in range(args.repeats):
        pred_s.append(run_predict())
        back_s.append(run_backbone(model_threads))
        back_all_s.append(run_backbone(all_threads))
    torch.set_num_threads(all_threads)
    n = len(files)
    return {"backbone": cfg.model.backbone, "img_size": size, "crops_per_image": k,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "images": n, "predict_workers": args.workers, "model_threads": model_threads,
            "predict_images_per_s": round(n / statistics.median(pred_s), 2),
            "backbone_images_per_s": round(n / statistics.median(back_s), 2),
            f"backbone_images_per_s_{all_threads}_threads":
                round(n / statistics.median(back_all_s), 2),
            "decode_crop_images_per_s_one_process": round(n / decode_s, 1),
            "ratio_predict_over_backbone": round(statistics.median(
                b / p for p, b in zip(pred_s, back_s)), 3),
            f"ratio_predict_over_backbone_{all_threads}_threads": round(statistics.median(
                b / p for p, b in zip(pred_s, back_all_s)), 3)}


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
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    args.cores = len(os.sched_getaffinity(0))
    if args.workers is None:
        args.workers = min(4, args.cores // 2)  # predict's CPU default
    out = {"benchmark": "predict_throughput", "cpu_cores": args.cores,
           "load_average_1min": round(os.getloadavg()[0], 2),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "machine": platform.machine(), "photo_size": [w, h], "batch": args.batch,
           "repeats": args.repeats, "target_ratio": 0.8, "profiles": {}}
    for name in args.profiles:
        overrides, n = PROFILES[name]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            files = make_photos(folder, args.images or n, w, h)
            out["profiles"][name] = bench_profile(name, overrides, files, folder, args)
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
