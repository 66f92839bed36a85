"""Coverage of the verdicts' 95 % interval at the study's seed count, by simulation.

For each population (normal; skewed: centred exponential, centred lognormal σ = 0.5 and 1;
heavy-tailed: Student t with 3 degrees of freedom), draw ``--reps`` samples of ``--n`` paired
differences with known mean and count how often each interval holds that mean: the
studentized bootstrap (bootstrap-t) the verdicts use (:func:`qfm.report.verdict.bootstrap_t`,
vectorised here with ``--boot`` resamples per sample) and, for contrast, the plain t interval
(:func:`qfm.report.verdict.t_interval`, the verdicts' interval before) and the percentile
bootstrap (:func:`qfm.report.verdict.bootstrap_ci`). Target: at least :data:`TARGET`. A test
at 0.05 rejects a true mean exactly when its interval misses it, so 1 − coverage is also the
size of the test the verdict reads. Run at ``--n 10`` (the world's and LIVEC's seeds) and
``--n 5`` (the fine-tuning regime's; ``--out benchmarks/results/interval_coverage_n5.json``).

    .venv/bin/python benchmarks/interval_coverage.py [--n 10] [--reps 20000] [--boot 2000]
        [--out FILE]

CPU, numpy only (scipy for the t quantile): a couple of minutes at the defaults.
"""

from __future__ import annotations

import argparse

import numpy as np
from harness import Record, add_out_argument
from qfm.report.verdict import LEVEL, t_interval

TARGET = 0.93  # nominal 95 % interval: coverage at least this


def populations(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """(reps, n) samples of each population, every one with mean 0."""
    return {"normal": rng.standard_normal(shape),
            "exponential (skew 2)": rng.exponential(1.0, shape) - 1.0,
            "lognormal sigma 0.5 (skew 1.8)": rng.lognormal(0.0, 0.5, shape) - np.exp(0.125),
            "lognormal sigma 1 (skew 6.2)": rng.lognormal(0.0, 1.0, shape) - np.exp(0.5),
            "student t3 (heavy tails)": rng.standard_t(3, shape)}


def bootstrap_cover(x: np.ndarray, n_boot: int, rng: np.random.Generator,
                    chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Does each row's bootstrap interval of the mean hold 0 — percentile, and studentized
    (bootstrap-t, a skew-aware alternative)? Two (reps,) boolean arrays."""
    pct, stud = np.empty(len(x), dtype=bool), np.empty(len(x), dtype=bool)
    q = [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2]
    n = x.shape[1]
    for i in range(0, len(x), chunk):
        xs = x[i:i + chunk]  # (c, n)
        idx = rng.integers(0, n, size=(len(xs), n_boot, n))
        res = np.take_along_axis(xs[:, None, :], idx, axis=2)  # (c, n_boot, n)
        means = res.mean(2)
        lo, hi = np.quantile(means, q, axis=1)
        pct[i:i + chunk] = (lo <= 0) & (0 <= hi)
        m, se = xs.mean(1), xs.std(1, ddof=1) / np.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):  # a resample of one value
            t = (means - m[:, None]) / (res.std(2, ddof=1) / np.sqrt(n))
        t[~np.isfinite(t)] = np.nan
        t_lo, t_hi = np.nanquantile(t, q, axis=1)
        stud[i:i + chunk] = (m - t_hi * se <= 0) & (0 <= m - t_lo * se)
    return pct, stud


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10, help="paired seeds per sample")
    p.add_argument("--reps", type=int, default=20_000, help="samples per population")
    p.add_argument("--boot", type=int, default=2_000, help="bootstrap resamples per sample")
    p.add_argument("--seed", type=int, default=0)
    add_out_argument(p, "interval_coverage")
    args = p.parse_args()
    record = Record("interval_coverage")
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, x in populations(rng, (args.reps, args.n)).items():
        lo, hi = t_interval(x, axis=1)
        t_cover = float(((lo <= 0) & (0 <= hi)).mean())
        pct, stud = bootstrap_cover(x, args.boot, rng)
        results[name] = {"t_coverage": round(t_cover, 4), "t_meets_target": t_cover >= TARGET,
                         "percentile_bootstrap_coverage": round(float(pct.mean()), 4),
                         "bootstrap_t_coverage": round(float(stud.mean()), 4),
                         "bootstrap_t_meets_target": float(stud.mean()) >= TARGET}
    se = float(np.sqrt(LEVEL * (1 - LEVEL) / args.reps))
    record.finish({"n": args.n, "reps": args.reps, "boot": args.boot, "level": LEVEL,
                   "target": TARGET, "monte_carlo_se": round(se, 4),
                   "populations": results}, args.out)


if __name__ == "__main__":
    main()
