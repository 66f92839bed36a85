"""Data-loader throughput ÷ model consumption at the paper profile, in one run.

The question: can the data loader feed training? The loader side is ``qfm``'s own training
input path — :class:`qfm.data.dataset.IQADataset` with :class:`TrainTransform` (random crop
+ flip, normalised tensor) in a ``DataLoader`` at the profile's batch size — on synthetic
KonIQ-like photos (1024×768 JPEGs, :func:`harness.synthetic_photos`), read three ways:

* ``no_cache``: the originals, resized to KonIQ's protocol size 512×384 on the fly
  (decode 1024×768 → bicubic resize → crop), what training must do without the cache;
* ``cache_png`` / ``cache_jpg``: the copies :func:`qfm.data.cache.build_cache` writes
  (512×384, PNG = its default, or JPEG q95), decoded → crop.

The in-memory image cache (``train.cache``) is off: at KonIQ's size it would not fit, and
with workers it is rebuilt every epoch anyway. The model side is one training step of the
paper profile's model (``qfm.paper.PAPER_PROFILE``: deit3_small_patch16_224, decoder at the
backbone's width; :func:`harness.train_step`, as ``benchmarks/step_cost.py``) on a batch of
the profile's size, in images/s. Rounds alternate (model step, each loader epoch, model step, …) so machine
load hits both alike; each ratio is the median of its per-round ratios.

Workers: ``--workers`` decoding processes (default 1) and the model on the cores they leave
(``cores - workers``, at least 1) — how training shares a small machine. Target: loader ÷
model ≥ 2 with the cache. Decoding in one process (no workers) is reported too.

    .venv/bin/python benchmarks/loader_throughput.py [--images 64] [--rounds 5] [--workers 1]
        [--out FILE]

CPU, 2 busy cores: minutes (a paper-profile step on one thread dominates).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

from harness import Record, add_out_argument, synthetic_photos, train_step
from qfm.config import ModelConfig
from qfm.data.cache import build_cache
from qfm.data.dataset import IQADataset
from qfm.data.facts import FACTS
from qfm.data.transforms import TrainTransform
from qfm.core.engine import param_groups, regression_objective
from qfm.models import build_model
from qfm.paper import PAPER_PROFILE, profile_section

PAPER = {**profile_section("model"), "weights": "none"}
KONIQ_SIZE = FACTS["koniq10k"].size  # KonIQ-10k's protocol size
PHOTO_SIZE = (1024, 768)  # KonIQ-10k's released size
TARGET = 2.0  # loader ÷ model with the cache, at least


class ResizeThen:
    """Resize to a fixed size (bicubic), then apply ``transform`` (no-cache path)."""

    def __init__(self, size: tuple[int, int], transform):
        self.size, self.transform = size, transform

    def __call__(self, im: Image.Image) -> torch.Tensor:
        return self.transform(im.resize(self.size, Image.Resampling.BICUBIC))


def loaders(folder: Path, files: list[str], size: int, batch: int, workers: int) -> dict:
    """One DataLoader per way of reading the photos (see module docstring)."""
    table = pd.DataFrame({"image": [Path(f).name for f in files],
                          "mos": torch.rand(len(files)).tolist()})
    crop = TrainTransform(size)
    sets = {"no_cache": IQADataset(table, folder, ResizeThen(KONIQ_SIZE, crop))}
    for fmt in ("png", "jpg"):
        out = folder / f"cache_{fmt}"
        # build_cache resizes to the protocol size of the named set (KonIQ: 512×384)
        cached = build_cache("koniq10k", table, folder, out, fmt=fmt, workers=2)
        sets[f"cache_{fmt}"] = IQADataset(cached, out, crop)
    return {k: DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                          persistent_workers=workers > 0, drop_last=False)
            for k, ds in sets.items()}


def epoch_seconds(loader) -> float:
    """Wall time of one pass over ``loader`` (persistent workers: no start-up inside)."""
    t = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64, help="synthetic 1024×768 photos")
    p.add_argument("--batch", type=int, default=PAPER_PROFILE["train.batch_size"],
                   help="default: the paper profile's")
    p.add_argument("--rounds", type=int, default=5, help="timed (model, loaders) rounds")
    p.add_argument("--steps", type=int, default=1, help="training steps per round")
    p.add_argument("--workers", type=int, default=1, help="DataLoader decoding processes")
    p.add_argument("--backbone", default=PAPER["backbone"], help="timm name (tests: tiny)")
    p.add_argument("--img-size", type=int, default=PAPER["img_size"])
    add_out_argument(p, "loader_throughput")
    args = p.parse_args()
    record = Record("loader_throughput")
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cores - args.workers)))
    model_cfg = ModelConfig(**{**PAPER, "backbone": args.backbone, "img_size": args.img_size})
    if args.backbone != PAPER["backbone"]:
        model_cfg = ModelConfig(backbone=args.backbone, img_size=args.img_size, dim=32,
                                heads=4, weights="none",
                                backbone_kwargs={"patch_size": 8} if "vit" in args.backbone
                                else {})
    torch.manual_seed(0)
    model = build_model(model_cfg).train()
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4)
    batch = {"image": torch.randn(args.batch, 3, args.img_size, args.img_size),
             "mos": torch.rand(args.batch), "index": torch.arange(args.batch)}
    out = {"torch_threads_model": torch.get_num_threads(),
           "backbone": args.backbone, "img_size": args.img_size, "batch": args.batch,
           "photos": args.images, "photo_size": list(PHOTO_SIZE),
           "protocol_size": list(KONIQ_SIZE), "workers": args.workers, "rounds": args.rounds,
           "steps_per_round": args.steps, "target_ratio_with_cache": TARGET}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = synthetic_photos(folder, args.images, PHOTO_SIZE)
        t = time.perf_counter()
        lds = loaders(folder, files, args.img_size, args.batch, args.workers)
        out["cache_build_seconds_both_formats"] = round(time.perf_counter() - t, 2)
        # decoding in this process alone (no workers), once: what one core can do
        one = {k: round(len(files) / epoch_seconds(DataLoader(ld.dataset, args.batch)), 1)
               for k, ld in lds.items()}
        for ld in lds.values():  # warm-up: workers started, files in the page cache
            epoch_seconds(ld)
        train_step(model, opt, regression_objective, batch, 5.0)
        model_s, load_s = [], {k: [] for k in lds}
        for _ in range(args.rounds):
            t = time.perf_counter()
            for _ in range(args.steps):
                train_step(model, opt, regression_objective, batch, 5.0)
            model_s.append((time.perf_counter() - t) / args.steps)
            for k, ld in lds.items():
                load_s[k].append(epoch_seconds(ld))
        del lds
    model_ips = [args.batch / s for s in model_s]
    out["model_images_per_s"] = round(statistics.median(model_ips), 2)
    out["model_step_s"] = round(statistics.median(model_s), 3)
    out["loaders"] = {}
    for k, secs in load_s.items():
        ips = [len(files) / s for s in secs]
        out["loaders"][k] = {
            "images_per_s": round(statistics.median(ips), 1),
            "images_per_s_one_process": one[k],
            "ratio_loader_over_model": round(statistics.median(
                a / b for a, b in zip(ips, model_ips)), 2)}
    out["ratio_with_cache"] = out["loaders"]["cache_png"]["ratio_loader_over_model"]
    out["ratio_without_cache"] = out["loaders"]["no_cache"]["ratio_loader_over_model"]
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
