"""Readers of the four authentic-distortion sets (LIVEC, KonIQ-10k, SPAQ, LIVEFB), as their
authors distribute them: each ``read_<set>(root)`` returns the canonical table
(:mod:`qfm.data.table`) with image paths relative to ``root`` (:mod:`qfm.data.readers` picks).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.data.facts import FACTS, build_table, official_part, scale_for
from qfm.data.label_io import (
    DataError,
    Disk,
    column,
    mat_strings,
    mat_var,
    need_file,
    numbers,
    read_csv,
    read_xlsx,
)


def read_livec(root: Path) -> pd.DataFrame:
    """LIVE Challenge: ``Data/AllImages_release.mat``, ``AllMOS_release.mat``, ``AllStdDev_...``.

    The first 7 rows (training images t1-t7) are dropped; ``.bmp``/``.png`` names both resolve.

    Args:
        root: folder with ``Data/`` and ``Images/``.
    Returns:
        The canonical table (1162 rows), content = image.
    """
    root, disk = Path(root), Disk(Path(root))
    names = mat_strings(mat_var(need_file(root, "Data/AllImages_release.mat", "livec"),
                                  "AllImages_release"))
    mos = mat_var(need_file(root, "Data/AllMOS_release.mat", "livec"), "AllMOS_release").ravel()
    std = None
    if (root / "Data/AllStdDev_release.mat").is_file():
        std = mat_var(root / "Data/AllStdDev_release.mat", "AllStdDev_release").ravel()
    if len(names) != len(mos) or (std is not None and len(std) != len(mos)):
        raise DataError(f"{root / 'Data'}: AllImages_release has {len(names)} entries, "
                        f"AllMOS_release {len(mos)}")
    k = FACTS["livec"].drop_first
    images = [disk.resolve_lossless(f"Images/{n}") for n in names]
    return build_table("livec", images[k:], mos[k:], images[k:], "Data/AllMOS_release.mat",
                       ignore=images[:k], std=None if std is None else std[k:])


def read_koniq10k(root: Path) -> pd.DataFrame:
    """KonIQ-10k: ``koniq10k_distributions_sets.csv`` (with the official ``set``) or
    ``koniq10k_scores_and_distributions.csv``; images in ``1024x768/`` or ``512x384/``.

    Args:
        root: folder with the CSV(s) and image folder(s).
    Returns:
        The canonical table (10,073 rows), ``official`` when the sets file is present.
    """
    root, disk = Path(root), Disk(Path(root))
    f = FACTS["koniq10k"]
    path = root / f.label_files[0]
    if not path.is_file():
        path = need_file(root, f.label_files[1], "koniq10k")
    df = read_csv(path)
    folder = next((d for d in f.image_dirs if (root / d).is_dir()), f.image_dirs[0])
    names = [str(x) for x in column(df, path, "image_name")]
    raw = numbers(column(df, path, "MOS"))
    extra = {}
    if "set" in df.columns:
        extra["official"] = [official_part(s) for s in df["set"]]
    images = [disk.resolve(f"{folder}/{n}") for n in names]
    return build_table("koniq10k", images, raw, images, path.name,
                       scale=scale_for("koniq10k", raw), std=numbers(column(df, path, "SD")),
                       **extra)


def read_spaq(root: Path) -> pd.DataFrame:
    """SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (``Image name``, ``MOS``).

    Args:
        root: folder with ``Annotations/`` and ``TestImage/``.
    Returns:
        The canonical table (11,125 rows), content = image.
    """
    root, disk = Path(root), Disk(Path(root))
    rel = FACTS["spaq"].label_files[0]
    path = need_file(root, rel, "spaq")
    df = read_xlsx(path)
    images = [disk.resolve(f"TestImage/{n}") for n in column(df, path, "Image name")]
    return build_table("spaq", images, numbers(column(df, path, "MOS")), images, rel)


_FLIVE_TRAIN = ("labels<=640_padded.csv", "labels=640_padded.csv")


def _flive_official(root: Path, images: list[str]) -> list[str] | None:
    # val = is_valid rows of the <=640 file, test = labels640.csv, train = the rest (the
    # convention pyiqa and later papers follow). Names are matched by file name, since the
    # padded copies may sit in another folder.
    padded = next((root / n for n in _FLIVE_TRAIN if (root / n).is_file()), None)
    if padded is None or not (root / "labels640.csv").is_file():
        return None
    pad = read_csv(padded)
    test = read_csv(root / "labels640.csv")
    key = lambda s: str(s).replace("\\", "/").rsplit("/", 1)[-1].lower()  # noqa: E731
    valid = column(pad, padded, "is_valid").astype(str).str.strip().str.lower()
    val_names = {key(n) for n, v in zip(column(pad, padded, "name_image", "name"), valid)
                 if v in ("true", "1", "1.0")}
    test_names = {key(n) for n in column(test, root / "labels640.csv", "name_image", "name")}
    return ["test" if key(im) in test_names else "val" if key(im) in val_names else "train"
            for im in images]


def read_flive(root: Path) -> pd.DataFrame:
    """FLIVE: ``labels_image.csv`` (``name,mos``, names relative to the root).

    Args:
        root: folder with the label CSVs and the image folders beside them.
    Returns:
        The canonical table (39,810 rows); ``official`` when ``labels<=640_padded.csv`` (or
        ``labels=640_padded.csv``) and ``labels640.csv`` are present.
    """
    root, disk = Path(root), Disk(Path(root))
    path = need_file(root, "labels_image.csv", "flive")
    df = read_csv(path)
    images = [disk.resolve(str(n)) for n in column(df, path, "name", "name_image")]
    official = _flive_official(root, images)
    extra = {} if official is None else {"official": official}
    raw = numbers(column(df, path, "mos", "mos_image"))
    return build_table("flive", images, raw, images, path.name, **extra)
