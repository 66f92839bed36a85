"""The book's tables over many runs: the pipeline's run summaries side by side, mean ± std
over seeds, the ablation ladder, the sweeps and the semantic-noise shares.

Reads what the train, distill and analysis stages wrote (``results/``); nothing is trained or
measured here, and no training stage depends on this module.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.checkpoint import read_json
from qfm.metrics import summarize
from qfm.pipeline import RUN_NAME, flatten

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
