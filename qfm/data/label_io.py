"""Low-level reading of label files and data-set folders, shared by the readers.

Every failure becomes a one-line :class:`DataError` that names the file, so ``qfm data check``
can print it as it is. Unparseable label values become NaN rather than errors, so that the
check reports them row by row instead of stopping at the first.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import loadmat

IMAGE_EXT = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".webp"}


class DataError(ValueError):
    """A data set's root, label file or image is missing or unreadable (one line, names the
    file)."""


class Disk:
    """Resolve label-file names to the names on disk, ignoring case.

    TID2013 names mix ``I``/``i`` and archives unpacked on Windows differ in case; matching
    through one cached listing per folder also avoids a ``stat`` per image.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._dirs: dict[str, tuple[set[str], dict[str, str]]] = {}

    def _listing(self, rel_dir: str) -> tuple[set[str], dict[str, str]]:
        if rel_dir not in self._dirs:
            try:
                names = sorted(os.listdir(self.root / rel_dir if rel_dir else self.root))
            except OSError:
                names = []
            lower: dict[str, str] = {}
            for n in names:
                lower.setdefault(n.lower(), n)
            self._dirs[rel_dir] = (set(names), lower)
        return self._dirs[rel_dir]

    def resolve(self, rel: str) -> str:
        """The on-disk spelling of ``rel`` (POSIX, relative), or ``rel`` if nothing matches."""
        rel = str(rel).replace("\\", "/").strip("/")
        parent, _, base = rel.rpartition("/")
        if parent:
            parent = self.resolve(parent)
        exact, lower = self._listing(parent)
        hit = base if base in exact else lower.get(base.lower(), base)
        return f"{parent}/{hit}" if parent else hit

    def resolve_lossless(self, rel: str) -> str:
        """:meth:`resolve`, where a ``.bmp`` may be stored as a lossless ``.png`` (or back)."""
        hit = self.resolve(rel)
        stem, _, ext = hit.rpartition(".")
        if ext.lower() in ("bmp", "png") and not self.exists(hit):
            other = self.resolve(f"{stem}.{'png' if ext.lower() == 'bmp' else 'bmp'}")
            return other if self.exists(other) else hit
        return hit

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` (any case) exists."""
        return (self.root / self.resolve(rel)).exists()


def need_file(root: Path, rel: str, name: str) -> Path:
    """``root / rel``, or a :class:`DataError` saying data set ``name`` expected it there."""
    path = Path(root) / rel
    if not path.is_file():
        raise DataError(f"{name}: expected {rel} in {root} (not found)")
    return path


def read_mat(path: Path) -> dict:
    """All variables of a MATLAB file (v7.2 or older, as the IQA releases ship)."""
    try:
        return loadmat(path)
    except (NotImplementedError, ValueError, OSError) as e:  # v7.3 files raise NotImpl.
        raise DataError(f"{path}: cannot read as MATLAB file ({e})") from None


def mat_var(path: Path, key: str, mat: dict | None = None) -> np.ndarray:
    """Variable ``key`` of the MATLAB file ``path`` (read unless ``mat`` is given)."""
    mat = read_mat(path) if mat is None else mat
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: variable {key!r} not found (has {', '.join(found)})")
    return mat[key]


def mat_strings(a: np.ndarray) -> list[str]:
    """A MATLAB cell of strings (an object array of 1-element string arrays) as a list."""
    out = []
    for x in np.asarray(a, dtype=object).ravel():
        while isinstance(x, np.ndarray):
            x = x.ravel()[0] if x.size else ""
        out.append(str(x).strip())
    return out


def numbers(values) -> np.ndarray:
    """Values as float64; anything unparseable becomes NaN (reported by the check)."""
    return pd.to_numeric(pd.Series(list(values)), errors="coerce").to_numpy(np.float64)


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV label file (a UTF-8 byte-order mark is tolerated)."""
    try:
        return pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError) as e:
        raise DataError(f"{path}: cannot read as CSV ({e})") from None


def read_xlsx(path: Path, **kw) -> pd.DataFrame:
    """One sheet of an Excel label file (``pandas.read_excel`` keywords)."""
    try:
        return pd.read_excel(path, **kw)
    except Exception as e:  # openpyxl raises many types for a bad workbook
        raise DataError(f"{path}: cannot read as Excel workbook ({type(e).__name__}: {e})") \
            from None


def column(df: pd.DataFrame, path: Path, *names: str) -> pd.Series:
    """The first of ``names`` present in ``df`` (case and padding ignored)."""
    cols = {str(c).strip().lower(): c for c in df.columns}
    for n in names:
        if n.lower() in cols:
            return df[cols[n.lower()]]
    raise DataError(f"{path}: no column {names[0]!r} (has {', '.join(map(str, df.columns))})")


def is_image(path: str | Path) -> bool:
    """Whether a file name has an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXT
