"""Helpers the pipeline's notebooks call: run configurations from ``params.yaml``, metric
summaries for DVC, and the tables the book shows.

The pipeline (``dvc.yaml``) names its training runs in ``params.yaml``::

    variants:  {gate_qfm: {model: {gate: true}, qfm: {enabled: true}}, ...}
    runs:
      train:   {gate_qfm-s0: {variant: gate_qfm, seed: 0}, ...}   # stage train@<name>
      distill: {full-s0: {variant: gate_qfm, seed: 0}, ...}       # stage distill@<name>

A run ``<variant>-s<seed>`` is the component sections with the variant's overrides, seed
``seed`` and content split ``seed``. A distill run is the student of the train run of the same
variant and seed, whose finished model is its teacher (reused, not retrained). No model, loss
or metric is defined here; this module only wires ``qfm.config`` to ``qfm.engine`` and reads
the results back.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from qfm.checkpoint import read_json, write_json
from qfm.config import ConfigError, DistillConfig, RunConfig, load_params, override, to_dict
from qfm.metrics import summarize

RUN_NAME = re.compile(r"^(?P<variant>[A-Za-z0-9_]+)-s(?P<seed>\d+)$")

# The paper's reported numbers (Li et al., ICML 2024: abstract and headline table, as far as
# they could be read; see METHOD.md). NaN = not reported in what could be read.
PAPER_REPORTED = pd.DataFrame(
    [("LIVE", "synthetic", 0.981, float("nan")), ("CSIQ", "synthetic", 0.954, float("nan")),
     ("TID2013", "synthetic", float("nan"), 0.932), ("KADID-10k", "synthetic", float("nan"),
                                                     float("nan")),
     ("LIVEC", "authentic", 0.891, 0.913), ("KonIQ-10k", "authentic", 0.922, 0.936),
     ("LIVEFB", "authentic", 0.567, 0.667), ("SPAQ", "authentic", 0.920, 0.924)],
    columns=["dataset", "kind", "paper_srcc", "paper_plcc"])

# The paper profile (DEIQT's recipe, METHOD.md): `dvc exp run -S key=value` for each entry, or
# `qfm train --set key=value`. model.weights must point at local ImageNet DeiT-III weights.
PAPER_PROFILE: dict[str, Any] = {
    "model.backbone": "deit3_small_patch16_224", "model.img_size": 224,
    "model.backbone_kwargs": {}, "model.dim": 0,
    "model.heads": 6, "model.weights": "/path/to/deit3_small.safetensors",
    "train.epochs": 9, "train.warmup_epochs": 3.0, "train.step_epochs": 3, "train.gamma": 0.1,
    "train.lr": 0.0002, "train.batch_size": 16, "train.eval_every": 1, "train.amp": True,
    "train.workers": 8, "distill.views": 2}

def read_params(path: str | Path = "params.yaml") -> dict:
    """The raw ``params.yaml`` mapping (all sections, including the pipeline's)."""
    with Path(path).open() as fh:
        return yaml.safe_load(fh) or {}


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """``{"qfm": {"tau": 0.02}}`` → ``{"qfm.tau": 0.02}`` (what :func:`override` takes)."""
    out: dict[str, Any] = {}
    for k, v in (nested or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key.count(".") == 0:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_name(variant: str, seed: int) -> str:
    """The name of a run: ``<variant>-s<seed>``."""
    return f"{variant}-s{seed}"


def check_runs(raw: dict) -> None:
    """Refuse a ``runs`` section that names unknown variants or breaks the naming rule.

    Raises:
        ConfigError: with the offending ``runs.<stage>.<name>`` key.
    """
    variants = raw.get("variants") or {}
    train = (raw.get("runs") or {}).get("train") or {}
    for stage, items in (raw.get("runs") or {}).items():
        for name, item in (items or {}).items():
            where = f"runs.{stage}.{name}"
            if not isinstance(item, dict) or set(item) != {"variant", "seed"}:
                raise ConfigError(f"{where}: expected {{variant: ..., seed: ...}}")
            if item["variant"] not in variants:
                raise ConfigError(f"{where}: unknown variant {item['variant']!r}")
            if stage == "train" and name != run_name(item["variant"], item["seed"]):
                raise ConfigError(f"{where}: a train run is named <variant>-s<seed>")
            if stage == "distill":
                if run_name(item["variant"], item["seed"]) not in train:
                    raise ConfigError(f"{where}: its teacher, runs.train."
                                      f"{run_name(item['variant'], item['seed'])}, is missing")
                if not RUN_NAME.match(name) or RUN_NAME.match(name)["seed"] != str(item["seed"]):
                    raise ConfigError(f"{where}: a distill run is named <name>-s<seed>")


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
    src, dst = Path(teacher_run), Path(run_dir) / "teacher"
    if not (src / "metrics.json").is_file():
        raise FileNotFoundError(f"{src}: no finished run (metrics.json) to use as the teacher")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("teacher", "expanded"))
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


def collect(results: str | Path = "results") -> pd.DataFrame:
    """One row per run summary under ``results/train`` and ``results/distill``."""
    rows = []
    for path in sorted(Path(results).glob("*/*.json")):
        if path.parent.name not in ("train", "distill"):
            continue
        s = read_json(path)
        rows.append({"run": s["run"], "variant": s["variant"], "kind": s["kind"],
                     "name": RUN_NAME.match(s["run"])["variant"], "seed": s["seed"],
                     "srcc": s["test"]["srcc"], "plcc": s["test"]["plcc"],
                     "val_srcc": s["val_srcc"], "epochs": s["epochs"],
                     "train_seconds": s["train_seconds"], **s["setting"]})
    cols = ["run", "variant", "kind", "name", "seed", "srcc", "plcc", "val_srcc", "epochs",
            "train_seconds", "gate", "qfm", "tau", "rho", "perturb", "lambda_qfm", "distill",
            "lambda_kd", "views"]
    return pd.DataFrame(rows, columns=cols)


def spread_table(runs: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Mean ± std (and median, n) of test SRCC/PLCC over seeds for each run name."""
    rows = []
    for name in names:
        sub = runs[runs["name"] == name]
        if sub.empty:
            continue
        s, p = summarize(sub["srcc"]), summarize(sub["plcc"])
        rows.append({"model": name, "seeds": s["n"], "srcc_mean": s["mean"],
                     "srcc_std": s["std"], "srcc_median": s["median"],
                     "plcc_mean": p["mean"], "plcc_std": p["std"]})
    return pd.DataFrame(rows)


def ladder_table(runs: pd.DataFrame, names: list[str], seed: int) -> pd.DataFrame:
    """The ablation ladder at one seed: test SRCC/PLCC per run name, in the given order."""
    sub = runs[runs["seed"] == seed].set_index("name")
    rows = [{"model": n, "srcc": sub.at[n, "srcc"], "plcc": sub.at[n, "plcc"],
             "gate": bool(sub.at[n, "gate"]), "qfm": bool(sub.at[n, "qfm"]),
             "distill": bool(sub.at[n, "distill"])} for n in names if n in sub.index]
    return pd.DataFrame(rows)


def sweep_table(runs: pd.DataFrame, raw: dict, base: str, key: str, seed: int) -> pd.DataFrame:
    """Train runs at ``seed`` whose variant equals ``base`` except in ``key`` (e.g. qfm.tau).

    Returns:
        Columns ``value`` (the swept key's value), ``srcc``, ``plcc``, ``run``; sorted by value.
    """
    variants = raw.get("variants") or {}
    ref = flatten(variants.get(base) or {})
    column = key.split(".", 1)[1]
    rows = []
    for _, r in runs[(runs["seed"] == seed) & (runs["kind"] == "train")].iterrows():
        mine = flatten(variants.get(r["variant"]) or {})
        others = {k for k in set(ref) | set(mine) if ref.get(k) != mine.get(k)}
        if others <= {key}:
            rows.append({"value": r[column], "srcc": r["srcc"], "plcc": r["plcc"],
                         "run": r["run"]})
    out = pd.DataFrame(rows, columns=["value", "srcc", "plcc", "run"])
    return out.sort_values("value", key=lambda s: s.astype(str) if s.dtype == object else s,
                           ignore_index=True)


def analysis_targets(raw: dict, names: list[str]) -> dict[str, list[str]]:
    """Runs of each compared name that the pipeline trains: ``{"baseline": ["baseline-s0", …]}``."""
    known = {**((raw.get("runs") or {}).get("train") or {}),
             **((raw.get("runs") or {}).get("distill") or {})}
    return {n: sorted(r for r in known if RUN_NAME.match(r)["variant"] == n) for n in names}


def noise_table(results: dict[str, dict]) -> pd.DataFrame:
    """Semantic-noise shares per analysed model (``results[name] = semantic_noise.json``)."""
    rows = []
    for name, r in results.items():
        m = RUN_NAME.match(name)
        key = r.get("share_figure", "upstream")
        rows.append({"source": name, "model": m["variant"] if m else name,
                     "seed": int(m["seed"]) if m else None, "share": r["share"][key],
                     "share_upstream": r["share"].get("upstream"),
                     "base_rate": r["base_rate"], "images": r["images"]})
    return pd.DataFrame(rows)


def notebook_seconds(folder: str | Path) -> pd.DataFrame:
    """Wall time of every executed notebook under ``folder`` (papermill's own record)."""
    rows = []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            rows.append({"notebook": path.relative_to(folder).with_suffix("").as_posix(),
                         "seconds": float(meta["duration"])})
    return pd.DataFrame(rows, columns=["notebook", "seconds"])


def environment() -> pd.DataFrame:
    """Versions of Python, the main libraries, the platform and the git commit."""
    import os
    import platform
    from importlib import metadata

    from qfm.checkpoint import code_version

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
    from qfm import paths
    from qfm.checkpoint import sha256

    files = [paths.world_table(), *sorted(paths.splits_dir("world").glob("split_*.csv")),
             paths.upstream_checkpoint()]
    runs = sorted(paths.runs_dir().glob("*/model.safetensors"))
    if run_names is not None:
        runs = [r for r in runs if r.parent.name in set(run_names)]
    rows = [(f.relative_to(paths.home()).as_posix(), sha256(f)[:16]) for f in files + runs
            if f.is_file()]
    return pd.DataFrame(rows, columns=["file", "sha256"])


def profile_table(cfg: RunConfig) -> pd.DataFrame:
    """The CPU pipeline's setting beside the paper profile, for every key the profile sets."""
    mine = flatten(to_dict(cfg))
    return pd.DataFrame([(k, str(mine.get(k)), str(v)) for k, v in PAPER_PROFILE.items()],
                        columns=["key", "this pipeline", "paper profile"]).set_index("key")


def paper_flags(prefix: str = "-S") -> str:
    """The paper profile as command-line overrides: ``-S model.backbone=… -S …``."""
    def flag(k, v):
        if isinstance(v, dict):  # quoted for the shell: -S 'model.backbone_kwargs={}'
            return f"{prefix} '{k}={json.dumps(v)}'"
        return f"{prefix} {k}={str(v).lower() if isinstance(v, bool) else v}"
    return " ".join(flag(k, v) for k, v in PAPER_PROFILE.items())


def gpu_hours(images_per_second: float, epochs: int = 9, splits: int = 10,
              train_fraction: float = 0.8, runs_per_split: float = 1.0) -> pd.DataFrame:
    """Estimated GPU hours of the paper protocol per data set.

    Args:
        images_per_second: training throughput of one GPU (forward + backward, AMP).
        epochs, splits: the protocol (9 epochs, 10 splits).
        train_fraction: share of the images trained on.
        runs_per_split: training passes per split in baseline-run units (a full QFM-IQM run
            is teacher + student ≈ 1 + (1 + views) passes at ≤ 1.5× the step cost).
    """
    from qfm.data.facts import FACTS

    rows = [{"dataset": f.title, "images": f.expected,
             "gpu_hours": f.expected * train_fraction * epochs * splits * runs_per_split
             / images_per_second / 3600.0} for f in FACTS.values()]
    return pd.DataFrame(rows)


def export_checkpoint(run_dir: str | Path, dst: str | Path) -> Path:
    """Copy a run's ``model.safetensors`` (+ sidecar) to ``dst``, e.g. the default checkpoint.

    The sidecar keeps the run's config, label scale and metrics, names the new file and records
    the run it came from; the sha256 is re-checked on the copy.
    """
    from qfm.checkpoint import load_tensors, sidecar

    src, dst = Path(run_dir) / "model.safetensors", Path(dst)
    meta = read_json(sidecar(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    write_json({**meta, "weights": dst.name, "source_run": Path(run_dir).name}, sidecar(dst))
    load_tensors(dst)  # verifies the sha256 against the new sidecar
    return dst
