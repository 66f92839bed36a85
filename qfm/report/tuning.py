"""The tuning trials as the book reads them: ``results/study/tune.json`` (written by the
stage ``tune``, :func:`qfm.study.stages.tune`) in the order the keys were tuned, the table,
the chosen values and whether a choice sits at the edge of the range tried.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qfm.report.glossary import KEYS
from qfm.report.tables import Table, html_table


def tuning_frame(tune: dict, defaults: dict) -> pd.DataFrame:
    """The tuning trials, one row per value tried, in the order tuned.

    The tuner re-uses a trial for the params.yaml value of λ_qfm and τ (it is the best trial
    of the step before); such a row is marked ``reused``.

    Args:
        tune: ``tune.json``.
        defaults: params.yaml's value of each QFM key (``{"qfm.lambda_qfm": 1.0, ...}``).
    Returns:
        ``step, key, value, variant, val_srcc, best_is_last, chosen, reused``.
    """
    trials, chosen = tune["trials"], tune["chosen"]
    order = ["train.lr", "qfm.rho", "qfm.lambda_qfm", "qfm.tau"]

    def step_of(t):
        present = [k for k in order if k in t]
        return present[-1] if present else None

    def best_of(k):  # the trial whose score the tuner re-used for the next key's default
        if k == "qfm.lambda_qfm":
            hits = [t for t in trials if step_of(t) == k and t[k] == chosen.get(k)]
            if hits:
                return hits[-1]
            k = "qfm.rho"
        hits = [t for t in trials if step_of(t) == k and t[k] == chosen.get(k)]
        return hits[-1] if hits else None

    out = []
    for k in order:
        mine = [t for t in trials if step_of(t) == k]
        prev = {"qfm.lambda_qfm": "qfm.rho", "qfm.tau": "qfm.lambda_qfm"}.get(k)
        if prev and k in defaults and defaults[k] not in [t[k] for t in mine]:
            ref = best_of(prev)
            if ref is not None:
                mine = [{**ref, k: defaults[k], "_reused": True}] + mine
        for t in mine:
            out.append({"step": KEYS.get(k, k), "key": k, "value": t[k],
                        "variant": t["variant"], "val_srcc": t["val_srcc"],
                        "best_is_last": t.get("best_is_last", np.nan),
                        "chosen": t[k] == chosen.get(k), "reused": bool(t.get("_reused"))})
    return pd.DataFrame(out)


def tuning_table(frame: pd.DataFrame, seeds) -> Table:
    """The tuning trials as the book shows them (chosen on validation, never on test)."""
    df = pd.DataFrame({
        "tuned": frame["step"], "on": frame["variant"],
        "value": [f"{v:g}" + (" *" if r else "") for v, r in zip(frame["value"],
                                                                 frame["reused"])],
        "validation SRCC": frame["val_srcc"],
        "best epoch = last": frame["best_is_last"],
        "chosen": ["chosen" if c else "" for c in frame["chosen"]]})
    return html_table(df, {"best epoch = last": ".0%"}, numeric=["value"],
                      notes=f"validation SRCC: mean over the tuning seeds "
                            f"({', '.join(map(str, seeds))}); test is never read. "
                            f"* the params.yaml value: its trial is the best of the step "
                            f"before, reused")


def edge_text(frame: pd.DataFrame) -> str:
    """A sentence naming the tuned keys whose chosen value is the lowest or highest tried
    (the best may lie outside the grid), or saying that none is."""
    edges = []
    for step, g in frame.groupby("step", sort=False):
        if len(g) < 3 or not g["chosen"].any():
            continue
        v = float(g.loc[g["chosen"], "value"].iloc[0])
        if v in (g["value"].min(), g["value"].max()):
            edges.append(f"{step} ({'lowest' if v == g['value'].min() else 'highest'})")
    if not edges:
        return "Every chosen value lies inside the range tried."
    return (f"Chosen at the edge of the range tried: {', '.join(edges)} — the best value "
            f"may lie beyond it.")


def chosen_text(tune: dict) -> str:
    """``learning rate = 0.0005, ρ = 0.2, λ_qfm = 1, τ = 0.05`` (in the order tuned)."""
    order = [k for k in KEYS if k in tune["chosen"]] + \
        [k for k in tune["chosen"] if k not in KEYS]
    return ", ".join(f"{KEYS.get(k, k)} = {tune['chosen'][k]:g}" for k in order)
