"""GPU check: paper-profile training throughput on a KonIQ-sized synthetic set, then
``qfm predict`` throughput (prints JSON). Fits ``--minutes`` (default 8) on one H100.

1. ``--images`` synthetic photos (default 10,000 at 512×384, KonIQ's protocol size) are
   written as JPEGs to a temporary folder by all cores in parallel.
2. Training: QFM-IQM's step (gate + matching objective; ``qfm.engine.train_one_epoch``, bf16
   autocast, AdamW, clip) over one epoch of ``IQADataset`` + ``TrainTransform`` batches from a
   DataLoader with ``--workers`` processes (in-memory cache off), for each configuration:

   * ViT (deit3_small_patch16_224, 224, decoder at its width, 6 heads): batch 16 (the
     paper's) and 64, eager and ``torch.compile`` (backbone); channels-last: n/a for a ViT;
   * CNN (``--cnn``, default resnet50, 224): batch 64, eager / channels-last /
     channels-last + ``torch.compile``.

   Each reports images/s over the epoch (after a warm-up of ``--warmup`` steps, timed apart:
   compilation happens there), the images/s of the same steps on one GPU-resident batch (the
   ceiling without data loading), ``fed_share`` = their ratio, the GPU's busy share sampled
   by ``nvidia-smi`` every 200 ms, and peak memory. An epoch is cut short (``partial``) when
   its share of the time budget runs out.
3. ``qfm predict`` (``qfm.predict.score_files`` on the GPU, default workers) on
   ``--predict-images`` of the photos ÷ the bare backbone (``forward_features``, bf16) on the
   very same crops, already decoded (target ≥ 0.8, as ``benchmarks/predict_throughput.py``).

Without CUDA it prints ``{"status": "no CUDA: nothing measured"}`` and exits 0;
``--dry-run`` runs every path on the CPU with tiny models and sizes (the test does).

    python benchmarks/gpu_check.py [--minutes 8] [--images 10000] [--workers 15]
    python benchmarks/gpu_check.py --dry-run        # CPU, seconds

H100: about 8 minutes. Result: one JSON object; the book's Performance page reads it from
``benchmarks/results/gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

VIT = {"backbone": "deit3_small_patch16_224", "img_size": 224, "heads": 6, "dim": 0}
TINY_VIT = {"backbone": "test_vit", "img_size": 32, "heads": 4, "dim": 32,
            "backbone_kwargs": {"patch_size": 8}}


def _photo(job: tuple[str, int, int, int]) -> None:
    """One synthetic photo: smooth random colour field + grain, JPEG of random quality."""
    path, w, h, seed = job
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    arr = np.asarray(low.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    arr = arr + rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
        path, quality=int(rng.integers(60, 96)))


def make_set(folder: Path, n: int, w: int, h: int, procs: int) -> pd.DataFrame:
    """Write ``n`` photos in parallel; return their canonical table (random MOS)."""
    jobs = [(str(folder / f"im_{i:05d}.jpg"), w, h, i) for i in range(n)]
    with ProcessPoolExecutor(max(1, procs)) as pool:
        list(pool.map(_photo, jobs, chunksize=64))
    mos = np.random.default_rng(0).random(n).astype(np.float32)
    return pd.DataFrame({"image": [Path(j[0]).name for j in jobs], "mos": mos})


class GpuSampler:
    """``nvidia-smi`` utilisation samples (every 200 ms) while in a ``with`` block."""

    def __init__(self, enabled: bool = True):
        self.samples: list[float] = []
        self.proc, self.enabled = None, enabled

    def __enter__(self):
        if not self.enabled:
            return self
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                 "-lms", "200", "-i", str(torch.cuda.current_device())],
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_config(name: str, model_over: dict, batch: int, compile_: bool, channels_last: bool,
                 loader, device: torch.device, seconds: float, args) -> dict:
    """Warm-up, one (possibly cut) epoch and the GPU-resident ceiling of one configuration."""
    from qfm.config import RunConfig, override
    from qfm.engine import param_groups, train_one_epoch
    from qfm.matching import QFMObjective
    from qfm.model import build_model

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
    _sync(device)
    t = time.perf_counter()
    train_one_epoch(model, Budgeted(loader, deadline, args.warmup), opt, objective, device, **kw)
    _sync(device)
    warm_s = time.perf_counter() - t
    # the ceiling: the same steps on one batch already on the device (no data loading)
    fixed = next(iter(loader))
    fixed = {k: v.to(device) if torch.is_tensor(v) else v for k, v in fixed.items()}
    reps = max(2, args.warmup)
    _sync(device)
    t = time.perf_counter()
    train_one_epoch(model, [fixed] * reps, opt, objective, device, **kw)
    _sync(device)
    ceiling = reps * batch / (time.perf_counter() - t)
    run = Budgeted(loader, deadline)
    with GpuSampler(device.type == "cuda") as gpu:
        _sync(device)
        t = time.perf_counter()
        train_one_epoch(model, run, opt, objective, device, **kw)
        _sync(device)
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


def predict_check(folder: Path, files: list[str], model_over: dict, device: torch.device,
                  args) -> dict:
    """``qfm predict`` throughput ÷ the bare backbone's on the same crops."""
    from qfm.checkpoint import save_tensors
    from qfm.config import RunConfig, override, to_dict
    from qfm.model import build_model
    from qfm.predict import ImageFiles, collate, score_files

    cfg = override(RunConfig(), {**{f"model.{k}": v for k, v in model_over.items()},
                                 "model.weights": "none", "model.gate": True})
    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    ckpt = folder / "check.safetensors"
    save_tensors(model.state_dict(), ckpt, {"config": to_dict(cfg), "dataset": "world",
                                            "label_scale": {"offset": 0.0, "scale": 1.0}})
    sub = folder / "predict"  # the photos to score, as a folder (what users pass)
    sub.mkdir()
    for f in files:
        os.link(f, sub / Path(f).name)
    k, size = cfg.train.test_crops, cfg.model.img_size
    dl = DataLoader(ImageFiles(files, size, k), batch_size=args.predict_batch,
                    collate_fn=collate, num_workers=min(8, args.workers))
    crops = [b["image"] for b in dl]  # (B, K, 3, S, S) each, decoded once
    net = model.backbone.net.to(device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    @torch.no_grad()
    def backbone() -> float:
        _sync(device)
        t = time.perf_counter()
        with amp:
            for c in crops:
                net.forward_features(c.flatten(0, 1).to(device, non_blocking=True))
        _sync(device)
        return time.perf_counter() - t

    def predict() -> float:
        t = time.perf_counter()
        table = score_files([str(sub)], ckpt, batch_size=args.predict_batch,
                            device=device.type, progress=False)
        assert (table["error"] == "").all() and len(table) == len(files)
        return time.perf_counter() - t

    backbone(), predict()  # warm-up (cuDNN/cuBLAS choices, page cache)
    pred_s, back_s = [], []
    for _ in range(args.predict_repeats):
        pred_s.append(predict())
        back_s.append(backbone())
    n = len(files)
    return {"backbone": cfg.model.backbone, "images": n, "crops_per_image": k,
            "batch": args.predict_batch, "predict_images_per_s":
            round(n / statistics.median(pred_s), 1),
            "backbone_images_per_s": round(n / statistics.median(back_s), 1),
            "ratio_predict_over_backbone": round(statistics.median(
                b / p for p, b in zip(pred_s, back_s)), 3), "target_ratio": 0.8}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=8.0, help="time budget, all included")
    p.add_argument("--images", type=int, default=10_000, help="synthetic photos (KonIQ: 10k)")
    p.add_argument("--size", default="512x384", help="photo size WxH")
    p.add_argument("--workers", type=int, default=None, help="DataLoader processes "
                   "(default: cores - 1, at most 16)")
    p.add_argument("--cnn", default="resnet50", help="CNN backbone for channels-last")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per configuration")
    p.add_argument("--predict-images", type=int, default=1000)
    p.add_argument("--predict-batch", type=int, default=64)
    p.add_argument("--predict-repeats", type=int, default=3)
    p.add_argument("--dry-run", action="store_true",
                   help="CPU, tiny models and sizes: exercise every path (tests)")
    args = p.parse_args()
    t0 = time.perf_counter()
    cores = len(os.sched_getaffinity(0))
    out = {"benchmark": "gpu_check", "cpu_cores": cores, "torch": torch.__version__,
           "load_average_before": [round(x, 2) for x in os.getloadavg()],
           "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
           "dry_run": args.dry_run}
    if not torch.cuda.is_available() and not args.dry_run:
        print(json.dumps({**out, "status": "no CUDA: nothing measured"}, indent=2))
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
        out.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda)
        vit, cnn, big = VIT, {"backbone": args.cnn, "img_size": 224, "heads": 6,
                              "dim": 384}, 64
        batches, compiles = (16, 64), (False, True)
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
    from qfm.data.dataset import IQADataset
    from qfm.data.transforms import TrainTransform

    with tempfile.TemporaryDirectory(prefix="qfm-gpu-check-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        table = make_set(folder, args.images, w, h, cores)
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
        files = [str(folder / f) for f in table["image"][:args.predict_images]]
        try:
            out["predict"] = predict_check(folder, files, vit, device, args)
        except Exception as err:
            out["predict"] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
