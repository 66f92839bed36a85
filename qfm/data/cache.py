"""Preprocessing: resized copies of the large authentic sets, written once to a cache folder.

SPAQ photos (up to 4000 px) are resized so that the short side is 512, KonIQ to 512x384 — the
resolutions the published numbers use, and the main thing users of SPAQ ask about. Copies are
saved as PNG by default, so the resize is the only change to the pixels (re-encoding as JPEG
would add compression artefacts to a quality data set). EXIF orientation is applied before the
resize, as :func:`qfm.data.transforms.load_rgb` does for ``qfm predict``: training and
prediction see the same picture. ``cache.json`` records how the copies were made; a cache
without it (or made another way) is rebuilt.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image, ImageOps

from qfm import paths
from qfm.data.facts import FACTS, canonical_name
from qfm.data.label_io import DataError
from qfm.data.table import write_csv_atomic
from qfm.files import atomic_write

_FORMATS = {"png": ("PNG", ".png", {}), "jpg": ("JPEG", ".jpg", {"quality": 95})}
# How the copies are made; a cache whose cache.json says otherwise is rebuilt
_RECIPE = {"version": 2, "exif_orientation": "applied", "resample": "bicubic"}
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def cache_dir(name: str, configured: str | None = None) -> Path:
    """Default cache folder of a data set: ``<data root>/cache/<dataset>``."""
    return paths.data_root(configured) / "cache" / canonical_name(name)


def needs_cache(name: str) -> bool:
    """Whether the protocol resizes this data set before training."""
    f = FACTS[canonical_name(name)]
    return bool(f.short_side or f.size)


def target_size(name: str, width: int, height: int) -> tuple[int, int]:
    """The (width, height) an image of this data set is resized to.

    Args:
        name: data-set name.
        width, height: the original size.
    Returns:
        The size after preprocessing (unchanged when the set has none).
    """
    f = FACTS[canonical_name(name)]
    if f.size:
        return f.size
    if f.short_side:
        s = f.short_side / min(width, height)
        return max(1, round(width * s)), max(1, round(height * s))
    return width, height


def _cached_ok(path: Path, size: tuple[int, int]) -> bool:
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size == size
    except Exception:  # absent or half-written file: rebuild it
        return False


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as displayed, from the header (EXIF orientation 5-8 swap them)."""
    w, h = im.size
    return (h, w) if im.getexif().get(0x0112) in _ROTATED else (w, h)


def _resize_one(name: str, src: Path, dst: Path, fmt: str, reuse: bool = True) -> str:
    """Write one resized copy atomically; returns '' or the reason it failed."""
    kind, _, opts = _FORMATS[fmt]
    try:
        with Image.open(src) as im:
            size = target_size(name, *_oriented_size(im))
            if reuse and _cached_ok(dst, size):
                return ""
            im = ImageOps.exif_transpose(im).convert("RGB")
            if im.size != size:
                im = im.resize(size, Image.Resampling.BICUBIC)
        # a kill never leaves a half image under the final name
        atomic_write(dst, lambda tmp: im.save(tmp, format=kind, **opts))
    except Exception as e:
        return f"{src}: {type(e).__name__}: {e}"
    return ""


def build_cache(name: str, table: pd.DataFrame, root: str | Path, out: str | Path | None = None,
                *, fmt: str = "png", workers: int = 8) -> pd.DataFrame:
    """Write resized copies of a data set's images and return a table pointing at them.

    Files already in the cache at the right size are skipped, so an interrupted run resumes.

    Args:
        name: data-set name (SPAQ and KonIQ-10k have a resize; others raise).
        table: its canonical table (images relative to ``root``).
        root: the data set's folder.
        out: cache folder (default :func:`cache_dir`); also receives ``table.csv``.
        fmt: ``png`` (lossless, default) or ``jpg`` (quality 95).
        workers: threads.
    Returns:
        A copy of ``table`` whose ``image`` paths are relative to ``out``.
    Raises:
        DataError: no resize defined for the set, or some images could not be converted.
    """
    key = canonical_name(name)
    if not needs_cache(key):
        raise DataError(f"{key}: the protocol defines no resize for this data set")
    if fmt not in _FORMATS:
        raise DataError(f"unknown cache format {fmt!r} (png or jpg)")
    root = Path(root)
    out = Path(out) if out is not None else cache_dir(key)
    suffix = _FORMATS[fmt][1]
    new = [str(Path(im).with_suffix(suffix).as_posix()) for im in table["image"]]
    jobs = [(root / im, out / rel) for im, rel in zip(table["image"], new)]
    recipe = {**_RECIPE, "format": fmt}
    reuse = _recipe(out) == recipe  # copies made another way (an older qfm) are redone
    with ThreadPoolExecutor(max(1, workers)) as pool:
        failed = [w for w in pool.map(lambda j: _resize_one(key, j[0], j[1], fmt, reuse), jobs)
                  if w]
    if failed:
        raise DataError(f"{key}: {len(failed)} image(s) could not be cached, first: {failed[0]} "
                        f"(run `qfm data check`)")
    cached = table.copy()
    cached["image"] = new
    write_csv_atomic(cached, out / "table.csv")
    if not reuse:
        _write_recipe(out, recipe)
    return cached


def _recipe(out: Path) -> dict | None:
    try:
        return json.loads((out / "cache.json").read_text())
    except (OSError, ValueError):
        return None


def _write_recipe(out: Path, recipe: dict) -> None:
    atomic_write(out / "cache.json",
                 lambda tmp: Path(tmp).write_text(json.dumps(recipe, sort_keys=True) + "\n"))
