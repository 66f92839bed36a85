"""One image-model training run: :func:`fit` (``qfm train``), on any data set qfm reads.

Loads the data set's parts, builds the model (backbone + gate + decoder), and runs the
engine's one epoch-and-select loop (:func:`qfm.core.engine.train_and_select`): model
selection on the **validation** split only, the final numbers on test, resumable state after
every epoch (kill it and rerun the same command to continue).

Distributed: under ``torchrun --nproc_per_node=N`` :func:`fit` trains data-parallel (NCCL on
GPU, gloo on CPU). Every rank draws the same seeded global batches and takes its slice of
each; gradients are averaged over ranks in the engine; evaluation is sharded and the
predictions gathered; only rank 0 writes files. A random crop is seeded by (seed, epoch,
image), so one process and N processes see the same crops. BatchNorm normalises with
per-rank batch statistics (as DDP does); running statistics are averaged over ranks after
each epoch. Run directories must be on a file system all ranks see.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from qfm import paths
from qfm.config import RunConfig, to_dict
from qfm.core.checkpoint import load_run_state, save_run_state, save_tensors
from qfm.core.distributed import SeededItems, init_distributed, shard_batches, sync_model
from qfm.core.engine import (
    Objective,
    lr_factor,
    make_objective,
    param_groups,
    seed_everything,
    train_and_select,
)
from qfm.core.inference import predict, resolve_device
from qfm.core.metrics import correlations
from qfm.core.weights import pretrained_model
from qfm.data.dataset import IQADataset
from qfm.data.sampler import QualityStratifiedSampler, labels_of
from qfm.data.sources import load_parts
from qfm.data.transforms import TestTransform, TrainTransform
from qfm.files import write_json
from qfm.models import IQAModel


def predict_all(model: IQAModel, ds: Dataset, device: torch.device, *, batch_size: int = 32,
                workers: int = 0, amp: bool = True, desc: str = "eval", rank: int = 0,
                world: int = 1, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict` over all of ``ds``, sharded over ranks and gathered (same order)."""
    if world <= 1:
        return predict(model, _loader(ds, batch_size, workers), device, amp, desc, progress)
    idx = list(range(rank, len(ds), world))
    p = t = np.zeros(0, np.float32)
    if idx:
        p, t = predict(model, _loader(Subset(ds, idx), batch_size, workers), device, amp, desc,
                       progress)
    parts: list = [None] * world
    dist.all_gather_object(parts, (idx, p, t))
    pred, target = np.zeros(len(ds), np.float32), np.zeros(len(ds), np.float32)
    for i, pp, tt in parts:
        pred[i], target[i] = pp, tt
    return pred, target


# How a run executes, not what it computes (loader processes, device, in-memory image cache,
# how often state is saved): left out of the hash, so a run resumes after changing them.
RUNTIME_KEYS = ("workers", "device", "cache", "checkpoint_every")


def config_hash(cfg: RunConfig) -> str:
    """Short hash of a run's configuration (less :data:`RUNTIME_KEYS` of ``train``):
    resuming with another config is refused."""
    d = to_dict(cfg)
    d["train"] = {k: v for k, v in d["train"].items() if k not in RUNTIME_KEYS}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def label_scale(table) -> dict[str, float]:
    """Affine map from normalised ``mos`` back to the data set's own scale (raw = a + b·mos)."""
    mos, raw = table["mos"].to_numpy(float), table["raw"].to_numpy(float)
    ok = np.isfinite(mos) & np.isfinite(raw)
    if ok.sum() < 2 or np.ptp(mos[ok]) == 0:
        return {"offset": 0.0, "scale": 1.0}
    b, a = np.polyfit(mos[ok], raw[ok], 1)
    return {"offset": float(a), "scale": float(b)}


def _loader(ds, batch_size, workers):
    return DataLoader(ds, batch_size=batch_size, num_workers=workers)


def fit(cfg: RunConfig, run_dir: str | Path, upstream: str | Path | None = None,
        objective: Objective | None = None, progress: bool = True,
        extra_train: Dataset | None = None) -> dict:
    """Train, select on validation, test, and write ``metrics.json`` + ``model.safetensors``.

    Args:
        cfg: the run's configuration.
        run_dir: folder for the resumable state, the final checkpoint and metrics.
        upstream: upstream checkpoint (``model.weights == "upstream"``); default the
            embedded default's.
        objective: the training loss (default: :func:`make_objective`).
        progress: show progress bars.
        extra_train: more training samples appended to the train split (distillation's
            pseudo-labelled set, see :mod:`qfm.losses.distill`); same item keys as IQADataset.
    Returns:
        The metrics dictionary written to ``run_dir/metrics.json``.
    """
    run_dir = Path(run_dir)
    device, rank, world = init_distributed(resolve_device(cfg.train.device))
    return _fit(cfg, run_dir, upstream, objective, progress and rank == 0, extra_train,
                device, rank, world)


def _fit(cfg, run_dir, upstream, objective, progress, extra_train, device, rank, world):
    t, s = cfg.train, cfg.shared
    if rank == 0:  # only rank 0 writes files
        run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(s.seed)
    max_images = t.max_images or (48 if s.smoke else 0)
    epochs = 1 if s.smoke else t.epochs
    root, parts = load_parts(t.dataset, t.split, s.data_root, max_images)
    train_ds = IQADataset(parts["train"], root, TrainTransform(cfg.model.img_size), t.cache)
    if extra_train is not None:
        train_ds = ConcatDataset([train_ds, extra_train])
    val_ds = IQADataset(parts["val"], root, TestTransform(cfg.model.img_size, 1), t.cache)
    test_ds = IQADataset(parts["test"], root, TestTransform(cfg.model.img_size, t.test_crops),
                         t.cache)
    upstream = upstream or (paths.upstream_checkpoint() if cfg.model.weights == "upstream"
                            else None)
    model = pretrained_model(cfg.model, upstream).to(device)
    objective = objective or make_objective(cfg)
    optimizer = torch.optim.AdamW(param_groups(model, t.weight_decay), lr=t.lr)
    for g in optimizer.param_groups:
        g["initial_lr"] = t.lr
    steps_per_epoch = max(len(train_ds) // t.batch_size, 1)
    lr_fn = lambda step: lr_factor(step, steps_per_epoch, t.warmup_epochs,  # noqa: E731
                                   t.step_epochs, t.gamma)
    chash = config_hash(cfg)
    start_epoch, history, best_state, best = 0, [], None, {"srcc": -math.inf, "epoch": -1}
    if paths.run_state(run_dir).is_file():  # resume (all ranks read rank 0's file)
        meta, best_state = load_run_state(paths.run_state(run_dir), model, optimizer, chash)
        start_epoch, history, best = meta["epoch"] + 1, meta["history"], meta["best"]
    sync_model(model, world)  # every rank starts from rank 0's weights
    if device.type == "cpu":  # NHWC: Lite0 trains ~2× faster on this CPU (Performance page)
        model = model.to(memory_format=torch.channels_last)
    clock = {"t": time.perf_counter()}

    def batches(epoch):
        # Reseed per epoch: batches depend only on (seed, epoch) and each crop on (seed,
        # epoch, image), so a resumed run replays exactly what the uninterrupted run did.
        epoch_seed = s.seed * 1000003 + epoch
        seed_everything(epoch_seed)
        gen = torch.Generator().manual_seed(epoch_seed)
        if cfg.qfm.sampler:  # quality-stratified batches (QFM-IQM step 2)

            order = list(QualityStratifiedSampler(labels_of(train_ds), t.batch_size,
                                                  cfg.qfm.tau, generator=gen))
        else:
            perm = torch.randperm(len(train_ds), generator=gen).tolist()
            # full batches only, but never none: a training part smaller than one batch (a
            # smoke slice) is one batch, not an epoch without a step
            order = [perm[i * t.batch_size:(i + 1) * t.batch_size]
                     for i in range(max(len(train_ds) // t.batch_size, 1))]
        clock["epoch"] = time.perf_counter()
        return DataLoader(SeededItems(train_ds, epoch_seed), num_workers=t.workers,
                          batch_sampler=shard_batches(order, rank, world))

    def validate(epoch):
        pred, target = predict_all(model, val_ds, device, batch_size=64, workers=t.workers,
                                   amp=t.amp, desc="val", rank=rank, world=world,
                                   progress=progress)
        return correlations(pred, target)

    def on_epoch(epoch, history, best, best_state):
        logs = history[-1]
        logs["seconds"] = time.perf_counter() - clock["epoch"]
        if rank == 0 and ((epoch + 1) % t.checkpoint_every == 0 or epoch + 1 == epochs):
            save_run_state(paths.run_state(run_dir), model, optimizer, best_state,
                           {"epoch": epoch, "history": history, "best": best,
                            "config_hash": chash})
        if progress:
            v = logs.get("val", {}).get("srcc")
            print(f"epoch {epoch + 1}/{epochs} loss {logs.get('loss', float('nan')):.4f} "
                  f"{logs['seconds']:.1f}s" + (f" val srcc {v:.4f}" if v is not None else ""),
                  flush=True)

    history, best, best_state = train_and_select(
        model, optimizer, objective, epochs=epochs, batches=batches, validate=validate,
        steps_per_epoch=steps_per_epoch, lr_fn=lr_fn, device=device, clip_grad=t.clip_grad,
        amp=t.amp, eval_every=t.eval_every, start_epoch=start_epoch, history=history,
        best=best, best_state=best_state,
        after_train=lambda: sync_model(model, world, average_buffers=True),  # BatchNorm stats
        on_epoch=on_epoch, world=world, progress=progress)
    train_seconds = time.perf_counter() - clock["t"]
    if best_state is not None:
        model.load_state_dict(best_state)
    pred, target = predict_all(model, test_ds, device, batch_size=32, workers=t.workers,
                               amp=t.amp, desc="test", rank=rank, world=world,
                               progress=progress)
    test = correlations(pred, target)
    per_type = {}
    for kind, idx in parts["test"].groupby("distortion").indices.items():
        if kind:
            per_type[kind] = correlations(pred[idx], target[idx], logistic=False)["srcc"]
    metrics = {"test": test, "val": {"srcc": best["srcc"]}, "best_epoch": best["epoch"],
               "epochs": epochs, "train_seconds": train_seconds,
               "images": {k: len(v) for k, v in parts.items()},
               "test_srcc_by_distortion": per_type, "history": history,
               "config_hash": chash}
    meta = {"config": to_dict(cfg), "dataset": t.dataset, "split": t.split,
            "label_scale": label_scale(parts["train"]),
            "metrics": {k: metrics[k] for k in ("test", "val", "best_epoch")}}
    if rank == 0:
        save_tensors(model.state_dict(), paths.run_model(run_dir), meta, code=True)
        write_json(metrics, paths.run_metrics(run_dir))
    return metrics


