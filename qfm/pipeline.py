"""The DVC pipeline's training runs: their configurations from ``params.yaml``, teacher reuse,
and the summaries the train and distill stages write.

The pipeline (``dvc.yaml``) names its training runs in ``params.yaml``::

    variants:  {gate_qfm: {model: {gate: true}, qfm: {enabled: true}}, ...}
    runs:
      train:   {gate_qfm-s0: {variant: gate_qfm, seed: 0}, ...}   # stage train@<name>
      distill: {full-s0: {variant: gate_qfm, seed: 0}, ...}       # stage distill@<name>

A run ``<variant>-s<seed>`` is the component sections with the variant's overrides, seed
``seed`` and content split ``seed``. A distill run is the student of the train run of the same
variant and seed, whose finished model is its teacher (reused, not retrained). No model, loss
or metric is defined here; this module only wires ``qfm.config`` to ``qfm.engine`` and reads
one run's results back. The book's tables over many runs are :mod:`qfm.tables`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from qfm import paths
from qfm.checkpoint import write_json
from qfm.config import (ConfigError, DistillConfig, RunConfig, flatten, load_params, override,
                        to_dict)

RUN_NAME = re.compile(r"^(?P<variant>[A-Za-z0-9_]+)-s(?P<seed>\d+)$")


def read_params(path: str | Path = "params.yaml") -> dict:
    """The raw ``params.yaml`` mapping (all sections, including the pipeline's)."""
    with Path(path).open() as fh:
        return yaml.safe_load(fh) or {}


def run_name(variant: str, seed: int) -> str:
    """The name of a run: ``<variant>-s<seed>``."""
    return f"{variant}-s{seed}"


def run_config(params: str | Path, variant: str, seed: int, distill: bool = False) -> RunConfig:
    """The configuration of one pipeline run.

    Args:
        params: the ``params.yaml`` file.
        variant: a key of its ``variants`` section.
        seed: the run's seed; also its content split (``train.split``).
        distill: the student of the run (``distill.enabled``), else the plain run.
    Returns:
        The typed configuration. A plain run does not use the ``distill`` section, so it keeps
        that section's defaults: exactly the teacher configuration
        :func:`qfm.distill_run.teacher_config` derives from the student, so the distill stage
        can reuse the finished train run as its teacher.
    """
    raw = read_params(params)
    variants = raw.get("variants") or {}
    if variant not in variants:
        raise ConfigError(f"variants.{variant}: unknown variant (known: {', '.join(variants)})")
    cfg = override(load_params(params), {**flatten(variants[variant]),
                                         "shared.seed": seed, "train.split": seed})
    if distill:
        return override(cfg, {"distill.enabled": True})
    return override(cfg, {f"distill.{k}": v for k, v in to_dict(DistillConfig()).items()})


def describe(cfg: RunConfig, params: str | Path) -> pd.DataFrame:
    """The keys where a run differs from ``params.yaml`` (what its variant and seed changed)."""
    base = flatten(to_dict(load_params(params)))
    mine = flatten(to_dict(cfg))
    rows = [(k, base.get(k), v) for k, v in mine.items() if base.get(k) != v]
    return pd.DataFrame(rows, columns=["key", "params.yaml", "this run"])


def reuse_teacher(teacher_run: str | Path, run_dir: str | Path) -> Path:
    """Copy a finished train run into ``run_dir/teacher`` so distillation reuses it.

    :func:`qfm.distill_run.run_distill` resumes the teacher from its saved state; a finished
    state with the same configuration hash trains nothing (it re-tests the model).

    Returns:
        The teacher folder.
    """
    src, dst = Path(teacher_run), paths.teacher_dir(run_dir)
    if not paths.run_metrics(src).is_file():
        raise FileNotFoundError(f"{src}: no finished run (metrics.json) to use as the teacher")
    if dst.exists():
        shutil.rmtree(dst)
    inner = (paths.teacher_dir(src).name, paths.expanded_dir(src).name)  # a distill run's own
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*inner))
    return dst


def summary(metrics: dict, cfg: RunConfig, name: str, variant: str, kind: str) -> dict:
    """A run's summary for ``dvc metrics show`` and the tables (no per-epoch history).

    Args:
        metrics: what :func:`qfm.engine.fit` (or ``run_distill``) returned.
        kind: ``train`` or ``distill``.
    """
    t = metrics["test"]
    out = {"run": name, "variant": variant, "kind": kind, "seed": cfg.shared.seed,
           "split": cfg.train.split, "dataset": cfg.train.dataset,
           "test": {k: t[k] for k in ("srcc", "plcc", "krcc", "rmse") if k in t},
           "val_srcc": metrics["val"]["srcc"], "best_epoch": metrics["best_epoch"],
           "epochs": metrics["epochs"], "train_seconds": round(metrics["train_seconds"], 1),
           "test_srcc_by_distortion": metrics.get("test_srcc_by_distortion", {}),
           "setting": {"gate": cfg.model.gate, "qfm": cfg.qfm.enabled, "tau": cfg.qfm.tau,
                       "rho": cfg.qfm.rho, "perturb": cfg.qfm.perturb,
                       "lambda_qfm": cfg.qfm.lambda_qfm, "distill": cfg.distill.enabled,
                       "lambda_kd": cfg.distill.lambda_kd, "views": cfg.distill.views}}
    if "teacher" in metrics:
        out["teacher_test_srcc"] = metrics["teacher"]["test"]["srcc"]
    return out


def write_summary(obj: dict, path: str | Path) -> Path:
    """Write a summary atomically (sorted keys)."""
    return write_json(obj, path)


def history_frame(metrics: dict) -> pd.DataFrame:
    """Per-epoch loss and validation SRCC of a run (for its training-curve plot)."""
    rows = [{"epoch": h["epoch"] + 1, "loss": h.get("loss"),
             "val_srcc": h.get("val", {}).get("srcc"), "seconds": h.get("seconds")}
            for h in metrics.get("history", [])]
    return pd.DataFrame(rows)


def analysis_targets(raw: dict, names: list[str]) -> dict[str, list[str]]:
    """Runs of each compared name that the pipeline trains: ``{"baseline": ["baseline-s0", …]}``."""
    known = {**((raw.get("runs") or {}).get("train") or {}),
             **((raw.get("runs") or {}).get("distill") or {})}
    return {n: sorted(r for r in known if RUN_NAME.match(r)["variant"] == n) for n in names}
