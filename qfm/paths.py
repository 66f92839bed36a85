"""Every path the project uses, in one place. No other module builds paths by hand.

The repository root is the current working directory (where ``dvc.yaml`` lives) unless
``QFM_HOME`` says otherwise; the data root comes from ``params.yaml`` (``shared.data_root``)
or the ``QFM_DATA`` environment variable, which wins.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The project's working root (``QFM_HOME`` or the current directory)."""
    return Path(os.environ.get("QFM_HOME", ".")).resolve()


def data_root(configured: str | None = None) -> Path:
    """Root folder of the real data sets: ``QFM_DATA`` > ``configured`` > ``<home>/data``."""
    env = os.environ.get("QFM_DATA")
    if env:
        return Path(env).expanduser().resolve()
    if configured:
        p = Path(configured).expanduser()
        return p if p.is_absolute() else home() / p
    return home() / "data"


def dataset_dir(name: str, configured: str | None = None) -> Path:
    """Folder of one real data set under the data root (e.g. ``data/koniq10k``)."""
    return data_root(configured) / name


def world_dir() -> Path:
    """The generated embedded-default world (images, table, splits)."""
    return home() / "data" / "world"


def world_table() -> Path:
    """Canonical table of the embedded default."""
    return world_dir() / "table.csv"


def world_unlabelled_dir() -> Path:
    """Extra distorted images of the embedded default, without MOS (for distillation)."""
    return world_dir() / "unlabelled"


def world_upstream_table() -> Path:
    """Pristine crops with their content/photo labels (upstream semantic task)."""
    return world_dir() / "upstream.csv"


def splits_dir(dataset: str) -> Path:
    """Split files of one data set: ``splits/<dataset>/split_<k>.csv``."""
    if dataset == "world":
        return world_dir() / "splits"
    return home() / "splits" / dataset


def split_file(dataset: str, index: int) -> Path:
    """One split file (columns ``image,split``)."""
    return splits_dir(dataset) / f"split_{index}.csv"


def models_dir() -> Path:
    """Trained checkpoints that DVC tracks."""
    return home() / "models"


def upstream_checkpoint() -> Path:
    """The upstream (semantic) pre-trained backbone of the embedded default."""
    return models_dir() / "upstream.safetensors"


def default_checkpoint() -> Path:
    """The full QFM-IQM model of the embedded default, ready for ``qfm predict``."""
    return models_dir() / "default.safetensors"


def runs_dir() -> Path:
    """One folder per training run: metrics, resumable state, logs."""
    return home() / "runs"


def results_dir() -> Path:
    """Metrics JSON, tables and figures read by the book."""
    return home() / "results"
