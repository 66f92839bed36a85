"""Paired comparisons of the study's variants and the verdict each interval supports.

Runs are paired by seed (same content split, same initialisation seed): for a variant V and
the baseline B, the paired differences Δ_s = metric(V, s) − metric(B, s). The 95 % interval of
their mean is a percentile bootstrap over seeds (10,000 resamples, seeded). The verdict is read
from the interval, never typed: ``better`` if it lies above 0, ``worse`` if below, else
``no difference detected``. numpy/pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VERDICTS = ("better", "no difference detected", "worse")


def bootstrap_ci(values, n_boot: int = 10_000, level: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def verdict(lo: float, hi: float) -> str:
    """The verdict a confidence interval of Δ supports."""
    if np.isnan(lo) or np.isnan(hi):
        return "no difference detected"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    return "no difference detected"


def paired(rows: pd.DataFrame, variant: str, reference: str = "baseline",
           metric: str = "test_srcc") -> pd.DataFrame:
    """Per-seed paired differences of ``variant`` against ``reference`` (seeds both ran)."""
    a = rows[rows["variant"] == variant].set_index("seed")[metric]
    b = rows[rows["variant"] == reference].set_index("seed")[metric]
    seeds = sorted(set(a.index) & set(b.index))
    return pd.DataFrame({"seed": seeds, "variant": a.loc[seeds].to_numpy(),
                         "reference": b.loc[seeds].to_numpy(),
                         "delta": a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()})


def compare(rows: pd.DataFrame, variants, reference: str = "baseline",
            metric: str = "test_srcc") -> pd.DataFrame:
    """One row per variant: mean ± sd of the metric, paired Δ, its 95 % CI, the verdict.

    Args:
        rows: the study's run rows (``variant``, ``seed``, the metric).
        variants: the variants to compare with ``reference``.
    Returns:
        Columns variant, n, mean, sd, delta, ci_lo, ci_hi, wins, verdict.
    """
    out = []
    for v in variants:
        d = paired(rows, v, reference, metric)
        vals = rows.loc[rows["variant"] == v, metric]
        lo, hi = bootstrap_ci(d["delta"]) if v != reference else (float("nan"),) * 2
        out.append({"variant": v, "n": int(len(d)), "mean": float(vals.mean()),
                    "sd": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                    "delta": float(d["delta"].mean()) if v != reference else 0.0,
                    "ci_lo": lo, "ci_hi": hi,
                    "wins": int((d["delta"] > 0).sum()) if v != reference else 0,
                    "verdict": verdict(lo, hi) if v != reference else "reference"})
    return pd.DataFrame(out)
