"""The training loop: one :func:`train_one_epoch` and one epoch-and-select loop,
:func:`train_and_select`, which every trainer calls — image runs (:func:`qfm.runs.train.fit`,
with DDP and resumable state) and the study's head-only runs on cached tokens
(:func:`qfm.study.run.train_run`). Model selection reads **validation** only.

Distributed: gradients are averaged over ranks after ``backward`` (:func:`sync_gradients` —
like DDP, but for any objective, including ones that call ``model.features/select/head``
directly); the image trainer shards batches and gathers predictions. The loop knows no data
files, no checkpoints and no data sets: its callers bring batches and a validation score.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qfm.config import RunConfig
from qfm.core.distributed import mean_over_ranks, sync_gradients
from qfm.core.inference import autocast
from qfm.losses.qfm import QFMObjective
from qfm.models import IQAModel

Objective = Callable[[IQAModel, dict], tuple[torch.Tensor, dict]]


def seed_everything(seed: int) -> None:
    """Seed torch and numpy (Python's ``random`` is not used by qfm)."""
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no decay on norms, biases, position embeddings, CLS token and queries."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim <= 1 or any(k in name for k in ("pos_embed", "cls_token", "queries"))
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, steps_per_epoch: int, warmup_epochs: float, step_epochs: int,
              gamma: float) -> float:
    """Linear warm-up, then ×gamma every ``step_epochs`` epochs (DEIQT's schedule)."""
    warm = warmup_epochs * steps_per_epoch
    if step < warm:
        return (step + 1) / warm
    return gamma ** int(step // (step_epochs * steps_per_epoch)) if step_epochs > 0 else 1.0


def regression_objective(model: IQAModel, batch: dict) -> tuple[torch.Tensor, dict]:
    """The baseline loss: SmoothL1 between predicted and normalised quality."""
    pred = model(batch["image"])
    loss = F.smooth_l1_loss(pred, batch["mos"])
    return loss, {"loss": float(loss.detach())}


def make_objective(cfg: RunConfig) -> Objective:
    """The training loss of a run: the baseline's, or QFM-IQM's when ``qfm.enabled``."""
    if cfg.qfm.enabled:

        return QFMObjective(cfg.qfm, cfg.shared.seed)
    return regression_objective




def train_one_epoch(model: IQAModel, loader, optimizer, objective: Objective,
                    device: torch.device, *, lr_fn: Callable[[int], float], start_step: int,
                    clip_grad: float = 0.0, amp: bool = True, desc: str = "train",
                    world: int = 1, progress: bool = True) -> dict:
    """One pass over ``loader``.

    Args:
        lr_fn: global step → learning-rate factor (applied to each group's ``initial_lr``).
        start_step: global step at the start of this epoch.
        world: processes training together (gradients are averaged over them).
        progress: show a progress bar.
    Returns:
        Mean of each logged value (over steps and ranks), plus ``steps``.
    """
    model.train()
    sums: dict[str, float] = {}
    step = start_step
    params = [p for p in model.parameters() if p.requires_grad]
    bar = tqdm(loader, desc=desc, leave=False, mininterval=2.0, dynamic_ncols=True,
               disable=not progress)
    for batch in bar:
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        for g in optimizer.param_groups:
            g["lr"] = g["initial_lr"] * lr_fn(step)
        with autocast(device, amp):
            loss, logs = objective(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        sync_gradients(params, world)  # before clipping: clip the global gradient
        if clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        step += 1
        bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}", refresh=False)
    n = max(step - start_step, 1)
    means = mean_over_ranks({k: v / n for k, v in sums.items()}, world)
    return {**means, "steps": step - start_step}


def train_and_select(model: IQAModel, optimizer, objective: Objective, *, epochs: int,
                     batches: Callable[[int], Iterable[dict]],
                     validate: Callable[[int], dict], steps_per_epoch: int,
                     lr_fn: Callable[[int], float], device: torch.device,
                     clip_grad: float = 0.0, amp: bool = False, eval_every: int = 1,
                     start_epoch: int = 0, history: list | None = None,
                     best: dict | None = None, best_state: dict | None = None,
                     patience: int = 0, after_train: Callable[[], None] | None = None,
                     on_epoch: Callable[[int, list, dict, dict | None], None] | None = None,
                     world: int = 1, progress: bool = False) -> tuple[list, dict, dict | None]:
    """Train ``epochs`` epochs; after every ``eval_every``-th (and the last) validate and keep
    the weights of the epoch with the best validation SRCC.

    Args:
        batches: epoch → that epoch's batches (seeded by the caller: a resumed run replays).
        validate: epoch → validation metrics with ``srcc`` (never a test number).
        steps_per_epoch: optimisation steps per epoch (the schedule's unit).
        lr_fn: global step → learning-rate factor.
        start_epoch, history, best, best_state: where a resumed run left off.
        patience: stop early after this many validated epochs without a better validation
            SRCC (0 = train every epoch); the best epoch is then never the last one trained.
        after_train: called after each epoch's training, before validation (DDP: BatchNorm
            statistics averaged over ranks).
        on_epoch: called with (epoch, history, best, best_state) at the end of each epoch
            (resumable state, progress lines).
    Returns:
        (history: one dict of mean training logs (+ ``val``) per epoch, best ``{"srcc",
        "epoch"}``, the best epoch's state dict).
    """
    history = list(history or [])
    best = dict(best or {"srcc": -math.inf, "epoch": -1})
    for epoch in range(start_epoch, epochs):
        logs = train_one_epoch(model, batches(epoch), optimizer, objective, device, lr_fn=lr_fn,
                               start_step=epoch * steps_per_epoch, clip_grad=clip_grad,
                               amp=amp, desc=f"epoch {epoch + 1}/{epochs}", world=world,
                               progress=progress)
        if after_train is not None:
            after_train()
        logs["epoch"] = epoch
        if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
            val = validate(epoch)
            logs["val"] = val
            if val["srcc"] > best["srcc"] or best_state is None:
                best = {"srcc": val["srcc"], "epoch": epoch}
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append(logs)
        if on_epoch is not None:
            on_epoch(epoch, history, best, best_state)
        if patience and epoch - best["epoch"] >= patience:
            break
    return history, best, best_state
