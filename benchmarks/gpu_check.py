"""GPU check: paper-profile training throughput on a KonIQ-sized synthetic set, then
``qfm predict`` throughput. Fits in ``--minutes`` on one GPU.

1. ``--images`` synthetic photos (default: KonIQ's count, at its protocol size) are written as
   JPEGs to a temporary folder by all cores in parallel (:func:`harness.synthetic_photos`).
2. Training: QFM-IQM's step (gate + matching objective; ``qfm.core.engine.train_one_epoch``, bf16
   autocast, AdamW, clip) over one epoch of ``IQADataset`` + ``TrainTransform`` batches from a
   DataLoader with ``--workers`` processes (in-memory cache off), for each configuration:

   * ViT (``qfm.paper.PAPER_PROFILE``'s model): the paper's batch and a large one, eager and
     ``torch.compile`` (backbone); channels-last: n/a for a ViT;
   * CNN (``--cnn``, default resnet50): the large batch, eager / channels-last /
     channels-last + ``torch.compile``.

   Each reports images/s over the epoch (after a warm-up of ``--warmup`` steps, timed apart:
   compilation happens there), the images/s of the same steps on one GPU-resident batch (the
   ceiling without data loading), ``fed_share`` = their ratio, the GPU's busy share sampled
   by ``nvidia-smi`` (``SAMPLE_MS``), and peak memory. An epoch is cut short (``partial``)
   when its share of the time budget runs out.
3. ``qfm predict`` on the GPU (default workers) on ``--predict-images`` of the photos ÷ the
   bare backbone (bf16) on the very same crops, already decoded: the same
   :func:`harness.predict_vs_backbone` as ``benchmarks/predict_throughput.py``.

Without CUDA it prints ``{"status": "no CUDA: nothing measured"}``, stores nothing (an earlier
GPU result is kept) and exits 0; ``--dry-run`` runs every path on the CPU with tiny models and
sizes (the test does) and stores nothing either.

    python benchmarks/gpu_check.py [--minutes M] [--images N] [--workers W] [--out FILE]
    python benchmarks/gpu_check.py --dry-run        # CPU, seconds

Result: ``benchmarks/results/gpu_check.json``, read by the book's Performance page.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from harness import (Record, add_out_argument, predict_vs_backbone, synchronize,
                       synthetic_photos)
from qfm.config import RunConfig, override
from qfm.data.dataset import IQADataset
from qfm.data.facts import FACTS
from qfm.data.transforms import TrainTransform
from qfm.core.engine import param_groups, train_one_epoch
from qfm.losses.qfm import QFMObjective
from qfm.models import build_model
from qfm.paper import PAPER_PROFILE, profile_section

VIT = {**profile_section("model"), "weights": "none"}
TINY_VIT = {"backbone": "test_vit", "img_size": 32, "heads": 4, "dim": 32,
            "backbone_kwargs": {"patch_size": 8}}
KONIQ = FACTS["koniq10k"]  # the synthetic set's count and size
SAMPLE_MS = 200  # nvidia-smi's sampling period
PREDICT_TARGET = 0.8  # predict ÷ backbone, at least (as benchmarks/predict_throughput.py)


class GpuSampler:
    """``nvidia-smi`` utilisation samples (every ``SAMPLE_MS``) while in a ``with`` block."""

    def __init__(self, enabled: bool = True):
        self.samples: list[float] = []
        self.proc, self.enabled = None, enabled

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", str(SAMPLE_MS), "-i", str(torch.cuda.current_device())],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except (OSError, RuntimeError, AssertionError):  # no nvidia-smi / no CUDA (dry run)
            return self
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line.strip()) / 100.0)
            except ValueError:
                pass

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()

    def busy_share(self) -> float | None:
        return round(statistics.mean(self.samples), 3) if self.samples else None


class Budgeted:
    """Iterate ``loader`` for at most ``limit`` batches or until ``deadline`` (perf_counter)."""

    def __init__(self, loader, deadline: float, limit: int | None = None):
        self.loader, self.deadline, self.limit = loader, deadline, limit
        self.batches = self.images = 0

    def __iter__(self):
        for batch in self.loader:
            yield batch
            self.batches += 1
            self.images += len(batch["mos"])
            if (self.limit and self.batches >= self.limit) or time.perf_counter() > self.deadline:
                return


def train_config(name: str, model_over: dict, batch: int, compile_: bool, channels_last: bool,
                 loader, device: torch.device, seconds: float, args) -> dict:
    """Warm-up, one (possibly cut) epoch and the GPU-resident ceiling of one configuration."""
    t_start = time.perf_counter()
    cfg = override(RunConfig(), {**{f"model.{k}": v for k, v in model_over.items()},
                                 "model.weights": "none", "model.gate": True,
                                 "qfm.enabled": True})
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    qfm_objective = QFMObjective(cfg.qfm)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def objective(m, b):  # the training objective, on channels-last input where asked
        return qfm_objective(m, {**b, "image": b["image"].contiguous(memory_format=fmt)})

    if compile_:
        model.backbone = torch.compile(model.backbone)  # features() → the compiled backbone
    opt = torch.optim.AdamW(param_groups(model, 0.05), lr=2e-4)
    for g in opt.param_groups:
        g["initial_lr"] = 2e-4
    kw = dict(lr_fn=lambda s: 1.0, start_step=0, clip_grad=5.0, amp=True, progress=False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    deadline = t_start + seconds
    synchronize(device)
    t = time.perf_counter()
    train_one_epoch(model, Budgeted(loader, deadline, args.warmup), opt, objective, device, **kw)
    synchronize(device)
    warm_s = time.perf_counter() - t
    # the ceiling: the same steps on one batch already on the device (no data loading)
    fixed = next(iter(loader))
    fixed = {k: v.to(device) if torch.is_tensor(v) else v for k, v in fixed.items()}
    reps = max(2, args.warmup)
    synchronize(device)
    t = time.perf_counter()
    train_one_epoch(model, [fixed] * reps, opt, objective, device, **kw)
    synchronize(device)
    ceiling = reps * batch / (time.perf_counter() - t)
    run = Budgeted(loader, deadline)
    with GpuSampler(device.type == "cuda") as gpu:
        synchronize(device)
        t = time.perf_counter()
        train_one_epoch(model, run, opt, objective, device, **kw)
        synchronize(device)
        epoch_s = time.perf_counter() - t
    ips = run.images / epoch_s if epoch_s > 0 else float("nan")
    return {"config": name, "backbone": cfg.model.backbone, "img_size": cfg.model.img_size,
            "batch": batch, "compile": compile_,
            "channels_last": channels_last if "vit" not in cfg.model.backbone else "n/a (ViT)",
            "warmup_steps_seconds": round(warm_s, 2), "epoch_images": run.images,
            "partial": run.images < len(loader.dataset) - batch, "epoch_seconds":
            round(epoch_s, 2), "images_per_s": round(ips, 1),
            "images_per_s_gpu_resident": round(ceiling, 1),
            "fed_share": round(ips / ceiling, 3), "gpu_busy_share_nvidia_smi":
            gpu.busy_share(), "peak_memory_gib": round(
                torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
            if device.type == "cuda" else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=8.0, help="time budget, all included")
    p.add_argument("--images", type=int, default=KONIQ.expected, help="synthetic photos")
    p.add_argument("--size", default="x".join(map(str, KONIQ.size)), help="photo size WxH")
    p.add_argument("--workers", type=int, default=None, help="DataLoader processes "
                   "(default: cores - 1, at most 16)")
    p.add_argument("--cnn", default="resnet50", help="CNN backbone for channels-last")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per configuration")
    p.add_argument("--predict-images", type=int, default=1000)
    p.add_argument("--predict-batch", type=int, default=64)
    p.add_argument("--predict-repeats", type=int, default=3)
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, tiny models and sizes: exercise every path (tests); stores nothing")
    add_out_argument(p, "gpu_check")
    args = p.parse_args()
    record = Record("gpu_check")
    t0 = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    out = {"dry_run": args.dry_run}
    if not torch.cuda.is_available() and not args.dry_run:
        record.finish({**out, "status": "no CUDA: nothing measured"}, None)  # keep the last
        return
    if args.dry_run:
        device = torch.device("cpu")
        args.images, args.size, args.predict_images = min(args.images, 32), "96x72", 8
        args.warmup, args.predict_repeats, args.predict_batch = 2, 1, 4
        vit, cnn, big = TINY_VIT, {"backbone": "test_resnet", "img_size": 32, "heads": 4,
                                   "dim": 32}, 16
        batches, compiles = (8,), (False,)
    else:
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        out.update(cuda=torch.version.cuda)
        vit, cnn, big = VIT, {"backbone": args.cnn, "img_size": VIT["img_size"],
                              "heads": VIT["heads"], "dim": 384}, 64
        batches, compiles = (PAPER_PROFILE["train.batch_size"], big), (False, True)
    workers = args.workers if args.workers is not None else min(16, max(1, cores - 1))
    args.workers = 0 if args.dry_run else workers
    out["workers"] = args.workers
    w, h = (int(v) for v in args.size.lower().split("x"))
    # (name, model, batch, torch.compile, channels-last); compile at the large batch only
    configs = [(f"vit_b{b}", vit, b, False, False) for b in batches]
    configs += [(f"vit_b{big}_compile", vit, big, True, False)] if True in compiles else []
    configs += [(f"cnn_b{big}", cnn, big, False, False),
                (f"cnn_b{big}_channels_last", cnn, big, False, True)]
    configs += [(f"cnn_b{big}_channels_last_compile", cnn, big, True, True)] \
        if True in compiles else []
    with tempfile.TemporaryDirectory(prefix="qfm-gpu-check-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        files = synthetic_photos(folder, args.images, (w, h), procs=cores)
        mos = np.random.default_rng(0).random(len(files)).astype(np.float32)
        table = pd.DataFrame({"image": [Path(f).name for f in files], "mos": mos})
        out["synthetic_set"] = {"images": args.images, "size": [w, h],
                                "seconds": round(time.perf_counter() - t, 1)}
        loaders = {}
        for _, m, b, _, _ in configs:
            key = (b, m["img_size"])
            if key not in loaders:
                ds = IQADataset(table, folder, TrainTransform(m["img_size"]), cache=False)
                loaders[key] = DataLoader(
                    ds, batch_size=b, shuffle=True, drop_last=True, num_workers=args.workers,
                    pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
                    prefetch_factor=4 if args.workers else None)
        budget = args.minutes * 60.0
        reserve = 0.15 * budget if not args.dry_run else 0.0  # for the predict check
        out["training"] = []
        for i, (name, m, b, c, cl) in enumerate(configs):
            left = budget - reserve - (time.perf_counter() - t0)
            share = left / (len(configs) - i)
            if share < 20 and not args.dry_run:
                out["training"].append({"config": name, "skipped": "time budget"})
                continue
            try:
                out["training"].append(train_config(name, m, b, c, cl, loaders[(b, m[
                    "img_size"])], device, share if not args.dry_run else 1e9, args))
            except Exception as err:  # one failing configuration (e.g. compile) is reported
                out["training"].append({"config": name, "error": f"{type(err).__name__}: "
                                                                 f"{str(err)[:300]}"})
            print(json.dumps(out["training"][-1]), file=sys.stderr, flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
        del loaders
        cfg = override(RunConfig(), {**{f"model.{k}": v for k, v in vit.items()},
                                     "model.weights": "none", "model.gate": True})
        try:
            out["predict"] = {**predict_vs_backbone(
                cfg, files[:args.predict_images], folder, device, batch=args.predict_batch,
                repeats=args.predict_repeats), "target_ratio": PREDICT_TARGET}
        except Exception as err:
            out["predict"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    record.finish(out, None if args.dry_run else args.out)


if __name__ == "__main__":
    main()
