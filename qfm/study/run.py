"""One run of the study: one variant on one seed, on cached inputs (tokens or a tail's rows).

One run = one variant (a ``variants`` entry of ``params.yaml``) on one seed (= content split
and initialisation), trained on the frozen upstream's cached tokens (:mod:`qfm.study.tokens`)
with the engine's :func:`~qfm.core.engine.train_and_select`; selection on validation only,
test and held-out photos scored once, at the selected epoch. A student (``teacher: <variant>``)
adds the unlabelled images of its *training* contents, pseudo-labelled by the same-seed run of
its teacher (:func:`qfm.losses.distill.with_pseudo_labels`). Many runs: :mod:`qfm.study.runner`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qfm.config import ModelConfig, RunConfig, from_dict, to_dict
from qfm.core.engine import (
    lr_factor,
    make_objective,
    param_groups,
    seed_everything,
    train_and_select,
)
from qfm.core.metrics import correlations, noise_share, pair_arrays
from qfm.core.weights import tail_source
from qfm.data.splits import read_split
from qfm.data.world import spurious_train
from qfm.files import log_seconds
from qfm.knobs import row_values
from qfm.losses.distill import DistillObjective, with_pseudo_labels
from qfm.models import build_model
from qfm.models.tail import attach, scaled_groups
from qfm.study.batches import flip_of, score, train_batches
from qfm.study.tokens import FeatureBank


@dataclass
class RunSpec:
    """One run of the study: its name, configuration and study-only settings."""

    variant: str
    seed: int
    cfg: RunConfig
    spurious: float
    teacher: str = ""
    match_steps: bool = False
    split_table: pd.DataFrame | None = None  # ``image,split`` rows instead of split_<seed>.csv
    halve: bool = False  # the knob's half of the training part even at strength 0 (sweep)


def load_run_data(bank: FeatureBank, world: str, split: int, spurious: float, smoke: bool,
                  split_table: pd.DataFrame | None = None, halve: bool = False) -> dict:
    """Tokens and labels of one split's parts (training part under ``spurious``).

    Args:
        split_table: ``image,split`` rows to use instead of the world's ``split_<split>.csv``
            (the tuner's splits, :func:`qfm.study.tune.tuning_split`); ``split`` still seeds
            the spurious draw.
        halve: draw the knob's half of the training part at strength 0 too (the sweep's
            reference, the same size as its other strengths); else strength 0 trains on all.
    Returns:
        ``{part: (tokens (n, 1+N, C) float16, mos (n,), table)}`` for train, val, test,
        heldout, and ``unlabelled`` (tokens of the training contents' unlabelled images).
    """
    root = Path(world)
    table = pd.read_csv(root / "table.csv", dtype={"content": str})
    if split_table is None:
        parts = read_split(root / "splits" / f"split_{split}.csv", table)
    else:
        merged = table.merge(split_table[["image", "split"]], on="image", how="inner")
        parts = {p: merged[merged["split"] == p].drop(columns="split").reset_index(drop=True)
                 for p in dict.fromkeys(split_table["split"])}
    if spurious > 0 or halve:  # the knob keeps half of each photo's training images
        parts["train"] = spurious_train(parts["train"], spurious, split).reset_index(drop=True)
    extra = pd.read_csv(root / "unlabelled.csv", dtype={"content": str})
    parts["unlabelled"] = extra[extra["content"].isin(set(parts["train"]["content"]))] \
        .reset_index(drop=True).assign(mos=np.nan)
    for part in ("val", "test", "heldout"):  # a leak check that fails loudly
        if set(parts.get(part, pd.DataFrame({"content": []}))["content"]) & \
                set(parts["unlabelled"]["content"]):
            raise RuntimeError(f"split {split}: unlabelled images of {part} contents")
    out = {}
    for part, df in parts.items():
        if smoke:
            df = df.sample(min(64, len(df)), random_state=0).reset_index(drop=True)
        rows = bank.rows(df["image"])
        out[part] = (bank.tokens[rows], torch.tensor(df["mos"].to_numpy(), dtype=torch.float32),
                     df)
    return out


def train_run(spec: RunSpec, data: dict, width: int, teacher_state: dict | None = None,
              student_steps: int = 0, tail: dict | None = None) -> dict:
    """Train one run on cached tokens; select on validation; score test and held-out.

    Args:
        data: :func:`load_run_data`'s output; width: token width.
        teacher_state: the teacher's ``(model config, weights)`` (distilled students).
        student_steps: for ``match_steps``: the steps to take.
        tail: a trainable tail's layout (:mod:`qfm.models.tail`; cached packed rows) or None.
    Returns:
        Metrics, the validation curve, QFM diagnostics, the selected ``state`` and, with a test
        part, ``predictions``: ``{"image": [...], "mos": [...], "pred": [...]}``, the selected
        model's scores of the test images (normalised MOS scale), kept out of the row
        (:func:`summary_row`) and written beside it (:func:`qfm.study.stages.write_predictions`).
    """
    cfg, t = spec.cfg, spec.cfg.train
    seed_everything(spec.seed)
    tokens, mos, _ = data["train"]
    index = torch.arange(len(mos))
    objective = make_objective(cfg)
    # the student first: seed s gives it the initialisation of every other variant's seed-s run
    # (a teacher built before it would consume the generator); batches come from their own
    width = tail["width"] if tail else width
    model = build_model(cfg.model, width=width)
    if tail:  # the fine-tuning regime: the upstream's last stage(s) train too
        attach(model, tail, tail_source(cfg.model))
    if spec.teacher:
        tcfg, tstate = teacher_state
        teacher = build_model(from_dict(ModelConfig, tcfg, "model"), width=width)
        if tail:
            attach(teacher, tail, tail_source(cfg.model))
        teacher.load_state_dict(tstate)
        u_tokens = data["unlabelled"][0]
        tokens, mos, index = with_pseudo_labels(tokens, mos, index, u_tokens,
                                                torch.tensor(score(teacher, u_tokens)))
        objective = DistillObjective(cfg.qfm, cfg.distill.lambda_kd, spec.seed)
    # fused: one kernel for every parameter (a small head's step is mostly optimizer overhead)
    opt = torch.optim.AdamW(scaled_groups(model, param_groups(model, t.weight_decay)),
                            lr=t.lr, fused=True)
    for g in opt.param_groups:
        g["initial_lr"] = t.lr * g["lr_scale"]
    per_epoch = max(len(mos) // t.batch_size, 1)
    epochs = 1 if cfg.shared.smoke else t.epochs
    if spec.match_steps and student_steps:
        epochs = max(epochs, math.ceil(student_steps / per_epoch))
    lr_fn = lambda s: lr_factor(s, per_epoch, t.warmup_epochs, t.step_epochs,  # noqa: E731
                                t.gamma)
    val_tokens, val_mos, _ = data["val"]

    def batches(epoch):
        gen = torch.Generator().manual_seed(spec.seed * 1000003 + epoch)
        return train_batches(tokens, mos, index, t.batch_size, gen, flip_of(model))

    def validate(epoch):
        return {"srcc": correlations(score(model, val_tokens), val_mos.numpy(),
                                     logistic=False)["srcc"]}

    t0 = time.perf_counter()
    history, best, best_state = train_and_select(
        model, opt, objective, epochs=epochs, batches=batches, validate=validate,
        steps_per_epoch=per_epoch, lr_fn=lr_fn, device=torch.device("cpu"),
        clip_grad=t.clip_grad, amp=False, eval_every=t.eval_every,
        patience=0 if spec.match_steps else t.patience)
    # the wall time goes to the log, not the row: rows are DVC outputs, the same on every run
    log_seconds("run", time.perf_counter() - t0, variant=spec.variant, seed=spec.seed,
                spurious=spec.spurious)
    curve = [h["val"]["srcc"] for h in history if "val" in h]
    logs_sum = {}
    for h in history:
        for k, v in h.items():
            if isinstance(v, float):
                logs_sum[k] = logs_sum.get(k, 0.0) + v
    model.load_state_dict(best_state)
    out = {"variant": spec.variant, "seed": spec.seed, "spurious": spec.spurious,
           "epochs": len(history), "max_epochs": epochs, "steps": len(history) * per_epoch,
           "best_epoch": best["epoch"], "stopped_early": len(history) < epochs,
           # the cap reached while validation still improved: training was too short
           "best_is_last": best["epoch"] == epochs - 1, "val_srcc": best["srcc"],
           "val_curve": curve,
           "train_images": int(len(data["train"][1])), "pseudo_images":
               int(len(mos) - len(data["train"][1]))}
    for k in ("partner_rate", "candidates", "shift", "shift_rel"):
        if k in logs_sum:
            out[k] = logs_sum[k] / len(history)
    out.update(row_values(cfg, bool(spec.teacher)))
    if "test" in data:  # (the tuner's splits have no test part)
        x, y, _ = data["test"]
        with torch.no_grad():
            model.eval()
            feats = model.features(x.float())  # the cached tokens, or the tail's
            emb = model.decoder.embed(model.select(feats)).numpy()
        out["share"] = noise_share(*pair_arrays(emb, y.numpy()))[0]
        out["share_upstream"] = noise_share(*pair_arrays(feats.mean(1).numpy(), y.numpy()))[0]
    for part in ("test", "heldout"):
        if part in data:
            x, y, frame = data[part]
            pred = score(model, x)
            c = correlations(pred, y.numpy())
            out[f"{part}_srcc"], out[f"{part}_plcc"] = c["srcc"], c["plcc_logistic"]
            out[f"{part}_plcc_raw"] = c["plcc"]
            if part == "test":  # the scores themselves: a scatter, the worst-predicted photos
                out["predictions"] = {"image": frame["image"].astype(str).tolist(),
                                      "mos": y.tolist(),
                                      "pred": np.asarray(pred, float).ravel().tolist()}
    out["state"] = best_state
    out["model_cfg"] = to_dict(cfg.model)
    return out


def summary_row(res: dict) -> dict:
    """A run's metrics without its weights or test predictions (what the result JSON stores;
    the predictions go to a file of their own beside it)."""
    return {k: v for k, v in res.items()
            if k not in ("state", "model_cfg", "_key", "predictions")}
