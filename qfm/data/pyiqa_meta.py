"""Read pyiqa's converted label files (``meta_info_<Name>Dataset.csv``) into the canonical table.

Many users already hold the data sets in this form. Two layouts exist: no-reference
(``img_name,mos,std,…``; KonIQ adds ``split``, FLIVE ``img_name/patch_name,mos,split``, SPAQ
keeps ``Image name,MOS,…``) and full-reference (``ref_name,dist_name,mos|dmos,std``). The
column called ``mos`` may hold DMOS (LIVE, CSIQ) and KADID's ``dmos`` is MOS: direction and
scale always come from :data:`qfm.data.readers.FACTS`, never from the column name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qfm.data.facts import FACTS, build_table, canonical_name, official_part, scale_for
from qfm.data.label_io import DataError, Disk, column, numbers, read_csv

_NAME_COLUMNS = ("dist_name", "img_name", "img_name/patch_name", "image_name", "image name",
                 "name")
_PROBE = 200  # rows used to find which folder the names are relative to


def meta_path(name: str, root: str | Path) -> Path | None:
    """The pyiqa meta CSV of data set ``name`` directly under ``root`` (any case), or None."""
    want = f"meta_info_{FACTS[canonical_name(name)].pyiqa}Dataset.csv".lower()
    root = Path(root)
    if not root.is_dir():
        return None
    return next((p for p in sorted(root.iterdir()) if p.name.lower() == want and p.is_file()),
                None)


def _prefix(disk: Disk, names: list[str], folders: tuple[str, ...]) -> str:
    # pyiqa stores names relative to its `dataroot_target` (e.g. kadid10k/images); accept
    # both that and paths relative to the root by probing which prefix finds the files.
    probe = names[:_PROBE]
    best, hits = "", -1
    for cand in ("",) + tuple(f"{d}/" for d in folders):
        n = sum(disk.exists(cand + p) for p in probe)
        if n > hits:
            best, hits = cand, n
    return best


def read_pyiqa_meta(name: str, root: str | Path) -> pd.DataFrame:
    """Read ``meta_info_<Name>Dataset.csv`` at ``root``.

    FLIVE's patch rows (``_patch_`` names or the ``patches/`` folder) are dropped; a LIVEC
    meta file that still holds the 7 training images (1169 rows) loses its first 7 rows.

    Args:
        name: data-set name.
        root: the data set's folder.
    Returns:
        The canonical table; ``official`` from a ``split`` column where the set has one.
    Raises:
        DataError: no meta file, or a synthetic set's file without ``ref_name``.
    """
    key = canonical_name(name)
    f, root = FACTS[key], Path(root)
    path = meta_path(key, root)
    if path is None:
        raise DataError(f"{key}: expected meta_info_{f.pyiqa}Dataset.csv in {root} (not found)")
    df = read_csv(path)
    cols = {str(c).strip().lower(): c for c in df.columns}
    name_col = next((cols[c] for c in _NAME_COLUMNS if c in cols), None)
    if name_col is None:
        raise DataError(f"{path}: no image-name column (expected one of "
                        f"{', '.join(_NAME_COLUMNS)})")
    names = df[name_col].astype(str).str.replace("\\", "/", regex=False)
    if key == "flive":
        keep = ~(names.str.contains("_patch_", regex=False) | names.str.startswith("patches/"))
        df, names = df[keep.to_numpy()], names[keep]
    if f.drop_first and len(df) == f.expected + f.drop_first:
        df, names = df.iloc[f.drop_first:], names.iloc[f.drop_first:]
    names = names.tolist()
    disk = Disk(root)
    pre = _prefix(disk, names, f.image_dirs)
    images = [disk.resolve(pre + n) for n in names]
    raw = numbers(column(df, path, "mos", "dmos", "score"))
    std = numbers(df[cols["std"]]) if "std" in cols else None
    refs, ignore = None, []
    if "ref_name" in cols:
        refs = [str(r) for r in df[cols["ref_name"]]]
        ignore = {disk.resolve(pre + r) for r in refs}
    if f.synthetic:
        if refs is None:
            raise DataError(f"{path}: no ref_name column; {key} is split by reference, so it "
                            f"needs one")
        # TID2013 spells I25 and i25: one reference, one content id
        content = [Path(r).stem.upper() if key == "tid2013" else Path(r).stem for r in refs]
    else:
        content = images
    extra = {}
    if f.official and "split" in cols:
        extra["official"] = [official_part(s) for s in df[cols["split"]]]
    return build_table(key, images, raw, content, path.name, ignore=ignore,
                       scale=scale_for(key, np.asarray(raw)), std=std, **extra)
