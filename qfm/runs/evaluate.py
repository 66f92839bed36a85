"""Evaluate a saved checkpoint on one part of a split (the ``qfm evaluate`` command)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from qfm.config import RunConfig
from qfm.core.inference import evaluate, load_model
from qfm.data.dataset import IQADataset
from qfm.data.sources import load_parts
from qfm.data.transforms import TestTransform


def evaluate_checkpoint(path: str | Path, cfg: RunConfig, part: str = "test",
                        dataset: str | None = None, split: int | None = None) -> dict:
    """Metrics of checkpoint ``path`` on ``part`` of the split it was trained on.

    Args:
        path: a ``.safetensors`` checkpoint with its sidecar.
        cfg: where the data live (``shared.data_root``), device, workers, ``max_images``;
            its ``train.dataset``/``train.split`` are not used: scoring a model on another
            split's test part would score it on images it trained on.
        part: train | val | test.
        dataset, split: another data set / split, asked for explicitly.
    Returns:
        :func:`qfm.core.metrics.correlations` plus ``dataset``, ``split`` and ``part``.
    """
    model, meta = load_model(path, cfg.train.device)
    t = cfg.train
    own = meta["config"].get("train", {})
    dataset = dataset or meta.get("dataset") or own.get("dataset", t.dataset)
    split = split if split is not None else int(meta.get("split", own.get("split", t.split)))
    root, parts = load_parts(dataset, split, cfg.shared.data_root, t.max_images)
    size = meta["config"]["model"]["img_size"]
    crops = int(own.get("test_crops", t.test_crops))  # as the run tested (and predict scores)
    ds = IQADataset(parts[part], root, TestTransform(size, crops))
    dev = next(model.parameters()).device
    metrics = evaluate(model, DataLoader(ds, batch_size=32, num_workers=t.workers), dev, t.amp)
    return {**metrics, "dataset": dataset, "split": split, "part": part}
