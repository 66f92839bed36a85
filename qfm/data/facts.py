"""The facts of the eight real IQA data sets, in one table.

Label scale and direction, expected image count, content rule, documented drops, resize before
training, official split, and the file names to look for. Every reader, the check, the splits
and the cache read these facts from :data:`FACTS`; no other module hard-codes them.
:func:`build_table` applies a set's scale and direction when a reader makes its table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qfm.data.label_io import DataError
from qfm.data.table import make_table


@dataclass(frozen=True)
class Facts:
    """What we know about one data set; the single place such facts live."""

    title: str  # name as published
    expected: int  # images in the full release, after the documented drops
    lo: float  # label scale ends, used to map labels to [0, 1]
    hi: float
    higher_better: bool  # False for DMOS
    synthetic: bool  # True: content = reference, splits by reference
    label_files: tuple[str, ...]  # original label files, in order of preference
    pyiqa: str  # <Name> in pyiqa's meta_info_<Name>Dataset.csv
    image_dirs: tuple[str, ...] = ()  # folders that hold the images (pyiqa path prefixes)
    drop_first: int = 0  # leading label rows everybody drops (LIVEC's training images)
    short_side: int = 0  # preprocessing: resize so the short side is this (0 = no)
    size: tuple[int, int] | None = None  # preprocessing: resize to exactly (w, h)
    official: bool = False  # an official train/val/test split ships with the labels
    alt_scale: tuple[float, float] | None = None  # second scale the labels may come in


FACTS: dict[str, Facts] = {
    "live": Facts("LIVE Release 2", 779, 0.0, 100.0, False, True,
                  ("dmos.mat", "dmos_realigned.mat"), "LIVEIQA"),
    "csiq": Facts("CSIQ", 866, 0.0, 1.0, False, True,
                  ("csiq.DMOS.xlsx", "csiq_label.txt"), "CSIQ"),
    "tid2013": Facts("TID2013", 3000, 0.0, 9.0, True, True,
                     ("mos_with_names.txt",), "TID2013", ("distorted_images",)),
    "kadid10k": Facts("KADID-10k", 10125, 1.0, 5.0, True, True,
                      ("dmos.csv",), "KADID10k", ("images",)),
    "livec": Facts("LIVE Challenge (CLIVE)", 1162, 0.0, 100.0, True, False,
                   ("Data/AllMOS_release.mat",), "LIVEChallenge", ("Images",), drop_first=7),
    "koniq10k": Facts("KonIQ-10k", 10073, 0.0, 100.0, True, False,
                      ("koniq10k_distributions_sets.csv",
                       "koniq10k_scores_and_distributions.csv"),
                      "KonIQ10k", ("1024x768", "512x384"), size=(512, 384), official=True,
                      alt_scale=(1.0, 5.0)),
    "spaq": Facts("SPAQ", 11125, 0.0, 100.0, True, False,
                  ("Annotations/MOS and Image attribute scores.xlsx",), "SPAQ", ("TestImage",),
                  short_side=512),
    "flive": Facts("FLIVE (PaQ-2-PiQ)", 39810, 0.0, 100.0, True, False,
                   ("labels_image.csv",), "FLIVE", official=True),
}

# Spellings people use for the same data sets (lower-cased, punctuation removed).
_ALIASES = {"liveiqa": "live", "live2": "live", "kadid": "kadid10k", "tid": "tid2013",
            "clive": "livec", "livechallenge": "livec", "koniq": "koniq10k",
            "livefb": "flive", "paq2piq": "flive"}


def canonical_name(name: str) -> str:
    """Map a data-set name (``KonIQ-10k``, ``clive``, ``LIVE``) to its :data:`FACTS` key.

    Raises:
        DataError: the name is not one of the eight data sets.
    """
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    key = _ALIASES.get(key, key)
    if key not in FACTS:
        raise DataError(f"unknown data set {name!r} (known: {', '.join(FACTS)})")
    return key


def official_part(value) -> str:
    """Map an official split label (``training``, ``validation``, ``0``/``1``/``2``, ...) to
    train/val/test, or ``""`` when it names none."""
    v = str(value).strip().lower()
    return {"training": "train", "train": "train", "0": "train", "validation": "val",
            "valid": "val", "val": "val", "1": "val", "test": "test", "testing": "test",
            "2": "test"}.get(v, "")


def scale_for(name: str, raw: np.ndarray) -> tuple[float, float]:
    """The label scale of ``raw``: the documented one, or ``alt_scale`` when every finite
    label fits it and the documented scale would be wrong (KonIQ ships 1-5 and 0-100)."""
    f = FACTS[name]
    finite = raw[np.isfinite(raw)]
    if f.alt_scale and finite.size and finite.max() <= f.alt_scale[1] < f.hi:
        return f.alt_scale
    return f.lo, f.hi


def build_table(name: str, image, raw, content, source: str, ignore=(), scale=None,
                **kw) -> pd.DataFrame:
    """:func:`make_table` with data set ``name``'s scale and direction, plus the attrs.

    Args:
        name: canonical data-set key.
        image, raw, content: as for :func:`make_table`.
        source: the label file read (``attrs["source"]``).
        ignore: images on disk that belong to the release but have no row.
        scale: (lo, hi) overriding the documented scale (see :func:`scale_for`).
        **kw: further :func:`make_table` keywords (std, distortion, level, official).
    Returns:
        The canonical table.
    """
    f = FACTS[name]
    lo, hi = scale or (f.lo, f.hi)
    df = make_table(image, raw, content, lo=lo, hi=hi, higher_better=f.higher_better, **kw)
    df.attrs["source"] = source
    df.attrs["ignore"] = sorted(ignore)
    return df
