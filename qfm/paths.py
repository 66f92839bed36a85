"""Every path the project uses, in one place: data, splits, checkpoints, a run folder's
layout, results. Other modules ask here instead of joining names by hand.

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


def world_unlabelled_table() -> Path:
    """Extra distorted images of the embedded default, without MOS (for distillation)."""
    return world_dir() / "unlabelled.csv"


def world_upstream_set() -> Path:
    """Pristine crops and their labels for the upstream semantic task (one ``.npz``)."""
    return world_dir() / "upstream.npz"


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


def imagenet_weights(name: str) -> Path:
    """Shipped ImageNet weights mapped onto timm (``qfm weights NAME``)."""
    return models_dir() / f"{name}.safetensors"


def features_dir() -> Path:
    """Cached backbone tokens of the embedded default (one file per upstream)."""
    return home() / "data" / "features"


def upstream_checkpoint() -> Path:
    """The upstream (semantic) pre-trained backbone of the embedded default."""
    return models_dir() / "upstream.safetensors"


def default_checkpoint() -> Path:
    """The full QFM-IQM model of the embedded default, ready for ``qfm predict``."""
    return models_dir() / "default.safetensors"


def runs_dir() -> Path:
    """One folder per training run: metrics, resumable state, logs."""
    return home() / "runs"


def run_model(run_dir: str | Path) -> Path:
    """A run's final checkpoint (``model.safetensors``, sidecar ``model.json``)."""
    return Path(run_dir) / "model.safetensors"


def run_metrics(run_dir: str | Path) -> Path:
    """A run's metrics (``metrics.json``): test and validation numbers, per-epoch history."""
    return Path(run_dir) / "metrics.json"


def run_state(run_dir: str | Path) -> Path:
    """A run's resumable training state (one file, rewritten after every epoch)."""
    return Path(run_dir) / "state.safetensors"


def teacher_dir(run_dir: str | Path) -> Path:
    """The teacher run inside a distillation run."""
    return Path(run_dir) / "teacher"


def expanded_dir(run_dir: str | Path) -> Path:
    """A distillation run's expanded set: new views, unlabelled copies, pseudo-labels."""
    return Path(run_dir) / "expanded"


def bench_results_dir() -> Path:
    """Benchmark JSON (committed): what ``benchmarks/*.py`` write and the book reads."""
    return home() / "benchmarks" / "results"


def results_dir() -> Path:
    """Metrics JSON, tables and figures read by the book."""
    return home() / "results"


def find_dataset(name: str, configured: str | None = None) -> Path | None:
    """A real data set's folder, wherever it is, or None when it is absent.

    Looked up in order: ``configured`` (a params key, unless ``auto``), ``$QFM_DATA/<name>``,
    ``<home>/data/<name>``, ``<home>/../shared/data/<name>`` (beside the repository).
    """
    places = []
    if configured and configured != "auto":
        p = Path(configured).expanduser()
        places.append(p if p.is_absolute() else home() / p)
    if os.environ.get("QFM_DATA"):
        places.append(Path(os.environ["QFM_DATA"]).expanduser() / name)
    places += [home() / "data" / name, home().parent / "shared" / "data" / name]
    return next((p.resolve() for p in places if p.is_dir()), None)


def measured_dir(name: str) -> Path:
    """Results measured on a data set the repository cannot ship (committed with git, so a
    clone without the data still shows them): ``measured/<name>/``."""
    return home() / "measured" / name
