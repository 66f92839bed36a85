"""Distillation's expanded set, on the data side: new views of training images, the leak
check (nothing from validation or test), and the pseudo-labelled dataset wrapper. The loss
lives in :mod:`qfm.losses.distill`; the driver in :mod:`qfm.runs.distill`."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.data import Dataset

from qfm.data.transforms import ensure_min_size


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
