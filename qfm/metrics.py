"""Correlation metrics of IQA: SRCC, KRCC, PLCC (raw and after the 4-parameter logistic), RMSE.

numpy/scipy only. The logistic is the VQEG mapping
``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`` fitted by least squares before PLCC,
as most IQA papers report it.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats


def logistic4(x, b1, b2, b3, b4):
    """The 4-parameter logistic mapping (monotonic, saturating at b1 and b2)."""
    with np.errstate(over="ignore"):  # exp overflow → inf → the curve's end value, as wanted
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / (np.abs(b4) + 1e-12))) + b2


def fit_logistic(pred, target) -> np.ndarray:
    """Least-squares fit of :func:`logistic4` mapping ``pred`` to ``target``.

    Returns:
        Parameters (b1, b2, b3, b4); falls back to the initial guess if the fit fails.
    """
    pred, target = np.asarray(pred, float), np.asarray(target, float)
    p0 = [target.max(), target.min(), float(np.mean(pred)), float(np.std(pred)) / 4 + 1e-6]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(logistic4, pred, target, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError):
        params = np.asarray(p0)
    return np.asarray(params)


def correlations(pred, target, logistic: bool = True) -> dict[str, float]:
    """All metrics for one set of predictions.

    Args:
        pred: predicted scores (N,).
        target: ground-truth scores (N,), same direction.
        logistic: also report PLCC and RMSE after the logistic fit.
    Returns:
        ``srcc, krcc, plcc, rmse`` and, with ``logistic``, ``plcc_logistic, rmse_logistic``;
        ``n`` the count. Constant inputs give NaN correlations.
    """
    pred, target = np.asarray(pred, float).ravel(), np.asarray(target, float).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    out = {"n": int(pred.size)}
    if pred.size < 3 or np.ptp(pred) == 0 or np.ptp(target) == 0:
        nan = float("nan")
        out.update(srcc=nan, krcc=nan, plcc=nan, rmse=float(np.sqrt(np.mean((pred - target) ** 2)))
                   if pred.size else nan)
        if logistic:
            out.update(plcc_logistic=nan, rmse_logistic=nan)
        return out
    out["srcc"] = float(stats.spearmanr(pred, target)[0])
    out["krcc"] = float(stats.kendalltau(pred, target)[0])
    out["plcc"] = float(stats.pearsonr(pred, target)[0])
    out["rmse"] = float(np.sqrt(np.mean((pred - target) ** 2)))
    if logistic:
        mapped = logistic4(pred, *fit_logistic(pred, target))
        out["plcc_logistic"] = float(stats.pearsonr(mapped, target)[0]) \
            if np.ptp(mapped) > 0 else float("nan")
        out["rmse_logistic"] = float(np.sqrt(np.mean((mapped - target) ** 2)))
    return out


def summarize(values) -> dict[str, float]:
    """Median, mean and standard deviation (ddof=1) of per-split or per-seed numbers."""
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    if v.size == 0:
        return {"median": float("nan"), "mean": float("nan"), "std": float("nan"), "n": 0}
    return {"median": float(np.median(v)), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}
