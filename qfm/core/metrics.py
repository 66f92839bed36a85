"""Correlation metrics of IQA: SRCC, KRCC, PLCC (raw and after the 4-parameter logistic), RMSE.

numpy/scipy only. The logistic is the VQEG mapping
``f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`` fitted by least squares before PLCC,
as most IQA papers report it.
"""

from __future__ import annotations

import math
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


def pair_arrays(feats: np.ndarray, quality: np.ndarray, block: int = 1024
                ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distance and |Δ quality| of every unordered pair.

    The similarities come from the normalised features ``F̂ F̂ᵀ``, ``block`` rows at a time:
    memory is the N×C features, one block × N slice and the two P-long outputs — never a
    P × C array (that was ~12 GB for KonIQ's test part at ViT-S width).

    Args:
        feats: pooled features (N, C).
        quality: normalised quality (N,).
        block: rows of the similarity matrix computed at once.
    Returns:
        (distance (P,), gap (P,)) with P = N(N−1)/2, pairs in ``np.triu_indices`` order.
    """
    f = np.asarray(feats, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    q = np.asarray(quality, dtype=np.float64)
    n = len(f)
    dist, gap = np.empty(n * (n - 1) // 2), np.empty(n * (n - 1) // 2)
    pos = 0
    for a in range(0, n, block):
        sim = f[a:a + block] @ f[a:].T  # (b, N − a): row r holds pairs (r, a..N−1)
        for r in range(sim.shape[0]):
            i, k = a + r, n - (a + r) - 1
            dist[pos:pos + k] = 1.0 - sim[r, r + 1:]
            gap[pos:pos + k] = np.abs(q[i] - q[i + 1:])
            pos += k
    return dist, gap


def noise_share(dist: np.ndarray, gap: np.ndarray, closest: float = 0.1,
                threshold: float = 0.2) -> tuple[float, float]:
    """Share of the ``closest`` fraction of pairs (smallest distance) with gap > ``threshold``.

    Returns:
        (share, the distance cut-off of the closest pairs). Exactly k = ceil(closest·P) pairs
        are counted: all closer than the cut-off, then, of those at it, the first in pair
        order (what a stable sort would pick), found by selection instead of a full sort.
    """
    if len(dist) == 0:
        return math.nan, math.nan
    k = max(1, math.ceil(closest * len(dist)))
    cut = float(np.partition(dist, k - 1)[k - 1])
    below = dist < cut
    at = np.flatnonzero(dist == cut)[:k - int(below.sum())]
    hits = int(np.count_nonzero(gap[below] > threshold)) + int(np.count_nonzero(
        gap[at] > threshold))
    return hits / k, cut
