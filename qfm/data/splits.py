"""Seeded train/val/test splits, by content, written to and read from files.

A split file is a CSV with columns ``image,split`` (``split`` ∈ train/val/test). Splits are
made once per seed and stored, so every run and every user sees the same partition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qfm.data.table import write_csv_atomic

PARTS = ("train", "val", "test")
OPTIONAL_PARTS = ("heldout",)  # the world's held-out photos


class SplitError(ValueError):
    """A split file is missing or does not fit its table."""


def split_by_content(table: pd.DataFrame, seed: int,
                     fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)) -> pd.DataFrame:
    """Assign whole contents to train/val/test at random.

    Args:
        table: canonical table (needs ``image`` and ``content``).
        seed: the split's seed.
        fractions: shares of contents in train, val, test (sum to 1).
    Returns:
        DataFrame ``image,split`` in the table's row order.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise SplitError(f"fractions {fractions} do not sum to 1")
    contents = np.array(sorted(table["content"].unique()))
    rng = np.random.default_rng(seed)
    order = contents[rng.permutation(len(contents))]
    n = len(order)
    n_test = int(round(fractions[2] * n))
    n_val = int(round(fractions[1] * n))
    part = {c: "test" for c in order[:n_test]}
    part.update({c: "val" for c in order[n_test:n_test + n_val]})
    part.update({c: "train" for c in order[n_test + n_val:]})
    return pd.DataFrame({"image": table["image"].values,
                         "split": [part[c] for c in table["content"]]})


def write_split(split: pd.DataFrame, path: str | Path) -> Path:
    """Write a split file atomically."""
    return write_csv_atomic(split[["image", "split"]], path)


def read_split(path: str | Path, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Read a split file and return the table's rows per part.

    Raises:
        SplitError: the file is missing, names an unknown part, or an image not in the table.
    """
    path = Path(path)
    if not path.is_file():
        raise SplitError(f"{path}: split file not found (make it with the world/splits step)")
    split = pd.read_csv(path, dtype=str)
    bad = sorted(set(split["split"]) - set(PARTS) - set(OPTIONAL_PARTS))
    if bad:
        raise SplitError(f"{path}: unknown split name {bad[0]!r}")
    merged = table.merge(split, on="image", how="inner")
    if len(merged) != len(split):
        missing = sorted(set(split["image"]) - set(table["image"]))[:1]
        raise SplitError(f"{path}: image {missing[0]!r} is not in the data set's table")
    present = [p for p in OPTIONAL_PARTS if (merged["split"] == p).any()]
    return {p: merged[merged["split"] == p].drop(columns="split").reset_index(drop=True)
            for p in (*PARTS, *present)}
