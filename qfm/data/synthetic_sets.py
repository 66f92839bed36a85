"""Readers of the four synthetic-distortion sets (LIVE, CSIQ, TID2013, KADID-10k), as their
authors distribute them: each ``read_<set>(root)`` returns the canonical table
(:mod:`qfm.data.table`) with image paths relative to ``root`` (:mod:`qfm.data.readers` picks).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from qfm.data.facts import build_table
from qfm.data.label_io import (
    DataError,
    Disk,
    column,
    mat_strings,
    mat_var,
    need_file,
    numbers,
    read_csv,
    read_mat,
    read_xlsx,
)

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
