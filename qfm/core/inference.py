"""Running a model forward: the device, bf16 autocast, scoring one batch or a whole loader.

Below the engine (no optimiser, no torch.distributed), so that loading and scoring a model —
``qfm predict``, :func:`qfm.core.checkpoint.load_model` — never imports training code. The engine
uses the same functions for its validation and test passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from qfm.config import ModelConfig, from_dict
from qfm.core.checkpoint import CheckpointError, fit_state, load_tensors
from qfm.core.metrics import correlations
from qfm.models import build_model


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; a no-op context elsewhere."""
    enabled = amp and device.type == "cuda"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def infer(model: torch.nn.Module, images: torch.Tensor, device: torch.device,
          amp: bool = True) -> torch.Tensor:
    """Scores of one batch: images (B, 3, H, W) or (B, K, 3, H, W) → (B,) float32 on CPU."""
    model.eval()
    with autocast(device, amp):
        return model(images.to(device, non_blocking=True)).float().cpu()


@torch.no_grad()
def predict(model: torch.nn.Module, loader, device: torch.device, amp: bool = True,
            desc: str = "eval", progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets over ``loader`` (multi-crop batches are averaged by the model).

    Returns:
        (predictions (N,), targets (N,)) as float32 arrays, in loader order.
    """
    model.eval()
    preds, targets = [], []
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=2.0, dynamic_ncols=True,
                      disable=not progress):
        with autocast(device, amp):
            p = model(batch["image"].to(device, non_blocking=True))
        preds.append(p.float().cpu())
        targets.append(batch["mos"].float())
    return torch.cat(preds).numpy(), torch.cat(targets).numpy()


def evaluate(model: torch.nn.Module, loader, device: torch.device, amp: bool = True,
             desc: str = "eval") -> dict:
    """Correlation metrics of ``model`` on ``loader`` (see :func:`qfm.core.metrics.correlations`)."""
    pred, target = predict(model, loader, device, amp, desc)
    return correlations(pred, target)


def load_model(path: str | Path, device: str = "auto", channels_last: bool | None = None):
    """Rebuild the model a checkpoint was trained as, and load its weights.

    Args:
        channels_last: hold the weights in NHWC (``torch.channels_last``), so convolutions run
            their channels-last kernels (Lite0 ~2× faster on a CPU; scores equal within float
            tolerance, tests/system/test_predict.py). None: on a CPU.
    Returns:
        (model in eval mode on the device, metadata).
    """
    tensors, meta = load_tensors(path)
    if "config" not in meta:
        raise CheckpointError(f"{path}: no JSON sidecar with the model config beside it")
    mcfg = from_dict(ModelConfig, meta["config"]["model"], "model")
    model = build_model(mcfg)  # the checkpoint holds every weight
    fit_state(model, tensors, str(path))
    dev = resolve_device(device)
    model = model.to(dev)
    if dev.type == "cpu" if channels_last is None else channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval(), meta
