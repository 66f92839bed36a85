"""The one torch Dataset: reads a canonical table, returns image tensors and labels."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch.utils.data import Dataset

from qfm.data.label_io import DataError
from qfm.data.transforms import load_rgb


class IQADataset(Dataset):
    """Images of a canonical table with their normalised quality.

    Args:
        table: canonical table rows (``image`` relative to ``root``, ``mos`` in [0, 1]).
        root: the data set's root folder.
        transform: PIL image → tensor (``TrainTransform`` or ``TestTransform``).
        cache: keep decoded images in memory (worth it for small data sets).
    Items:
        ``{"image": (3, H, W) or (n, 3, H, W), "mos": float32 scalar, "index": int}``
    """

    def __init__(self, table: pd.DataFrame, root: str | Path, transform: Callable,
                 cache: bool = False):
        self.table = table.reset_index(drop=True)
        self.root = Path(root)
        self.transform = transform
        self.cache = {} if cache else None
        self.mos = torch.tensor(self.table["mos"].to_numpy(), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.table)

    def load(self, i: int):
        """Decoded RGB image of row ``i`` (cached if enabled)."""
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        path = self.root / self.table.at[i, "image"]
        try:
            im = load_rgb(path)
        except FileNotFoundError:
            raise DataError(f"{path}: image listed in the table is missing") from None
        except OSError as err:
            raise DataError(f"{path}: cannot decode image ({err})") from None
        if self.cache is not None:
            self.cache[i] = im
        return im

    def __getitem__(self, i: int) -> dict:
        return {"image": self.transform(self.load(i)), "mos": self.mos[i], "index": i}
