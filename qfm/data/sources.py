"""Where a training run's images come from: the embedded default or a real data set.

Returns the data set's root folder and its canonical table split into train/val/test, read
from the split files (never re-drawn at run time).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm import paths
from qfm.data.splits import read_split
from qfm.data.table import TableError, read_table


def load_parts(dataset: str, split: int, data_root: str | None = None,
               max_images: int = 0, use_cache: bool = True) -> tuple[Path, dict[str, pd.DataFrame]]:
    """The root folder and the train/val/test tables of one split.

    Args:
        dataset: ``world`` or a real data set name (``qfm.data.readers``).
        split: index of the split file; -1 = the official split (real data sets).
        data_root: configured data root (``QFM_DATA`` wins).
        max_images: keep a fixed sample of n rows of each part (0 = all); smoke runs.
        use_cache: for data sets the protocol resizes (SPAQ, KonIQ), read the resized copies
            (made once by :func:`qfm.data.cache.build_cache`, skipped when present).
    Returns:
        (root, {"train": df, "val": df, "test": df}).
    """
    if dataset == "world":
        root = paths.world_dir()
        if not paths.world_table().is_file():
            raise TableError(f"{paths.world_table()}: the embedded default is missing "
                             f"(run `qfm world` first)")
        table = read_table(paths.world_table())
        split_path = paths.split_file(dataset, split)
    else:
        from qfm.data.facts import canonical_name
        from qfm.data.protocol_splits import split_path as protocol_split_path
        from qfm.data.readers import read_dataset

        dataset = canonical_name(dataset)
        root = paths.dataset_dir(dataset, data_root)
        table = read_dataset(dataset, root)
        # split -1 = the data set's official split (KonIQ-10k, FLIVE)
        split_path = protocol_split_path(dataset, "official" if split < 0 else str(split))
    parts = read_split(split_path, table)
    if dataset != "world" and use_cache:
        from qfm.data.cache import build_cache, cache_dir, needs_cache

        if needs_cache(dataset):  # SPAQ / KonIQ: decode the resized copies, not 4000-px photos
            cached = build_cache(dataset, table, root, cache_dir(dataset, data_root))
            rename = dict(zip(table["image"], cached["image"]))
            root = cache_dir(dataset, data_root)
            parts = {k: v.assign(image=v["image"].map(rename)) for k, v in parts.items()}
    if max_images:
        # a seeded sample, not the first rows: tables are sorted by content
        parts = {k: v.sample(min(max_images, len(v)), random_state=0).reset_index(drop=True)
                 for k, v in parts.items()}
    return root, parts
