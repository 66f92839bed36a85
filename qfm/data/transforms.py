"""Image decoding and the train / test transforms.

* :func:`load_rgb` turns any file PIL reads into 8-bit RGB: EXIF rotation applied, palette and
  alpha images composited on white, 16-bit and 32-bit grey scaled to 8 bits, CMYK converted.
* Training: a random ``size`` crop and a horizontal flip.
* Test: ``n`` **deterministic** crops on a regular grid (centre first), averaged by the model.
* Images smaller than the crop are first resized up (bicubic) so their short side equals the
  crop side: scoring a padded image would score the padding.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

Resize = Callable[[int, int], tuple[int, int]]  # (w, h) → (w, h) after preprocessing


def load_rgb(path, draft: tuple[int, int] | None = None) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB PIL image (see module docstring).

    Args:
        path: the image file.
        draft: (w, h) in stored orientation: let the JPEG decoder scale down by 1/2, 1/4 or
            1/8 while staying at least this large (cheap; only before a resize).
    """
    with Image.open(path) as im:
        if draft is not None and im.format == "JPEG":
            im.draft(im.mode, draft)
        im = ImageOps.exif_transpose(im)
        im.load()
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if im.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def to_tensor(im: Image.Image) -> torch.Tensor:
    """uint8 RGB PIL image → float tensor (3, H, W) in [0, 1]; the model normalises it with its
    weights' own statistics (:class:`qfm.models.Backbone`)."""
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0


def ensure_min_size(im: Image.Image, size: int) -> Image.Image:
    """Resize up (keeping the aspect ratio) so the short side is at least ``size``."""
    w, h = im.size
    if min(w, h) >= size:
        return im
    s = size / min(w, h)
    return im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BICUBIC)


def grid_positions(length: int, size: int, n: int) -> list[int]:
    """``n`` evenly spaced crop offsets along one axis (centre when n == 1)."""
    if n <= 1:
        return [(length - size) // 2]
    return [round(i * (length - size) / (n - 1)) for i in range(n)]


def eval_boxes(w: int, h: int, size: int, n: int) -> list[tuple[int, int]]:
    """Top-left corners of ``n`` deterministic crops: the centre, then a regular grid."""
    boxes = [((w - size) // 2, (h - size) // 2)]
    if n > 1:
        k = int(np.ceil(np.sqrt(n - 1)))
        xs, ys = grid_positions(w, size, max(k, 2)), grid_positions(h, size, max(k, 2))
        grid = [(x, y) for y in ys for x in xs]
        boxes += grid[: n - 1] if len(grid) >= n - 1 else grid
        while len(boxes) < n:  # tiny grids: repeat (still deterministic)
            boxes.append(boxes[len(boxes) % len(grid)])
    return boxes[:n]


class TrainTransform:
    """Random ``size`` crop + horizontal flip (torch RNG, so seeding makes it repeatable)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, im: Image.Image) -> torch.Tensor:
        im = ensure_min_size(im, self.size)
        w, h = im.size
        x = int(torch.randint(0, w - self.size + 1, ()).item())
        y = int(torch.randint(0, h - self.size + 1, ()).item())
        im = im.crop((x, y, x + self.size, y + self.size))
        if torch.rand(()) < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(im)


class TestTransform:
    """``n`` deterministic crops → tensor (n, 3, size, size)."""

    __test__ = False  # not a pytest class

    def __init__(self, size: int, n: int = 5):
        self.size, self.n = size, n

    def __call__(self, im: Image.Image) -> torch.Tensor:
        im = ensure_min_size(im, self.size)
        w, h = im.size
        t = to_tensor(im)
        return torch.stack([t[:, y:y + self.size, x:x + self.size]
                            for x, y in eval_boxes(w, h, self.size, self.n)])


def short_side(side: int) -> Resize:
    """The resize of a checkpoint trained on photos of one size (CLIVE: 500 px): the short
    side to ``side`` px, the aspect kept (what :class:`qfm.study.real.TokenRecipe` does)."""
    def resize(w: int, h: int) -> tuple[int, int]:
        s = side / min(w, h)
        return max(side, round(w * s)), max(side, round(h * s))
    return resize


def decode(path: str, resize: Resize | None = None) -> Image.Image:
    """Decode one image to RGB, resized by ``resize`` (JPEG: reduced by the decoder first,
    keeping at least twice the target size so the final bicubic step does the filtering)."""
    if resize is None:
        return load_rgb(path)
    with Image.open(path) as im:  # header only: the stored size
        w, h = im.size
    tw, th = resize(w, h)
    side = 2 * max(tw, th)
    im = load_rgb(path, draft=(side, side))
    tw, th = resize(*im.size)  # EXIF rotation may have swapped the sides
    return im if im.size == (tw, th) else im.resize((tw, th), Image.Resampling.BICUBIC)
