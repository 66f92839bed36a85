"""Provenance of the book's numbers: the software they were made with and the inputs they
were made from (hashes), for the Reproducibility page; and the record of a study measured
elsewhere and committed (``measured/<name>/provenance.json``), for the LIVEC page.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from qfm import paths
from qfm.files import sha256
from qfm.report.tables import Table, html_table
from qfm.study import record


def environment() -> pd.DataFrame:
    """Versions of Python, the main libraries and the platform. No git commit: the executed
    notebook showing this is a DVC output, and a clone runs another commit (and a "dirty"
    tree while DVC rewrites dvc.lock) than the one its committed hash was made at."""
    rows = [("python", platform.python_version()), ("platform", platform.platform()),
            ("cpus", str(os.cpu_count()))]
    for pkg in ("qfm", "torch", "timm", "numpy", "scipy", "scikit-image", "pandas", "dvc",
                "papermill", "jupyter-book"):
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
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


def env_table() -> Table:
    """:func:`environment` as the page's table."""
    return html_table(environment().reset_index())


def hash_table(files) -> Table:
    """:func:`file_hashes` of ``files`` as the page's table."""
    return html_table(file_hashes(files))


def measured_table(out_dir: str | Path) -> Table:
    """The provenance of a committed measured study (:func:`qfm.study.record.provenance_table`:
    commit, command, date, machine, data fingerprints; "not measured yet" where absent)."""
    return html_table(record.provenance_table(out_dir), formats={"value": str})  # 930, not 930.000
