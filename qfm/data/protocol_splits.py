"""The paper's evaluation protocol on the real data sets: 10 seeded splits plus the official one.

Synthetic sets (LIVE, CSIQ, TID2013, KADID-10k) are split by reference content, so no
reference is seen in two parts; authentic sets are split by image. Each split is
train 70 / val 10 / test 20 (the usual 80/20 with a validation part carved out of train, so
that no model is selected on test). Split ``k`` uses a seed derived from ``(seed, k)``, and
contents are sorted before shuffling, so the files depend only on the label file and the seed,
not on row order. Official splits (KonIQ ``set``, FLIVE ``is_valid``/``labels640.csv``) are
written as ``split_official.csv``. :func:`data_split_main` is the ``qfm data split`` command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from qfm import paths
from qfm.data.facts import FACTS, canonical_name
from qfm.data.readers import read_dataset
from qfm.data.splits import PARTS, split_by_content, write_split

FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test
OFFICIAL = "official"


def official_split_file(dataset: str) -> Path:
    """Path of a data set's official split: ``splits/<dataset>/split_official.csv``."""
    return paths.splits_dir(dataset) / f"split_{OFFICIAL}.csv"


def split_seed(seed: int, k: int) -> int:
    """The seed of split ``k``: independent streams per split from one base seed."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


def official_split(table: pd.DataFrame) -> pd.DataFrame | None:
    """The shipped split as ``image,split`` (rows it leaves out are dropped), or None."""
    if "official" not in table.columns:
        return None
    part = table["official"].fillna("").astype(str)
    keep = part.isin(PARTS).to_numpy()
    if not keep.any():
        return None
    return pd.DataFrame({"image": table["image"].to_numpy()[keep],
                         "split": part.to_numpy()[keep]})


def make_splits(name: str, table: pd.DataFrame, n: int = 10, seed: int = 0,
                fractions: tuple[float, float, float] = FRACTIONS) -> dict[str, pd.DataFrame]:
    """Make the protocol's splits of one data set.

    Args:
        name: data-set name (decides by-reference vs by-image).
        table: its canonical table.
        n: number of random splits.
        seed: base seed.
        fractions: train/val/test shares (of contents for synthetic sets, of images else).
    Returns:
        ``{"0": df, ..., str(n-1): df}`` plus ``"official"`` where the set ships one; each df
        has columns ``image,split`` in the table's row order.
    """
    key = canonical_name(name)
    by = table[["image", "content"]].copy()
    if not FACTS[key].synthetic:
        by["content"] = by["image"]  # authentic: every image is its own content
    out = {str(k): split_by_content(by, split_seed(seed, k), fractions) for k in range(n)}
    off = official_split(table)
    if off is not None:
        out[OFFICIAL] = off
    return out


def split_path(dataset: str, key: str) -> Path:
    """Where split ``key`` ("0".."9" or "official") of ``dataset`` is written."""
    return official_split_file(dataset) if key == OFFICIAL else paths.split_file(dataset,
                                                                                 int(key))


def write_splits(name: str, splits: dict[str, pd.DataFrame]) -> list[Path]:
    """Write the splits of :func:`make_splits` atomically to their files.

    Args:
        name: data-set name (files go under its canonical name).
        splits: as returned by :func:`make_splits`.
    Returns:
        The paths written, in key order.
    """
    key = canonical_name(name)
    return [write_split(df, split_path(key, k)) for k, df in splits.items()]


def data_split_main(name: str, root: str | Path, n: int = 10, seed: int = 0) -> int:
    """Entry point of ``qfm data split``: read the labels, write the protocol splits.

    Args:
        name: data-set name.
        root: the data set's folder.
        n: number of random splits.
        seed: base seed.
    Returns:
        0 on success, 1 when the labels cannot be read (message on stderr).
    """
    try:
        key = canonical_name(name)
        table = read_dataset(key, root)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    written = write_splits(key, make_splits(key, table, n=n, seed=seed))
    for p in written:
        print(p)
    return 0
