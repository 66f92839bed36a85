"""Paired comparisons of the study's variants and the verdict each one supports.

Runs are paired by seed (same content split, same initialisation seed): for a variant V and a
reference R, the paired differences Δ_s = metric(V, s) − metric(R, s). For each comparison:

* **Interval**: the 95 % **bootstrap-t** (studentized bootstrap) interval of the mean of Δ:
  t* = (mean* − mean) / (sd*/√n) over :data:`BOOT` seeded resamples of the seeds, interval
  [mean − q₀.₉₇₅(t*)·se, mean − q₀.₀₂₅(t*)·se]. At 10 seeds it covers ≥ 93 % on normal and on
  skewed Δ (exponential, lognormal σ 0.5), where the plain t interval falls to 0.90–0.92; at 5
  seeds 0.93 where t gives 0.88–0.91 (``benchmarks/interval_coverage.py`` measures t,
  percentile and bootstrap-t at n = 10 and 5; extreme skew, lognormal σ 1, defeats both).
  Below :data:`BOOT_MIN_SEEDS` seeds (the fine-tuning regime's 5) the verdicts use the plain
  t interval instead: 5 seeds have only 126 distinct resamples, and one outlying seed makes the
  bootstrap-t erratic (a resample without it has a tiny sd, so t* explodes — on the regime's
  gate vs baseline, five Δ between +0.09 and +0.17 gave [+0.08, +0.40]); the t interval's
  measured coverage there (0.88 on exponential Δ) is stated on the pages.
  Fewer than :data:`MIN_SEEDS` paired seeds give no interval at all (NaN, verdict
  ``too few seeds``).
* **p**: the bootstrap-t test of mean Δ = 0 (two-sided, equal-tailed) — the test the interval
  inverts: 0 lies outside the interval exactly when p < 0.05 (up to the resampling's grain).
* **p_wilcoxon**: the Wilcoxon signed-rank test (two-sided; scipy's exact null distribution
  at these sizes when no difference is zero or tied, else its normal approximation; all-zero
  differences give p = 1). Reported beside p as a robustness check against non-normal Δ; it
  does not decide the verdict: the bootstrap-t test is the one the interval inverts, so
  verdict and interval agree, while Wilcoxon tests a different (symmetry/median) null.
* **p_holm**: p adjusted by Holm's step-down method over the comparison's *family* — the set
  of comparisons stated together (which families exist: :mod:`qfm.report.claims`).

The verdict is read from these, never typed: ``better`` if the interval lies above 0 **and**
p_holm < 0.05, ``worse`` if it lies below 0 and p_holm < 0.05, else ``no difference
detected``. (The unadjusted interval excludes 0 exactly when p < 0.05, so the Holm condition is
the binding one; the interval is shown unadjusted.) A metric that is not "higher is better"
(the semantic-noise share, a slope) uses other words for the two directions (``higher`` /
``lower``, ``grows`` / ``shrinks``). numpy, pandas and scipy only.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from qfm.report.analysis_plan import PLAN, TOO_FEW, Plan

VERDICTS = ("better", "no difference detected", "worse")
# the analysis plan's numbers (analysis_plan.yaml; every function takes a ``plan``)
MIN_SEEDS = PLAN.min_seeds  # fewer paired seeds: no interval, no test
ALPHA = PLAN.alpha  # on the Holm-adjusted p
LEVEL = PLAN.level  # of every interval
BOOT = PLAN.resamples  # bootstrap-t resamples per comparison (seeded: the same every run)
BOOT_MIN_SEEDS = PLAN.bootstrap_t_from  # fewer paired seeds: the t interval and t-test
WILCOXON_MIN_SEEDS = PLAN.wilcoxon_from  # fewer: the Wilcoxon p is not shown (NaN)


def t_interval(values, level: float = LEVEL, axis: int = -1):
    """The t interval of the mean of ``values`` along ``axis`` (NaN below :data:`MIN_SEEDS`):
    scipy's one-sample t-test's interval (``ttest_1samp(...).confidence_interval``).

    Args:
        values: (..., n) samples; NaN is not allowed (drop it first).
    Returns:
        (lo, hi): floats for 1-D input, arrays of the other axes' shape otherwise.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[axis]
    if n < MIN_SEEDS:
        nan = np.full(np.delete(v.shape, axis % v.ndim), np.nan) if v.ndim > 1 else np.nan
        return nan, nan
    with warnings.catch_warnings():  # identical values: sd 0, the interval is the point
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        ci = stats.ttest_1samp(v, 0.0, axis=axis).confidence_interval(level)
    return (float(ci.low), float(ci.high)) if v.ndim == 1 else (ci.low, ci.high)


def t_test_p(values) -> float:
    """Two-sided one-sample t-test p of mean = 0 (NaN below :data:`MIN_SEEDS`; identical
    values: 1 if they are 0, else 0)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < MIN_SEEDS:
        return float("nan")
    if np.ptp(v) <= 1e-12 * max(1.0, float(np.abs(v).max())):  # identical up to rounding
        return 1.0 if not np.any(v) else 0.0
    return float(stats.ttest_1samp(v, 0.0).pvalue)


def bootstrap_t(values, level: float = LEVEL, n_boot: int = BOOT, seed: int = 0
                ) -> tuple[float, float, float]:
    """The bootstrap-t interval of the mean of ``values`` and the test it inverts (written
    here: scipy's ``bootstrap`` has percentile, basic and BCa intervals, no studentized one).

    Returns:
        (lo, hi, p): NaN below :data:`MIN_SEEDS`; identical values give the point as the
        interval and p = 1 if they are 0, else 0 (as :func:`t_test_p`).
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n < MIN_SEEDS:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if np.ptp(v) <= 1e-12 * max(1.0, float(np.abs(v).max())):  # identical up to rounding
        return m, m, 1.0 if not np.any(v) else 0.0
    se = float(v.std(ddof=1)) / np.sqrt(n)
    res = v[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))]
    sd = res.std(1, ddof=1)
    t = (res.mean(1)[sd > 0] - m) / (sd[sd > 0] / np.sqrt(n))  # a one-value resample: no t
    q_lo, q_hi = np.quantile(t, [(1 - level) / 2, 1 - (1 - level) / 2])
    t_obs = m / se
    p = 2 * min(np.sum(t >= t_obs) + 1, np.sum(t <= t_obs) + 1) / (len(t) + 1)
    return float(m - q_hi * se), float(m - q_lo * se), float(min(1.0, p))


def wilcoxon_p(values) -> float:
    """Two-sided Wilcoxon signed-rank p of ``values`` around 0 (NaN below
    :data:`MIN_SEEDS`; all zero: 1)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < MIN_SEEDS:
        return float("nan")
    if not np.any(v):
        return 1.0
    return float(stats.wilcoxon(v).pvalue)


def holm(pvalues) -> np.ndarray:
    """Holm step-down adjusted p-values; NaN entries stay NaN and do not count in the family
    (written here: scipy's ``false_discovery_control`` has Benjamini–Hochberg/Yekutieli only).

    Args:
        pvalues: the family's raw p-values, any order.
    Returns:
        Adjusted p-values in the same order (monotone in the raw ones, at most 1).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adj
    return out


def bootstrap_ci(values, n_boot: int = 10_000, level: float = LEVEL, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (``scipy.stats.bootstrap``,
    seeded; kept as the contrast of ``benchmarks/interval_coverage.py``; no verdict uses it)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float("nan"), float("nan")
    ci = stats.bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=level,
                         method="percentile", rng=np.random.default_rng(seed)
                         ).confidence_interval
    return float(ci.low), float(ci.high)


def verdict(lo: float, hi: float, p_holm: float | None = None,
            words: tuple[str, str] = ("better", "worse"), plan: Plan = PLAN) -> str:
    """The verdict an interval of Δ (and, where given, its Holm-adjusted p) supports.

    Args:
        words: what Δ > 0 and Δ < 0 are called.
        plan: the analysis plan (its ``alpha``).
    """
    if np.isnan(lo) or np.isnan(hi):
        return "no difference detected"
    if p_holm is not None and not p_holm < plan.alpha:  # NaN counts as not significant
        return "no difference detected"
    if lo > 0:
        return words[0]
    if hi < 0:
        return words[1]
    return "no difference detected"


def paired(rows: pd.DataFrame, variant: str, reference: str = "baseline",
           metric: str = "test_srcc") -> pd.DataFrame:
    """Per-seed paired differences of ``variant`` against ``reference`` (seeds both ran
    with the metric measured)."""
    a = rows[rows["variant"] == variant].set_index("seed")[metric].dropna()
    b = rows[rows["variant"] == reference].set_index("seed")[metric].dropna()
    seeds = sorted(set(a.index) & set(b.index))
    return pd.DataFrame({"seed": seeds, "variant": a.loc[seeds].to_numpy(),
                         "reference": b.loc[seeds].to_numpy(),
                         "delta": a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()})


def judge(deltas, method: str = "", plan: Plan = PLAN) -> dict:
    """Everything but the family's Holm step about one set of paired differences.

    Args:
        method: a label prefix (``slope``: an interaction's slopes).
        plan: the analysis plan: which interval at this many seeds (:meth:`Plan.interval_kind`),
            what replaces a degenerate bootstrap-t interval, from how many seeds the
            Wilcoxon p is shown.
    Returns:
        ``n, delta (mean), ci_lo, ci_hi, method, p, p_wilcoxon, wins`` (seeds with Δ > 0;
        Δ = 0 counts as neither): the bootstrap-t interval and test (:func:`bootstrap_t`) or
        the t interval and t-test; ``method`` says which, and ``t (bootstrap-t degenerate)``
        where a bootstrap-t interval reached beyond the observed range of Δ (one outlying seed
        makes a resample's sd tiny) and the plan's ``degenerate: t`` replaced it.
    """
    d = np.asarray(deltas, dtype=np.float64)
    kind = plan.interval_kind(len(d))
    if len(d) < plan.min_seeds:
        (lo, hi), p = (float("nan"), float("nan")), float("nan")
    elif kind == "bootstrap-t":
        lo, hi, p = bootstrap_t(d, plan.level, plan.resamples, plan.boot_seed)
        if plan.degenerate == "t" and (lo < d.min() - 1e-12 or hi > d.max() + 1e-12):
            (lo, hi), p, kind = t_interval(d, plan.level), t_test_p(d), "t (bootstrap-t degenerate)"
    else:
        (lo, hi), p = t_interval(d, plan.level), t_test_p(d)
    method = f"{kind} {method}".strip()
    pw = wilcoxon_p(d) if len(d) >= plan.wilcoxon_from else float("nan")
    return {"n": len(d), "delta": float(d.mean()) if len(d) else float("nan"),
            "ci_lo": lo, "ci_hi": hi, "method": method, "p": p,
            "p_wilcoxon": pw, "wins": int((d > 0).sum())}


def settle(entries: list[dict], words: tuple[str, str] = ("better", "worse"),
           plan: Plan = PLAN) -> list[dict]:
    """Holm over ``entries`` (one family), then each one's verdict; updates them in place.

    Args:
        entries: :func:`judge` results; ``words`` is overridden by an entry's own ``words``.
    Returns:
        ``entries``, each with ``p_holm`` and ``verdict``.
    """
    for e, ph in zip(entries, holm([e["p"] for e in entries])):
        w = e.pop("words", words)
        e["p_holm"] = float(ph)
        e["verdict"] = TOO_FEW if e["n"] < plan.min_seeds else verdict(
            e["ci_lo"], e["ci_hi"], e["p_holm"], w, plan)
    return entries


def compare(rows: pd.DataFrame, variants, reference: str = "baseline",
            metric: str = "test_srcc", plan: Plan = PLAN) -> pd.DataFrame:
    """One row per variant: mean ± sd of the metric, paired Δ, its bootstrap-t interval, the
    tests and the verdict; the variants compared here are one Holm family.

    Args:
        rows: the study's run rows (``variant``, ``seed``, the metric).
        variants: the variants to compare with ``reference`` (the reference itself: a row
            marked ``reference``).
    Returns:
        Columns variant, reference, metric, n, mean, sd, delta, ci_lo, ci_hi, wins, verdict,
        method, p, p_wilcoxon, p_holm.
    """
    out, family = [], []
    for v in variants:
        vals = rows.loc[rows["variant"] == v, metric].dropna()
        row = {"variant": v, "reference": reference, "metric": metric, "mean": float(vals.mean()),
               "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")}
        if v == reference:
            row.update(n=len(vals), delta=0.0, ci_lo=np.nan, ci_hi=np.nan, wins=0,
                       verdict="reference", method="", p=np.nan, p_wilcoxon=np.nan,
                       p_holm=np.nan)
        else:
            row.update(judge(paired(rows, v, reference, metric)["delta"], plan=plan))
            family.append(row)
        out.append(row)
    settle(family, plan=plan)
    cols = ["variant", "reference", "metric", "n", "mean", "sd", "delta", "ci_lo", "ci_hi",
            "wins", "verdict", "method", "p", "p_wilcoxon", "p_holm"]
    return pd.DataFrame(out, columns=cols)
