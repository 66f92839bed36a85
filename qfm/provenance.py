"""Provenance of the book's numbers: the software they were made with and the inputs they
were made from (hashes), for the Reproducibility page.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

import pandas as pd

from qfm import paths
from qfm.checkpoint import code_version, sha256


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


def input_hashes(run_names: list[str] | None = None) -> pd.DataFrame:
    """SHA-256 of the embedded default's table and split files, the upstream checkpoint and
    the checkpoints of ``run_names`` (default: every finished run), short form (16 hex)."""
    files = [paths.world_table(), *sorted(paths.splits_dir("world").glob("split_*.csv")),
             paths.upstream_checkpoint()]
    runs = sorted(paths.runs_dir().glob(f"*/{paths.run_model('.').name}"))
    if run_names is not None:
        runs = [r for r in runs if r.parent.name in set(run_names)]
    rows = [(f.relative_to(paths.home()).as_posix(), sha256(f)[:16]) for f in files + runs
            if f.is_file()]
    return pd.DataFrame(rows, columns=["file", "sha256"])
