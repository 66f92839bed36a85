"""Judging a study's run rows: every stated comparison of a group (paired by seed, each in its
declared family), the slopes of an interaction over seeds, and the runs the analysis plan
flags (stopped at their first epoch). The primitives — intervals, tests, Holm, the verdict
words — are :mod:`qfm.report.verdict`'s; the families the record finally uses are the plan's
(:func:`qfm.report.claims.apply_plan`). numpy and pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.verdict import BOOT_MIN_SEEDS, judge, paired, settle

__all__ = ["BOOT_MIN_SEEDS", "drop_flagged", "flagged_seeds", "judge_families", "judge_slopes",
           "slopes"]


def slopes(rows: pd.DataFrame, variant: str, reference: str, metric: str = "test_srcc",
           by: str = "spurious") -> tuple[pd.Series, list[float]]:
    """Per seed, the least-squares slope of Δ = variant − reference over the values of ``by``.

    Args:
        rows: run rows with ``by`` set (one row per variant, seed and value of ``by``).
    Returns:
        (slope per seed — the seeds paired at every value where both variants ran —, those
        values); empty when they ran together at fewer than two.
    """
    d = {s: paired(sub, variant, reference, metric).set_index("seed")["delta"]
         for s, sub in rows.groupby(by)}
    d = {s: v for s, v in d.items() if len(v)}
    if len(d) < 2:
        return pd.Series(dtype=np.float64), sorted(d)
    frame = pd.DataFrame(d).dropna()  # (seeds, values of `by`)
    x = np.asarray(frame.columns, dtype=np.float64)
    xc = x - x.mean()
    slope = (frame.to_numpy() - frame.to_numpy().mean(1, keepdims=True)) @ xc / (xc @ xc)
    return pd.Series(slope, index=frame.index, name="slope"), [float(s) for s in x]


def flagged_seeds(rows: pd.DataFrame, variant: str) -> list[int]:
    """Seeds whose run of ``variant`` stopped at its first epoch (best epoch 0 and stopped
    early): the plan's *flagged* runs (kept, or dropped by :func:`drop_flagged`)."""
    if not {"best_epoch", "stopped_early"} <= set(rows):
        return []
    r = rows[(rows["variant"] == variant) & (rows["best_epoch"] == 0)
             & rows["stopped_early"].astype(bool)]
    return sorted(int(s) for s in r["seed"])


def drop_flagged(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without the flagged runs (:func:`flagged_seeds`)."""
    if rows is None or rows.empty or not {"best_epoch", "stopped_early"} <= set(rows):
        return rows
    return rows[~((rows["best_epoch"] == 0) & rows["stopped_early"].astype(bool))]


def judge_families(rows: pd.DataFrame, specs, words: dict | None = None,
                   plan: Plan = PLAN) -> list[dict]:
    """Judge each comparison of ``specs`` from ``rows``; Holm within each family.

    Args:
        specs: (variant, reference, metric, family) tuples; a metric ``rows`` lacks, or a pair
            with no seed in common, is left out.
        words: metric → what Δ > 0 and Δ < 0 are called (default better / worse).
        plan: the analysis plan (:func:`judge`, :func:`settle`).
    Returns:
        One dict per comparison: variant, reference, metric, family and :func:`judge`'s
        fields, ``flagged`` (seeds where either run is flagged: :func:`flagged_seeds`),
        ``p_holm`` and ``verdict``.
    """
    entries = []
    for v, r, m, f in specs:
        if m not in rows:
            continue
        pairs = paired(rows, v, r, m)
        flags = sorted((set(flagged_seeds(rows, v)) | set(flagged_seeds(rows, r)))
                       & set(pairs["seed"]))
        e = {"variant": v, "reference": r, "metric": m, "family": f,
             **judge(pairs["delta"], plan=plan), "flagged": flags,
             "words": (words or {}).get(m, ("better", "worse"))}
        if e["n"]:
            entries.append(e)
    for f in dict.fromkeys(e["family"] for e in entries):
        settle([e for e in entries if e["family"] == f], plan=plan)
    return entries


def judge_slopes(rows: pd.DataFrame, pairs, family: str, metric: str = "test_srcc",
                 by: str = "spurious", words: tuple[str, str] = ("grows", "shrinks"),
                 plan: Plan = PLAN) -> list[dict]:
    """The interaction of each (variant, reference) pair with ``by``: a bootstrap-t interval
    and tests over seeds of the per-seed slope of Δ (:func:`slopes`); the pairs are one Holm family.

    Returns:
        As :func:`judge_families` (``delta`` = mean slope, method ``bootstrap-t slope``, or
        ``t slope`` below :data:`BOOT_MIN_SEEDS` seeds), plus
        ``strengths`` (the values of ``by``, as text); pairs run together at fewer than two
        values are left out.
    """
    entries = []
    for v, r in pairs:
        s, xs = slopes(rows, v, r, metric, by)
        if len(xs) >= 2 and len(s):
            entries.append({"variant": v, "reference": r, "metric": metric, "family": family,
                            **judge(s, "slope", plan), "words": words,
                            "strengths": ", ".join(f"{x:g}" for x in xs)})
    return settle(entries, plan=plan)
