"""Provenance of the book's numbers: the software they were made with and the inputs they
were made from (hashes), for the Reproducibility page.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

import pandas as pd

from qfm import paths
from qfm.files import code_version, sha256


def environment() -> pd.DataFrame:
    """Versions of Python, the main libraries, the platform and the git commit."""
    rows = [("python", platform.python_version()), ("platform", platform.platform()),
            ("cpus", str(os.cpu_count()))]
    for pkg in ("qfm", "torch", "timm", "numpy", "scipy", "scikit-image", "pandas", "dvc",
                "papermill", "jupyter-book"):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    code = code_version()
    rows.append(("git commit", (code.get("git") or "")[:12] + (" (dirty)" if code.get("dirty")
                                                                else "")))
    return pd.DataFrame(rows, columns=["component", "version"]).set_index("component")


def file_hashes(files) -> pd.DataFrame:
    """SHA-256 (first 16 hex digits) of each existing file, named relative to the project
    root (``QFM_HOME``) so that no machine path reaches the book.

    Args:
        files: paths (absolute or relative to the working directory); missing ones are
            left out.
    Returns:
        Columns ``file, sha256``.
    """
    from pathlib import Path

    root = paths.home()
    rows = []
    for f in map(Path, files):
        if not f.is_file():
            continue
        full = f.resolve() if f.is_absolute() else (Path.cwd() / f)
        try:
            name = full.relative_to(root).as_posix()
        except ValueError:
            name = f.name
        rows.append((name, sha256(full)[:16]))
    return pd.DataFrame(rows, columns=["file", "sha256"])
