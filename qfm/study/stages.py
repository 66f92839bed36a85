"""The study's DVC stages: tuning on validation, one group of runs, the chosen default model.

``params.yaml``'s ``study`` section::

    study:
      features: efficientnet_lite0       # the cached tokens (data/features/<name>.safetensors)
      seeds: [0, 1, ..., 9]               # paired seeds = content splits
      workers: 2                          # processes (one thread each)
      tune: {seeds: [0, 1, 2], lr: [...], rho: [...], lambda_qfm: [...], tau: [...]}
      groups:                             # stage study@<group>
        main: {spurious: 0.0, variants: [baseline, gate, gate_qfm, full, ...]}

:func:`tune` picks, on **validation SRCC** (mean over the tuning seeds), the baseline's
learning rate (used by every variant), then QFM's ρ, λ_qfm and τ one at a time (three values
each); nothing here reads a test number to choose. :func:`run_group` runs a group with the tuned values and writes one
row per run; the group ``main`` also stores the head of the full QFM-IQM run with the best
validation SRCC (the default model's head).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qfm import paths
from qfm.files import read_json, write_json
from qfm.core.checkpoint import save_tensors
from qfm.config import ConfigError, load_params, read_params
from qfm.study.runs import make_specs, run_specs, summary_row

DEFAULT_VARIANT = "full"  # the variant whose best-validation run becomes the default model


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
                set(g) - {"spurious", "variants", "features", "seeds"}:
            raise ConfigError(f"study.groups.{name}: expected {{spurious: ..., variants: [...]}}"
                              f" (optional: features, seeds)")
    return st


def _features(st: dict, group: dict | None = None) -> str:
    name = (group or {}).get("features", st["features"])
    return str(paths.features_dir() / f"{name}.safetensors")



def tune(params_path: str | Path, out: str | Path, progress: bool = True) -> dict:
    """Tune on validation: the learning rate (baseline), then ρ × λ_qfm, then τ (gate_qfm).

    Returns:
        ``{"chosen": {dotted key: value}, "trials": [...]}``, also written to ``out``.
    """
    raw = read_params(params_path)
    st, base = study_params(raw), load_params(params_path)
    tn = st["tune"]
    seeds = list(tn["seeds"])
    smoke = base.shared.smoke
    trials, chosen = [], {}

    def trial(variant, extra):
        specs = make_specs(raw, base, [variant], seeds, 0.0, extra)
        rows = [summary_row(r) for r in run_specs(specs, _features(st), str(paths.world_dir()),
                                                   st.get("workers", 2), progress)]
        val = float(np.mean([r["val_srcc"] for r in rows]))
        trials.append({"variant": variant, **extra, "val_srcc": val,
                       "best_is_last": float(np.mean([r["best_is_last"] for r in rows])),
                       "val_curves": [r["val_curve"] for r in rows]})
        return val

    lrs = tn["lr"][:1] if smoke else tn["lr"]
    scores = {lr: trial("baseline", {"train.lr": lr}) for lr in lrs}
    chosen["train.lr"] = max(scores, key=scores.get)
    # one key at a time, each at the best of the ones before (equal effort: three values each)
    rhos = tn["rho"][:1] if smoke else tn["rho"]
    scores = {r: trial(tn["variant"], {**chosen, "qfm.rho": r}) for r in rhos}
    chosen["qfm.rho"] = max(scores, key=scores.get)
    lams = {base.qfm.lambda_qfm: scores[chosen["qfm.rho"]]}
    for lam in ([] if smoke else tn["lambda_qfm"]):
        if lam not in lams:
            lams[lam] = trial(tn["variant"], {**chosen, "qfm.lambda_qfm": lam})
    chosen["qfm.lambda_qfm"] = max(lams, key=lams.get)
    taus = {base.qfm.tau: lams[chosen["qfm.lambda_qfm"]]}
    for tau in ([] if smoke else tn["tau"]):
        if tau not in taus:
            taus[tau] = trial(tn["variant"], {**chosen, "qfm.tau": tau})
    chosen["qfm.tau"] = max(taus, key=taus.get)
    result = {"chosen": chosen, "seeds": seeds, "trials": trials,
              "selected_on": "validation SRCC, mean over the tuning seeds"}
    write_json(result, out)
    return result


def run_group(params_path: str | Path, group: str, out: str | Path,
              tuned: str | Path | None = None, head_out: str | Path | None = None,
              progress: bool = True) -> list[dict]:
    """Run one group (variants × seeds at its spurious strength) and write its rows.

    Args:
        params_path: ``params.yaml``.
        group: a key of ``study.groups``.
        out: the JSON file of rows (one per run, no weights).
        tuned: ``tune.json`` whose ``chosen`` values apply to every run (variants' own keys
            win, e.g. the ρ = 0 control).
        head_out: where to save the head of the best-validation ``full`` run (of the best
            run when the group has no ``full``); group main's is the default model's head.
    Returns:
        The rows.
    """
    raw = read_params(params_path)
    st, base = study_params(raw), load_params(params_path)
    if group not in st["groups"]:
        raise ConfigError(f"study.groups.{group}: unknown group "
                          f"(known: {', '.join(st['groups'])})")
    g = st["groups"][group]
    extra = read_json(tuned)["chosen"] if tuned else {}
    seeds = list(g.get("seeds", st["seeds"]))
    seeds = seeds[:2] if base.shared.smoke else seeds
    specs = make_specs(raw, base, list(g["variants"]), seeds, float(g["spurious"]), extra)
    results = run_specs(specs, _features(st, g), str(paths.world_dir()),
                        st.get("workers", 2), progress)
    rows = [dict(summary_row(r), group=group) for r in results]
    write_json({"group": group, "spurious": g["spurious"], "tuned": extra, "rows": rows,
                "features": Path(_features(st, g)).stem}, out)
    if head_out is not None:  # the default variant's best run (or the group's best run)
        full = [r for r in results if r["variant"] == DEFAULT_VARIANT] or results
        best = max(full, key=lambda r: r["val_srcc"])
        spec = next(s for s in specs if s.variant == best["variant"] and s.seed == best["seed"])
        from qfm.config import to_dict

        save_tensors(best["state"], head_out,
                     {"kind": "head", "config": to_dict(spec.cfg), "variant": best["variant"],
                      "seed": best["seed"], "val_srcc": best["val_srcc"],
                      "chosen_on": "validation SRCC among the group's full runs"})
    return rows
