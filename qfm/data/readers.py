"""Readers for the eight real IQA data sets, as their authors distribute them.

Each ``read_<set>(root)`` turns the label files under ``root`` into the canonical table
(:mod:`qfm.data.table`); image paths are relative to ``root``. :data:`FACTS` holds every
data-set fact (label scale and direction, expected count, drops, resize, official split) in
one place (defined in :mod:`qfm.data.facts`, re-exported here). :func:`read_dataset` picks the
original-format reader, or the pyiqa meta CSV (:mod:`qfm.data.pyiqa_meta`) when that is what
the folder holds.

Tables carry ``df.attrs["ignore"]``: images on disk that belong to the release but have no
usable row (LIVE's reference copies, LIVEC's training images, KADID's references), so
``qfm data check`` does not call them extra; and ``df.attrs["source"]``: the label file read.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.data.authentic_sets import read_flive, read_koniq10k, read_livec, read_spaq
from qfm.data.facts import FACTS, Facts, build_table, canonical_name, official_part, scale_for
from qfm.data.label_io import DataError, is_image
from qfm.data.pyiqa_meta import meta_path, read_pyiqa_meta
from qfm.data.synthetic_sets import read_csiq, read_kadid10k, read_live, read_tid2013
from qfm.data.table import validate

__all__ = ["DataError", "FACTS", "Facts", "READERS", "build_table", "canonical_name",
           "is_image", "official_part", "read_dataset", "read_labels", "scale_for",
           "read_live", "read_csiq", "read_tid2013", "read_kadid10k", "read_livec",
           "read_koniq10k", "read_spaq", "read_flive"]

READERS = {"live": read_live, "csiq": read_csiq, "tid2013": read_tid2013,
           "kadid10k": read_kadid10k, "livec": read_livec, "koniq10k": read_koniq10k,
           "spaq": read_spaq, "flive": read_flive}


def read_labels(name: str, root: str | Path) -> pd.DataFrame:
    """The table as the label file gives it, not yet validated (``qfm data check`` uses this
    so that duplicate rows are one reported problem among the others, not a stop).

    The original label files win when present; otherwise pyiqa's
    ``meta_info_<Name>Dataset.csv`` at the root is read.

    Args:
        name: data-set name (any spelling :func:`canonical_name` accepts).
        root: the data set's folder.
    Returns:
        The canonical columns, image paths relative to ``root``.
    Raises:
        DataError: unknown name, missing root, or no label file (one line).
    """
    key = canonical_name(name)
    f, root = FACTS[key], Path(root)
    if not root.is_dir():
        raise DataError(f"{key}: data root {root} not found (expected the unpacked "
                        f"{f.title} folder, with {f.label_files[0]}, there)")
    if any((root / p).is_file() for p in f.label_files):
        return READERS[key](root)
    if meta_path(key, root) is not None:
        return read_pyiqa_meta(key, root)
    raise DataError(f"{key}: no label file in {root}: expected {f.label_files[0]} "
                    f"(or pyiqa's meta_info_{f.pyiqa}Dataset.csv)")


def read_dataset(name: str, root: str | Path) -> pd.DataFrame:
    """Read one data set into the validated canonical table (see :func:`read_labels`).

    Args:
        name: data-set name (any spelling :func:`canonical_name` accepts).
        root: the data set's folder.
    Returns:
        The canonical table, image paths relative to ``root``.
    Raises:
        DataError: unknown name, missing root, or no label file (one line).
        TableError: an image has two rows.
    """
    df = read_labels(name, root)
    return validate(df, f"{canonical_name(name)} ({Path(root) / df.attrs['source']})")
