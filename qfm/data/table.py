"""The canonical table every data set is turned into, and its checks.

One row per image. Columns:

========== ==========================================================================
image      path relative to the data set's root, POSIX separators
mos        quality normalised to [0, 1], higher = better (what models train on)
raw        the label as distributed (MOS or DMOS, original scale and direction)
std        standard deviation of the label on the original scale (NaN if unknown)
content    reference / content id; splits never put one content in two parts
distortion distortion type ("" for authentic images)
level      distortion level (-1 when unknown)
========== ==========================================================================

Optional: ``official`` (train/val/test) where a data set ships an official split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from qfm.files import atomic_write

COLUMNS = ["image", "mos", "raw", "std", "content", "distortion", "level"]


class TableError(ValueError):
    """A canonical table is malformed."""


def make_table(image, raw, content, *, lo: float, hi: float, higher_better: bool,
               std=None, distortion=None, level=None, **extra) -> pd.DataFrame:
    """Build a canonical table, normalising labels to [0, 1] with higher = better.

    Args:
        image: relative image paths.
        raw: labels on the original scale.
        content: content/reference ids.
        lo, hi: the label scale's ends (documented range of the data set).
        higher_better: False for DMOS-style labels.
        std, distortion, level: optional per-row values.
        **extra: further columns (e.g. ``official``).
    Returns:
        A DataFrame with :data:`COLUMNS` (plus ``extra``).
    """
    raw = np.asarray(raw, dtype=np.float64)
    n = len(raw)
    mos = (raw - lo) / (hi - lo)
    if not higher_better:
        mos = 1.0 - mos
    df = pd.DataFrame({
        "image": [str(p).replace(os.sep, "/") for p in image],
        "mos": mos,
        "raw": raw,
        "std": np.full(n, np.nan) if std is None else np.asarray(std, dtype=np.float64),
        "content": [str(c) for c in content],
        "distortion": [""] * n if distortion is None else [str(d) for d in distortion],
        "level": np.full(n, -1, dtype=np.int64) if level is None else np.asarray(level, np.int64),
    })
    for k, v in extra.items():
        df[k] = list(v)
    return df


def validate(df: pd.DataFrame, where: str = "table") -> pd.DataFrame:
    """Raise :class:`TableError` (one line, naming ``where``) unless ``df`` is canonical."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TableError(f"{where}: missing column(s) {', '.join(missing)}")
    if df["image"].duplicated().any():
        dup = df.loc[df["image"].duplicated(), "image"].iloc[0]
        raise TableError(f"{where}: duplicate image {dup!r}")
    return df


def write_csv_atomic(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a CSV via a temporary file and a rename, so a kill never leaves half a file."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a canonical table CSV written by :func:`write_csv_atomic`."""
    path = Path(path)
    if not path.is_file():
        raise TableError(f"{path}: table not found")
    df = pd.read_csv(path, keep_default_na=False, na_values={"std": [""], "mos": [""],
                                                             "raw": [""]},
                     dtype={"image": str, "content": str, "distortion": str})
    return validate(df, str(path))
