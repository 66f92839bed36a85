"""The study's DVC stages: one group of runs, and what the tuner and the groups share.

``params.yaml``'s ``study`` section::

    study:
      features: efficientnet_lite0       # the cached tokens (data/features/<name>.safetensors)
      seeds: [0, 1, ..., 9]               # paired seeds = content splits
      workers: 2                          # processes (one thread each)
      tune: {...}                         # the tuner's grids (qfm.study.tune)
      groups:                             # stage study@<group>
        main: {spurious: 0.0, variants: [baseline, gate, gate_qfm, full, ...]}

:func:`run_group` runs a group with each variant's chosen values (``tune.json``, written by
:func:`qfm.study.tune.tune`) and writes one row per run; the group ``main`` also stores the
head of the full QFM-IQM run with the best validation SRCC (the world's default head).
Each run's test predictions go beside the rows, to ``<rows stem>.predictions.json``
(:func:`write_predictions`; read by :mod:`qfm.report.predictions`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm import paths
from qfm.config import ConfigError, load_params, override, read_params, to_dict
from qfm.core.checkpoint import save_tensors
from qfm.files import read_json, write_json
from qfm.knobs import BY_NAME
from qfm.study.run import summary_row
from qfm.study.runner import make_specs, run_specs


def study_params(params: dict) -> dict:
    """The ``study`` section, checked (one-line errors name the key)."""
    st = params.get("study")
    if not isinstance(st, dict):
        raise ConfigError("study: section missing in params.yaml")
    for key in ("features", "seeds", "groups", "tune"):
        if key not in st:
            raise ConfigError(f"study.{key}: missing")
    for name, g in st["groups"].items():
        if not isinstance(g, dict) or not {"spurious", "variants"} <= set(g) or \
                set(g) - {"spurious", "variants", "features", "seeds", "halve"}:
            raise ConfigError(f"study.groups.{name}: expected {{spurious: ..., variants: [...]}}"
                              f" (optional: features, seeds, halve)")
    for key, spec in st["tune"].items():
        if key in BY_NAME and not (isinstance(spec, dict) and {"variants", "grid"} <= set(spec)):
            raise ConfigError(f"study.tune.{key}: expected {{variants: [...], grid: [...]}}")
    return st


def base_config(params_path, st: dict):
    """The component sections, with the world study's own most epochs (``study.epochs``),
    early-stopping patience (``study.patience``) and model sizes (``study.model``) where it sets
    them (a real data set's study takes the ``train`` and ``model`` sections)."""
    sets = {f"model.{k}": v for k, v in (st.get("model") or {}).items()}
    sets |= {"train.epochs": int(st["epochs"])} if st.get("epochs") else {}
    sets |= {"train.patience": int(st["patience"])} if st.get("patience") else {}
    return override(load_params(params_path), sets) if sets else load_params(params_path)


def features_path(st: dict, group: dict | None = None) -> str:
    name = (group or {}).get("features", st["features"])
    return str(paths.features_dir() / f"{name}.safetensors")


def reported_seeds(st: dict, smoke: bool = False) -> list[int]:
    """Every seed (= content split) some group reports, as :func:`run_group` cuts them."""
    out = set()
    for g in st["groups"].values():
        seeds = list(g.get("seeds", st["seeds"]))
        out |= set(seeds[:2] if smoke else seeds)
    return sorted(out)


def run_group(params_path: str | Path, group: str, out: str | Path,
              tuned: str | Path | None = None, head_out: str | Path | None = None,
              progress: bool = True, study: dict | None = None, source=None) -> list[dict]:
    """Run one group (variants × seeds at its spurious strength) and write its rows.

    Args:
        params_path: ``params.yaml``.
        group: a key of ``study.groups``.
        out: the JSON file of rows (one per run, no weights); the runs' test predictions go
            to :func:`predictions_path` of it.
        tuned: ``tune.json``; each variant runs with its ``chosen`` values (variants' own
            keys win, e.g. the ρ = 0 control; knobs params.yaml fixes are never in it).
        head_out: where to save a head of the variant with the best mean validation SRCC
            over the seeds (its first seed's run: a seed is never chosen by comparing
            validation numbers of different splits).
        study, source: a real data set's study section and data (see :func:`tune`).
    Returns:
        The rows.
    """
    raw = read_params(params_path)
    st = study_params(raw if study is None else {"study": study})
    base = base_config(params_path, st)
    if group not in st["groups"]:
        raise ConfigError(f"study.groups.{group}: unknown group "
                          f"(known: {', '.join(st['groups'])})")
    g = st["groups"][group]
    chosen = read_json(tuned)["chosen"] if tuned else {}
    if chosen and not all(isinstance(c, dict) for c in chosen.values()):
        chosen = {v: chosen for v in g["variants"]}  # a tune.json of one set for all
    extra = {v: chosen.get(v, {}) for v in g["variants"]}
    seeds = list(g.get("seeds", st["seeds"]))
    seeds = seeds[:2] if base.shared.smoke else seeds
    specs = make_specs(raw, base, list(g["variants"]), seeds, float(g["spurious"]),
                       per_variant=extra, halve=bool(g.get("halve", st.get("halve", False))))
    results = run_specs(specs, features_path(st, g),
                        str(paths.world_dir()) if source is None else source,
                        st.get("workers", 2), progress)
    rows = [dict(summary_row(r), group=group) for r in results]
    write_json({"group": group, "spurious": g["spurious"], "tuned": extra, "rows": rows,
                "features": Path(features_path(st, g)).stem}, out)
    write_predictions(results, predictions_path(out), group, float(g["spurious"]))
    if head_out is not None:  # by rule: the variant with the best mean validation SRCC
        variant = best_variant(rows)
        best = next(r for r in results if r["variant"] == variant and r["seed"] == seeds[0])
        spec = next(s for s in specs if s.variant == variant and s.seed == seeds[0])
        save_tensors(best["state"], head_out,
                     {"kind": "head", "config": to_dict(spec.cfg), "variant": variant,
                      "seed": best["seed"], "val_srcc": best["val_srcc"],
                      "chosen_on": "the variant with the best mean validation SRCC over "
                                   f"{len(seeds)} seeds; its seed-{seeds[0]} run"})
    return rows


def best_variant(rows: list[dict]) -> str:
    """The variant with the best mean validation SRCC over its seeds (ties: the first)."""
    frame = pd.DataFrame(rows)
    means = frame.groupby("variant", sort=False)["val_srcc"].mean()
    return str(means.idxmax())


DECIMALS = 5  # predictions and MOS in the predictions file: small, and the same bytes each run


def predictions_path(rows_path: str | Path) -> Path:
    """The predictions file beside a rows file: ``<dir>/<stem>.predictions.json``."""
    rows_path = Path(rows_path)
    return rows_path.with_name(f"{rows_path.stem}.predictions.json")


def write_predictions(results: list[dict], path: str | Path, group: str,
                      spurious: float) -> Path:
    """Write every run's test predictions (atomically; rounded to :data:`DECIMALS`).

    The file holds each seed's test images and their MOS once (``tests``; every run of a seed
    tests the same images) and, per run in row order, its scores of them (``runs``)::

        {"group": "livec", "spurious": 0.0, "decimals": 5, "scale": "...",
         "tests": {"<seed>": {"image": [...], "mos": [...]}},
         "runs": [{"variant": "baseline", "seed": 0, "spurious": 0.0, "pred": [...]}, ...]}

    A run that another one served (``same_as``) keeps that key. Runs without a test part (the
    tuner's) are left out.

    Args:
        results: :func:`~qfm.study.runner.run_specs`'s results (with ``predictions``).
        path: the file (:func:`predictions_path` of the rows file).
        group, spurious: the group's name and spurious strength.
    Returns:
        ``path``.
    """
    def rounded(values):
        return [round(float(v), DECIMALS) for v in values]

    tests, runs = {}, []
    for res in results:
        p = res.get("predictions")
        if p is None:
            continue
        seed = str(res["seed"])
        test = {"image": list(p["image"]), "mos": rounded(p["mos"])}
        if tests.setdefault(seed, test) != test:  # one test part per seed, or the file lies
            raise RuntimeError(f"seed {seed}: run {res['variant']} tested other images than "
                               f"the seed's other runs")
        run = {"variant": res["variant"], "seed": res["seed"],
               "spurious": float(res.get("spurious", spurious)), "pred": rounded(p["pred"])}
        runs.append(run | ({"same_as": res["same_as"]} if "same_as" in res else {}))
    return write_json({"group": group, "spurious": spurious, "decimals": DECIMALS,
                       "scale": "normalised MOS, as the runs train on it (the data set's MOS "
                                "scale mapped to [0, 1]; CLIVE and the world: MOS / 100)",
                       "tests": tests, "runs": runs}, path)
