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

import re
from pathlib import Path

import numpy as np
import pandas as pd

from qfm.data.facts import (FACTS, Facts, build_table, canonical_name, official_part,
                             scale_for)
from qfm.data.label_io import (DataError, Disk, column, is_image, mat_strings, mat_var,
                               need_file, numbers, read_csv, read_mat, read_xlsx)
from qfm.data.table import validate

__all__ = ["DataError", "FACTS", "Facts", "READERS", "build_table", "canonical_name",
           "is_image", "official_part", "read_dataset", "read_labels", "scale_for"]

# Original folders of LIVE Release 2, in the order of the 982-long arrays, with their counts.
LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def read_live(root: Path) -> pd.DataFrame:
    """LIVE Release 2: ``dmos.mat`` (or ``dmos_realigned.mat``) and ``refnames_all.mat``.

    Rows flagged by ``orgs`` are the 203 reference copies inside the distortion folders; they
    are dropped (and listed in ``attrs["ignore"]``). Images are ``<folder>/img<k>.bmp`` with
    ``k`` counted within each folder in array order.

    Args:
        root: the unpacked release folder.
    Returns:
        The canonical table (779 rows for the full release).
    """
    root = Path(root)
    # dmos.mat is the file most published numbers use; the realigned one adds the std
    src = "dmos.mat" if (root / "dmos.mat").is_file() else "dmos_realigned.mat"
    path = need_file(root, src, "live")
    mat = read_mat(path)
    dmos = mat_var(path, "dmos" if src == "dmos.mat" else "dmos_new", mat).ravel()
    orgs = mat_var(path, "orgs", mat).ravel()
    std = mat_var(path, "dmos_std", mat).ravel() if src != "dmos.mat" else None
    refs = mat_strings(mat_var(need_file(root, "refnames_all.mat", "live"), "refnames_all"))
    n = sum(c for _, c in LIVE_FOLDERS)
    if not len(dmos) == len(orgs) == len(refs) == n:
        raise DataError(f"{root / src}: expected {n} entries, found {len(dmos)} "
                        f"(orgs {len(orgs)}, refnames_all {len(refs)})")
    disk = Disk(root)
    images = [disk.resolve(f"{d}/img{k}.bmp") for d, c in LIVE_FOLDERS for k in range(1, c + 1)]
    folder = [d for d, c in LIVE_FOLDERS for _ in range(c)]
    keep = np.asarray(orgs).astype(float) != 1
    pick = lambda seq: [x for x, k in zip(seq, keep) if k]  # noqa: E731
    return build_table(
        "live", pick(images), dmos[keep], [Path(r).stem for r in pick(refs)], src,
        ignore=[im for im, k in zip(images, keep) if not k],
        std=None if std is None else std[keep], distortion=pick(folder))


# CSIQ distortion names in the workbook -> (folder under dst_imgs, token in file names).
CSIQ_TYPES = {"noise": ("awgn", "AWGN"), "awgn": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"),
              "jpeg 2000": ("jpeg2000", "jpeg2000"), "jpeg2000": ("jpeg2000", "jpeg2000"),
              "fnoise": ("fnoise", "fnoise"), "1/f noise": ("fnoise", "fnoise"),
              "blur": ("blur", "BLUR"), "contrast": ("contrast", "contrast")}


def _csiq_workbook(path: Path) -> pd.DataFrame:
    # The sheet has blank leading rows/columns; find the header row by its cells.
    raw = read_xlsx(path, sheet_name="all_by_image", header=None)
    for i, row in raw.iterrows():
        cells = [str(v).strip().lower() for v in row.tolist()]
        if "image" in cells and "dmos" in cells:
            body = raw.iloc[i + 1:].copy()
            body.columns = cells
            return body[body["image"].notna()]  # drops blank and note rows below the table
    raise DataError(f"{path}: sheet all_by_image has no header row with 'image' and 'dmos'")


def _csiq_id(v) -> str:
    # reference names like 1600 load as numbers
    return str(int(v)) if isinstance(v, (int, float, np.number)) and float(v).is_integer() \
        else str(v).strip()


def read_csiq(root: Path) -> pd.DataFrame:
    """CSIQ: ``csiq.DMOS.xlsx`` (sheet ``all_by_image``) or text lines ``1600.AWGN.1.png 0.06``.

    Args:
        root: folder holding the label file, ``dst_imgs/<type>/`` and ``src_imgs/``.
    Returns:
        The canonical table (866 rows), content = reference name, DMOS flipped.
    """
    root, disk = Path(root), Disk(Path(root))
    if (root / "csiq.DMOS.xlsx").is_file():
        body = _csiq_workbook(root / "csiq.DMOS.xlsx")
        src = root / "csiq.DMOS.xlsx"
        kinds = [str(t).strip().lower() for t in column(body, src, "dst_type")]
        bad = sorted({k for k in kinds if k not in CSIQ_TYPES})
        if bad:
            raise DataError(f"{src}: unknown dst_type {bad[0]!r}")
        refs = [_csiq_id(v) for v in column(body, src, "image")]
        levels = [int(v) if pd.notna(v) else -1 for v in column(body, src, "dst_lev")]
        images = [disk.resolve(f"dst_imgs/{CSIQ_TYPES[k][0]}/{r}.{CSIQ_TYPES[k][1]}.{lv}.png")
                  for r, k, lv in zip(refs, kinds, levels)]
        return build_table(
            "csiq", images, numbers(column(body, src, "dmos")), refs, src.name,
            std=numbers(column(body, src, "dmos_std")),
            distortion=[CSIQ_TYPES[k][0] for k in kinds], level=levels)
    path = need_file(root, "csiq_label.txt", "csiq")
    text = path.read_text(encoding="utf-8-sig")
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    names = [p[0] for p in lines]
    parts = [n.split(".") for n in names]  # <ref>.<TYPE>.<level>.png
    kinds = [p[1].lower() if len(p) > 2 else "" for p in parts]
    return build_table(
        "csiq", [disk.resolve(f"dst_imgs/{k}/{n}") for n, k in zip(names, kinds)],
        numbers(p[1] if len(p) > 1 else "nan" for p in lines), [p[0] for p in parts],
        path.name, distortion=kinds,
        level=[int(p[2]) if len(p) > 2 and p[2].isdigit() else -1 for p in parts])


# <ref>_<type>_<level>.<ext>, for TID2013 (I01_01_1.bmp) and KADID-10k (I01_01_01.png)
_SYNTH_NAME = re.compile(r"^i(\d+)_(\d+)_(\d+)\.", re.IGNORECASE)


def read_tid2013(root: Path) -> pd.DataFrame:
    """TID2013: ``mos_with_names.txt`` (``5.51429 I01_01_1.bmp``, CRLF) and ``mos_std.txt``.

    Names are matched to ``distorted_images/`` ignoring case; content ids are upper-cased
    (``I01``) so that ``i25`` and ``I25`` are one reference.

    Args:
        root: the unpacked release folder.
    Returns:
        The canonical table (3000 rows).
    """
    root, disk = Path(root), Disk(Path(root))
    path = need_file(root, "mos_with_names.txt", "tid2013")
    rows = [ln.split() for ln in path.read_text(encoding="utf-8-sig", errors="replace")
            .splitlines() if ln.strip()]
    names = [r[-1] for r in rows]
    std = None
    if (root / "mos_std.txt").is_file():
        std = numbers(ln for ln in (root / "mos_std.txt").read_text().split())
        if len(std) != len(names):
            raise DataError(f"{root / 'mos_std.txt'}: {len(std)} values for {len(names)} "
                            f"rows of mos_with_names.txt")
    match = [_SYNTH_NAME.match(n) for n in names]
    content = [f"I{m.group(1)}" if m else Path(n).stem.upper() for m, n in zip(match, names)]
    return build_table(
        "tid2013", [disk.resolve(f"distorted_images/{n}") for n in names],
        numbers(r[0] if len(r) > 1 else "nan" for r in rows), content, path.name, std=std,
        distortion=[m.group(2) if m else "" for m in match],
        level=[int(m.group(3)) if m else -1 for m in match])


def read_kadid10k(root: Path) -> pd.DataFrame:
    """KADID-10k: ``dmos.csv`` (``dist_img,ref_img,dmos,var``); the "dmos" is MOS 1-5.

    Args:
        root: folder with ``dmos.csv`` and ``images/`` (distorted and references together).
    Returns:
        The canonical table (10,125 rows), std = sqrt(var).
    """
    root, disk = Path(root), Disk(Path(root))
    path = need_file(root, "dmos.csv", "kadid10k")
    df = read_csv(path)
    dist = [str(x) for x in column(df, path, "dist_img")]
    ref = [str(x) for x in column(df, path, "ref_img")]
    match = [_SYNTH_NAME.match(n) for n in dist]
    var = numbers(column(df, path, "var")) if "var" in df.columns else None
    return build_table(
        "kadid10k", [disk.resolve(f"images/{n}") for n in dist],
        numbers(column(df, path, "dmos")), [Path(r).stem for r in ref], path.name,
        ignore={disk.resolve(f"images/{r}") for r in ref},
        std=None if var is None else np.sqrt(var),
        distortion=[m.group(2) if m else "" for m in match],
                  level=[int(m.group(3)) if m else -1 for m in match])


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
    from qfm.data.pyiqa_meta import meta_path, read_pyiqa_meta

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
