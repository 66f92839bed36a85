"""One run of the whole-upstream regime (:mod:`qfm.study.whole`): Lite0 and the head, from pixels.

:func:`train_whole` trains every parameter of the model — the upstream from its ImageNet
weights at its own rate, gate and decoder at the head's — on random ``crop``-px crops and
horizontal flips of the photos as stored (each crop seeded by split, epoch and photo, so a
rerun replays it), with the engine's loop (:func:`qfm.core.engine.train_and_select`). After
every epoch it scores the validation photos in each candidate test :class:`View`; the engine
keeps the epoch with the best validation SRCC, and that epoch's best view is the test view: the
test photos are scored once, in it, at that epoch (selection never reads test). A student adds
its expanded set (:func:`expanded`): new views of its training photos scored by its teacher.
On a CPU the weights are held channels-last (Lite0 trains ~2x faster); scoring runs under
``torch.inference_mode``; on a GPU, bf16 autocast as ``train.amp`` says.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from qfm.config import ModelConfig, RunConfig, from_dict
from qfm.core.distributed import SeededItems
from qfm.core.engine import (
    lr_factor,
    make_objective,
    param_groups,
    seed_everything,
    train_and_select,
)
from qfm.core.inference import autocast
from qfm.core.metrics import correlations
from qfm.core.weights import pretrained_model
from qfm.data.dataset import IQADataset
from qfm.data.expanded import make_view
from qfm.data.sampler import QualityStratifiedSampler, labels_of
from qfm.data.transforms import TestTransform, TrainTransform, to_tensor
from qfm.files import log_seconds
from qfm.knobs import row_values
from qfm.losses.distill import DistillObjective
from qfm.models import IQAModel, build_model
from qfm.study.whole_rows import Job, parse_view

SMOKE = {"train": 8, "val": 6, "test": 6, "crop": 64, "batch": 4, "crops": 2}  # a few steps


class View:
    """A test view of a photo (``whole:S`` or ``crops:N``, see the module docstring)."""

    def __init__(self, text: str, crop: int):
        self.text, self.crop = text, crop
        self.kind, self.n = parse_view(text)

    def __call__(self, im: Image.Image) -> torch.Tensor:
        if self.kind == "crops":  # (N, 3, crop, crop): the model averages its N scores
            return TestTransform(self.crop, self.n)(im)
        w, h = im.size
        s = self.n / min(w, h)
        if s != 1:
            im = im.resize((max(self.n, round(w * s)), max(self.n, round(h * s))),
                           Image.Resampling.BICUBIC)
        w, h = im.size
        x, y = (w - self.n) // 2, (h - self.n) // 2
        return to_tensor(im.crop((x, y, x + self.n, y + self.n)))  # (3, S, S)


def smoke_view(text: str) -> str:
    """A view at smoke size: ``whole`` at the smoke crop, at most two crops."""
    kind, n = parse_view(text)
    return f"whole:{SMOKE['crop']}" if kind == "whole" else f"crops:{min(n, SMOKE['crops'])}"


class Seen(Dataset):
    """The photos of a cached :class:`IQADataset` through one transform (one decode for all)."""

    def __init__(self, ds: IQADataset, transform):
        self.ds, self.transform, self.mos = ds, transform, ds.mos

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.transform(self.ds.load(i)), "mos": self.mos[i], "index": i}


class Pseudo(Dataset):
    """Views of training photos, kept in memory, with labels (index < 0 marks a pseudo-label,
    as :class:`~qfm.losses.distill.DistillObjective` reads)."""

    def __init__(self, images: list[Image.Image], labels: np.ndarray, transform):
        self.images, self.transform = images, transform
        self.mos = torch.as_tensor(labels, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.transform(self.images[i]), "mos": self.mos[i], "index": -1 - i}


@torch.inference_mode()
def scores(model: IQAModel, ds: Dataset, device: torch.device, amp: bool,
           batch_size: int = 32) -> np.ndarray:
    """The model's scores of every item of ``ds`` (N,), in order."""
    model.eval()
    out = []
    for b in DataLoader(ds, batch_size=batch_size):
        with autocast(device, amp):
            out.append(model(b["image"].to(device, non_blocking=True)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def expanded(teacher: IQAModel, train: IQADataset, crop: int, views: int, seed: int,
             device: torch.device, amp: bool) -> Pseudo:
    """A student's expanded set: ``views`` new views of every training photo (seeded by split,
    photo and view), scored by the teacher (clipped to the label range, as ``qfm distill``)."""
    images = [make_view(train.load(i), crop, np.random.default_rng([seed, i, v]))
              for i in range(len(train)) for v in range(views)]
    labels = scores(teacher, Pseudo(images, np.zeros(len(images)), to_tensor), device, amp, 64)
    return Pseudo(images, np.clip(labels, 0.0, 1.0), TrainTransform(crop))  # + random flips


def optimizer(model: IQAModel, lr_backbone: float, lr_head: float, weight_decay: float):
    """AdamW with the upstream at its own rate and the gate and decoder at the head's."""
    head = torch.nn.ModuleList([m for m in (model.gate, model.decoder) if m is not None])
    groups = []
    for part, lr in ((model.backbone, lr_backbone), (head, lr_head)):
        for g in param_groups(part, weight_decay):
            groups.append({**g, "lr": lr, "initial_lr": lr})
    return torch.optim.AdamW(groups)


def train_whole(job: Job, cfg: RunConfig, parts: dict, root: Path, device: torch.device,
                teacher: tuple[dict, dict] | None = None, *, views: int = 2,
                test_views: list[str], patience: int = 0, workers: int = 0,
                decoded: dict | None = None, progress: bool = True
                ) -> tuple[dict, pd.DataFrame | None, dict]:
    """Train one run of the regime, select epoch and test view on validation, score test.

    Args:
        job: the run (variant, seed = split or tuning seed, the regime's knob values).
        cfg: its configuration (variant, frozen study's tuned values, seed).
        parts: ``{part: table rows}`` (a tuning split has no ``test``; a refit on every photo
            has ``train`` only: it trains ``epochs`` epochs and keeps the last).
        teacher: a student's teacher, (its model config, its selected weights).
        views: a student's views per training photo.
        test_views: the candidate views (one: fixed).
        decoded: photos decoded by earlier runs, by name (filled here: a sitting decodes once).
    Returns:
        (its row, its test predictions or None, its selected weights on the CPU).
    """
    t, smoke, t0 = cfg.train, cfg.shared.smoke, time.perf_counter()
    crop = min(int(job.knobs["crop"]), SMOKE["crop"]) if smoke else int(job.knobs["crop"])
    epochs = 1 if smoke else int(job.knobs["epochs"])
    batch = min(t.batch_size, SMOKE["batch"]) if smoke else t.batch_size
    seed_everything(job.seed)
    model = pretrained_model(cfg.model).to(device)  # first: every variant's seed-s draws
    train = IQADataset(parts["train"], root, TrainTransform(crop), cache=True)
    evals = {p: IQADataset(parts[p], root, None, cache=True) for p in ("val", "test") if p in parts}
    decoded = {} if decoded is None else decoded
    for ds in (train, *evals.values()):  # decoded once, before loader processes fork
        for i, name in enumerate(ds.table["image"]):
            ds.cache[i] = decoded[name] if name in decoded else ds.load(i)
            decoded[name] = ds.cache[i]
    data, objective = train, make_objective(cfg)
    if teacher is not None:
        with torch.random.fork_rng(devices=[]):
            tm = build_model(from_dict(ModelConfig, teacher[0], "model"))
        tm.load_state_dict(teacher[1])
        data = ConcatDataset([train, expanded(tm.to(device), train, crop, views, job.seed,
                                              device, t.amp)])
        objective = DistillObjective(cfg.qfm, cfg.distill.lambda_kd, job.seed)
    if device.type == "cpu":  # NHWC: Lite0 trains ~2x faster on a CPU (Performance page)
        model = model.to(memory_format=torch.channels_last)
    opt = optimizer(model, float(job.knobs["lr_backbone"]), t.lr, t.weight_decay)
    per_epoch = max(len(data) // batch, 1)
    candidates = [View(v, crop) for v in test_views]
    curves: dict[str, list] = {v.text: [] for v in candidates}

    def batches(epoch: int):
        es = job.seed * 1000003 + epoch  # batches by (seed, epoch), crops by (…, photo)
        gen = torch.Generator().manual_seed(es)
        if cfg.qfm.sampler:
            order = list(QualityStratifiedSampler(labels_of(data), batch, cfg.qfm.tau,
                                                  generator=gen))
        else:
            perm = torch.randperm(len(data), generator=gen).tolist()
            order = [perm[i * batch:(i + 1) * batch] for i in range(per_epoch)]
        return DataLoader(SeededItems(data, es), batch_sampler=order, num_workers=workers,
                          pin_memory=device.type == "cuda")

    def validate(epoch: int) -> dict:
        if "val" not in evals:  # a refit: nothing held out, the last epoch is kept
            return {"srcc": float("nan"), "view": candidates[0].text}
        val = evals["val"]
        got = {v.text: correlations(scores(model, Seen(val, v), device, t.amp),
                                    val.mos.numpy(), logistic=False)["srcc"] for v in candidates}
        for k, s in got.items():
            curves[k].append(s)
        view = max(got, key=lambda k: got[k] if np.isfinite(got[k]) else -np.inf)
        return {"srcc": got[view], "view": view}

    def on_epoch(epoch, history, best, best_state):
        if progress:
            h = history[-1]
            val = f" val srcc {h['val']['srcc']:.4f} ({h['val']['view']})" if "val" in evals \
                else ""
            print(f"  {job.name} epoch {epoch + 1}/{epochs} loss {h.get('loss', np.nan):.4f}"
                  f"{val}", flush=True)

    history, best, best_state = train_and_select(
        model, opt, objective, epochs=epochs, batches=batches, validate=validate,
        steps_per_epoch=per_epoch, device=device, clip_grad=t.clip_grad, amp=t.amp,
        lr_fn=lambda s: lr_factor(s, per_epoch, t.warmup_epochs, t.step_epochs, t.gamma),
        eval_every=1 if "val" in evals else epochs, patience=patience if "val" in evals else 0,
        on_epoch=on_epoch)
    model.load_state_dict(best_state)
    view = history[best["epoch"]]["val"]["view"]
    student = teacher is not None
    row = {"variant": job.variant, "seed": job.seed, **row_values(cfg, student),
           **job.knobs, "lr_head": t.lr, "crop": crop, "test_view": view,
           "test_views": [v.text for v in candidates], "views": views if student else 0,
           "epochs": len(history), "max_epochs": epochs, "best_epoch": best["epoch"],
           "best_is_last": best["epoch"] == epochs - 1, "stopped_early": len(history) < epochs,
           "steps": int(sum(h["steps"] for h in history)), "val_srcc": best["srcc"],
           "val_curve": [h["val"]["srcc"] for h in history if "val" in h],
           "val_curve_by_view": curves,
           "train_images": len(train), "pseudo_images": len(data) - len(train),
           "val_images": len(evals["val"]) if "val" in evals else 0}
    preds = None
    if "test" in evals:
        test = evals["test"]
        pred = scores(model, Seen(test, View(view, crop)), device, t.amp)
        c = correlations(pred, test.mos.numpy())
        row.update(test_srcc=c["srcc"], test_plcc=c["plcc_logistic"], test_plcc_raw=c["plcc"],
                   test_images=len(test))
        preds = pd.DataFrame({"image": test.table["image"], "pred": pred,
                              "mos": test.table["mos"], "mos_raw": test.table["raw"]})
    seconds = log_seconds("whole", time.perf_counter() - t0, run=job.name, device=str(device))
    row["run"] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda"
                  else "cpu", "torch": torch.__version__, "seconds": round(seconds, 1),
                  "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    state = {k: v.detach().cpu().contiguous() for k, v in best_state.items()}
    return row, preds, state
