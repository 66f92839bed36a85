"""Distillation that expands the data set (QFM-IQM step 5): the pieces, no I/O.

* :func:`make_view` — a new view of a training image (scale, crop, flip) for the teacher to
  score;
* :func:`check_no_leak` — the expanded set holds only training contents: a teacher never
  scores (and a student never trains on) validation or test images;
* :class:`PseudoLabelled` — a pseudo-labelled set whose items say so by a negative ``index``;
* :class:`DistillObjective` — the student's loss
  L = L_reg (labelled) + λ_qfm·L_qfm (all) + λ_kd·SmoothL1(student, teacher) (expanded).

The driver (teacher run, pseudo-label file, student run) is :mod:`qfm.distill_run`.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from qfm.config import QFMConfig
from qfm.data.transforms import ensure_min_size
from qfm.matching import qfm_terms


class LeakError(RuntimeError):
    """Validation or test content would reach the teacher or the student's training set."""


def make_view(im: Image.Image, size: int, rng: np.random.Generator,
              scales: tuple[float, float] = (0.75, 1.25)) -> Image.Image:
    """A new view of an image: rescaled by a random factor, a random ``size`` crop, a flip.

    Args:
        im: RGB image.
        size: output side (the model's crop side).
        rng: seeded generator (one per image and view, so views are reproducible).
        scales: range of the rescaling factor.
    Returns:
        A ``size`` × ``size`` RGB image.
    """
    s = float(rng.uniform(*scales))
    w, h = im.size
    im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
    im = ensure_min_size(im, size)
    w, h = im.size
    x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
    im = im.crop((x, y, x + size, y + size))
    return im.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im


def check_no_leak(contents: Iterable[str], parts: dict[str, pd.DataFrame],
                  images: Iterable[str] = ()) -> None:
    """Raise :class:`LeakError` if an expanded sample comes from validation or test.

    Args:
        contents: content ids of the expanded samples.
        parts: the split's ``train``/``val``/``test`` tables.
        images: source image paths of the expanded samples (checked against val/test too).
    """
    held = {p: set(parts[p]["content"].astype(str)) for p in ("val", "test") if p in parts}
    held_img = {p: set(parts[p]["image"].astype(str)) for p in ("val", "test") if p in parts}
    contents, images = set(map(str, contents)), set(map(str, images))
    for p in held:
        bad = sorted(contents & held[p]) or sorted(images & held_img[p])
        if bad:
            raise LeakError(f"distillation: {len(bad)} expanded sample source(s) belong to the "
                            f"{p} split, e.g. {bad[0]!r}; teachers never see val/test images")


class PseudoLabelled(Dataset):
    """Wrap an :class:`~qfm.data.dataset.IQADataset` of teacher-scored images.

    Items are those of the wrapped set with ``index`` = −1 − i, which is how
    :class:`DistillObjective` tells pseudo-labels (``mos`` = teacher score) from labels.
    """

    def __init__(self, ds):
        self.ds = ds
        self.mos = ds.mos

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        item = self.ds[i]
        return {**item, "index": -1 - i}


def _masked_l1(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return pred.sum() * 0.0  # zero, still attached to the graph
    return F.smooth_l1_loss(pred[mask], y[mask])


class DistillObjective:
    """The student's loss (``objective(model, batch) → loss, logs``).

    Args:
        qfm: the ``qfm`` section (L_qfm over every sample when enabled; pseudo-labels are the
            labels matching and the perturbed loss use for expanded samples).
        lambda_kd: weight of SmoothL1(student, teacher) on the expanded samples.
    """

    def __init__(self, qfm: QFMConfig, lambda_kd: float, seed: int = 0):
        self.qfm, self.lambda_kd = qfm, lambda_kd
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        x, y = batch["image"], batch["mos"]
        pseudo = torch.as_tensor(batch["index"], device=y.device) < 0
        logs: dict = {}
        if self.qfm.enabled:
            pred, l_qfm, logs = qfm_terms(model, x, y, self.qfm, self.gen)
        else:
            pred = model(x)
            l_qfm = pred.sum() * 0.0
        reg = _masked_l1(pred, y, ~pseudo)
        kd = _masked_l1(pred, y, pseudo)
        loss = reg + self.qfm.lambda_qfm * l_qfm + self.lambda_kd * kd
        return loss, {"loss": float(loss.detach()), "reg": float(reg.detach()),
                      "qfm": float(l_qfm.detach()), "kd": float(kd.detach()), **logs}
