"""Evaluate a saved checkpoint on one part of a split (the ``qfm evaluate`` command)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from qfm.checkpoint import load_model
from qfm.config import RunConfig
from qfm.data.dataset import IQADataset
from qfm.data.sources import load_parts
from qfm.data.transforms import TestTransform
from qfm.inference import evaluate


def evaluate_checkpoint(path: str | Path, cfg: RunConfig, part: str = "test") -> dict:
    """Metrics of checkpoint ``path`` on ``part`` of the split that ``cfg.train`` names."""
    model, meta = load_model(path, cfg.train.device)
    t = cfg.train
    root, parts = load_parts(t.dataset, t.split, cfg.shared.data_root, t.max_images)
    size = meta["config"]["model"]["img_size"]
    ds = IQADataset(parts[part], root, TestTransform(size, t.test_crops))
    dev = next(model.parameters()).device
    return evaluate(model, DataLoader(ds, batch_size=32, num_workers=t.workers), dev, t.amp)
