"""Where a training run's images come from: the embedded default or a real data set.

Returns the data set's root folder and its canonical table split into train/val/test, read
from the split files (never re-drawn at run time).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm import paths
from qfm.data.cache import build_cache, cache_dir, needs_cache
from qfm.data.facts import canonical_name
from qfm.data.protocol_splits import split_path as protocol_split_path
from qfm.data.readers import read_dataset
from qfm.data.splits import read_split
from qfm.data.table import TableError, read_table


def load_table(dataset: str, data_root: str | None = None,
               use_cache: bool = True) -> tuple[Path, pd.DataFrame]:
    """The root folder and the whole canonical table of a data set, as training reads it.

    Args:
        dataset: ``world`` or a real data set name (``qfm.data.readers``).
        data_root: configured data root (``QFM_DATA`` wins).
        use_cache: for data sets the protocol resizes (SPAQ, KonIQ), point at the resized
            copies (made once by :func:`qfm.data.cache.build_cache`, skipped when present),
            so that every consumer (training, ``qfm cross``, ``qfm evaluate``) sees the
            pictures ``qfm predict`` sees.
    Returns:
        (root, table): ``table["image"]`` relative to ``root``.
    """
    root, table = _read(dataset, data_root)
    return _cached(dataset, root, table, data_root) if use_cache else (root, table)


def _read(dataset: str, data_root: str | None) -> tuple[Path, pd.DataFrame]:
    if dataset == "world":
        if not paths.world_table().is_file():
            raise TableError(f"{paths.world_table()}: the embedded default is missing "
                             f"(run `qfm world` first)")
        return paths.world_dir(), read_table(paths.world_table())

    root = paths.dataset_dir(canonical_name(dataset), data_root)
    return root, read_dataset(canonical_name(dataset), root)


def _cached(dataset: str, root: Path, table: pd.DataFrame, data_root: str | None
            ) -> tuple[Path, pd.DataFrame]:
    """(root, table) of the resized copies for SPAQ / KonIQ (decode those, not 4000-px
    photos); unchanged for the other data sets."""
    if dataset == "world":
        return root, table

    key = canonical_name(dataset)
    if not needs_cache(key):
        return root, table
    cached = build_cache(key, table, root, cache_dir(key, data_root))
    return cache_dir(key, data_root), table.assign(image=cached["image"].to_numpy())


def load_parts(dataset: str, split: int, data_root: str | None = None,
               max_images: int = 0, use_cache: bool = True) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The root folder and the train/val/test tables of one split.

    Args:
        dataset: ``world`` or a real data set name (``qfm.data.readers``).
        split: index of the split file; -1 = the official split (real data sets).
        data_root: configured data root (``QFM_DATA`` wins).
        max_images: keep a fixed sample of n rows of each part (0 = all); smoke runs.
        use_cache: see :func:`load_table`.
    Returns:
        (root, {"train": df, "val": df, "test": df}).
    """
    root, table = _read(dataset, data_root)
    if dataset == "world":
        split_path = paths.split_file(dataset, split)
    else:

        # split -1 = the data set's official split (KonIQ-10k, FLIVE)
        split_path = protocol_split_path(canonical_name(dataset),
                                         "official" if split < 0 else str(split))
    parts = read_split(split_path, table)  # before the cache: a missing split fails fast
    if use_cache:
        root, cached = _cached(dataset, root, table, data_root)
        rename = dict(zip(table["image"], cached["image"]))
        parts = {k: v.assign(image=v["image"].map(rename)) for k, v in parts.items()}
    if max_images:
        # a seeded sample, not the first rows: tables are sorted by content
        parts = {k: v.sample(min(max_images, len(v)), random_state=0).reset_index(drop=True)
                 for k, v in parts.items()}
    return root, parts
