"""Paired verdicts: the bootstrap-t interval and the test it inverts, the t interval (scipy's,
equal to the hand-written formula it replaced) and the percentile bootstrap (scipy's, the same
seeded resamples), Holm on known p-values, the Wilcoxon p, the verdict read from the
Holm-adjusted p, and the per-seed slope of an interaction."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from qfm.report import judging
from qfm.report import verdict as vd

SAMPLE = np.array([0.012, -0.004, 0.020, 0.007, 0.015, 0.003, 0.018, -0.001, 0.010, 0.009])


def test_t_interval_matches_scipy_and_is_absent_below_five_seeds():
    lo, hi = vd.t_interval(SAMPLE)
    ref = stats.t.interval(0.95, len(SAMPLE) - 1, loc=SAMPLE.mean(), scale=stats.sem(SAMPLE))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    rows = np.stack([SAMPLE, SAMPLE * 2])
    lo2, hi2 = vd.t_interval(rows, axis=1)  # vectorised: the coverage benchmark's path
    assert lo2[0] == pytest.approx(lo) and hi2[1] == pytest.approx(2 * hi)
    assert all(np.isnan(vd.t_interval(SAMPLE[:4])))
    assert np.isnan(vd.t_test_p(SAMPLE[:4])) and np.isnan(vd.wilcoxon_p(SAMPLE[:4]))


def old_t_interval(v, level=0.95, axis=-1):
    """The hand-written t interval the verdicts used before scipy's (mean ± t·sd/√n)."""
    v = np.asarray(v, dtype=np.float64)
    n = v.shape[axis]
    half = stats.t.ppf(0.5 + level / 2, n - 1) * v.std(axis, ddof=1) / np.sqrt(n)
    return v.mean(axis) - half, v.mean(axis) + half


def test_scipys_t_interval_gives_the_old_formulas_numbers():
    rng = np.random.default_rng(7)
    for n in (5, 6, 10, 30):
        x = 0.8 + 0.03 * rng.standard_normal((200, n))
        lo, hi = vd.t_interval(x, axis=1)
        old_lo, old_hi = old_t_interval(x, axis=1)
        np.testing.assert_allclose(lo, old_lo, rtol=1e-13, atol=0)  # equal up to the last bit
        np.testing.assert_allclose(hi, old_hi, rtol=1e-13, atol=0)
        assert vd.t_interval(x[0]) == pytest.approx(old_t_interval(x[0]), rel=1e-13)
        assert vd.t_interval(x[0], level=0.9) == pytest.approx(old_t_interval(x[0], 0.9),
                                                               rel=1e-13)
    lo, hi = vd.t_interval(x.T, axis=0)  # any axis
    np.testing.assert_allclose(lo, old_t_interval(x, axis=1)[0], rtol=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # identical values: the point, and no warning
        assert vd.t_interval(np.full(6, 0.01)) == (0.01, 0.01)
        assert vd.t_interval(np.zeros(6)) == (0.0, 0.0)


def test_percentile_bootstrap_is_scipys_seeded_resampling():
    rng = np.random.default_rng(0)
    v = rng.normal(0.02, 0.03, 10)
    lo, hi = vd.bootstrap_ci(v)
    ref = stats.bootstrap((v,), np.mean, n_resamples=10_000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    assert (lo, hi) == (ref.low, ref.high) and lo < v.mean() < hi
    means = v[np.random.default_rng(0).integers(0, 10, (10_000, 10))].mean(1)  # the old way
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])), rel=1e-12)
    assert vd.bootstrap_ci(v, seed=1) != (lo, hi)  # the seed is used
    assert all(np.isnan(vd.bootstrap_ci(v[:1])))


def test_bootstrap_t_inverts_its_test_is_seeded_and_follows_skew():
    lo, hi, p = vd.bootstrap_t(SAMPLE)
    assert lo < SAMPLE.mean() < hi and p < 0.05 and lo > 0  # 0 outside ⇔ p < 0.05
    for shift in (0.002, 0.003, 0.006):
        lo, hi, p = vd.bootstrap_t(SAMPLE - shift)
        assert (lo > 0) == (p < 0.05)
    assert vd.bootstrap_t(SAMPLE) == vd.bootstrap_t(SAMPLE)  # seeded: the same every run
    assert all(np.isnan(vd.bootstrap_t(SAMPLE[:4])))
    assert vd.bootstrap_t(np.zeros(10)) == (0.0, 0.0, 1.0)
    assert vd.bootstrap_t(np.full(10, 0.01))[2] == 0.0
    skewed = np.random.default_rng(3).exponential(1.0, 10) - 1.0  # a long right tail
    lo, hi, _ = vd.bootstrap_t(skewed)
    assert hi - skewed.mean() > skewed.mean() - lo  # the interval leans into the tail
    assert vd.judge(SAMPLE)["method"] == "bootstrap-t"
    five = vd.judge(SAMPLE[:5])  # below BOOT_MIN_SEEDS: the t interval and t-test
    assert five["method"] == "t" and (five["ci_lo"], five["ci_hi"]) == vd.t_interval(SAMPLE[:5])
    assert five["p"] == vd.t_test_p(SAMPLE[:5])


def test_tests_match_scipy_and_handle_degenerate_differences():
    assert vd.t_test_p(SAMPLE) == pytest.approx(stats.ttest_1samp(SAMPLE, 0).pvalue)
    assert vd.wilcoxon_p(SAMPLE) == pytest.approx(stats.wilcoxon(SAMPLE).pvalue)
    assert vd.wilcoxon_p(np.arange(1, 11) / 100) == pytest.approx(2 / 2 ** 10)  # exact null
    assert vd.wilcoxon_p(np.zeros(10)) == 1.0 and vd.t_test_p(np.zeros(10)) == 1.0
    assert vd.t_test_p(np.full(10, 0.01)) == 0.0


def test_holm_on_known_p_values():
    # sorted 0.01, 0.02, 0.03, 0.04 → ×4, ×3, ×2, ×1 = 0.04, 0.06, 0.06, 0.04 → monotone
    adj = vd.holm([0.03, 0.01, 0.04, 0.02])
    assert adj == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert vd.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    nan = vd.holm([0.01, np.nan, 0.03])  # NaN is no member of the family
    assert np.isnan(nan[1]) and nan[[0, 2]] == pytest.approx([0.02, 0.03])


def test_verdict_needs_the_holm_adjusted_p():
    assert vd.verdict(0.01, 0.03, 0.01) == "better"
    assert vd.verdict(-0.03, -0.01, 0.049) == "worse"
    assert vd.verdict(0.01, 0.03, 0.051) == "no difference detected"
    assert vd.verdict(0.01, 0.03, float("nan")) == "no difference detected"
    assert vd.verdict(0.01, 0.03, 0.01, ("higher", "lower")) == "higher"
    # bootstrap-t p ≈ 0.04: significant alone, not in a family of three (Holm: 3 p ≈ 0.11)
    e = vd.judge(SAMPLE - 0.002)
    assert 0.05 / 3 < e["p"] < 0.05 and e["ci_lo"] > 0
    assert vd.settle([dict(e)])[0]["verdict"] == "better"
    fam = vd.settle([dict(e), dict(e, p=0.5), dict(e, p=0.6)])
    assert fam[0]["p_holm"] == pytest.approx(3 * e["p"]) and fam[0]["p_holm"] > 0.05
    assert fam[0]["verdict"] == "no difference detected"


def frame(deltas: dict[str, np.ndarray], n: int = 10) -> pd.DataFrame:
    base = 0.8 + 0.03 * np.random.default_rng(1).standard_normal(n)
    out = [{"variant": "baseline", "seed": s, "test_srcc": base[s]} for s in range(n)]
    for v, d in deltas.items():
        out += [{"variant": v, "seed": s, "test_srcc": base[s] + d[s]} for s in range(n)]
    return pd.DataFrame(out)


def test_compare_keeps_its_columns_adds_the_tests_and_adjusts_over_the_variants():
    rng = np.random.default_rng(0)
    rows = frame({"up": 0.02 + 0.005 * rng.standard_normal(10), "weak": SAMPLE - 0.002,
                  "none": 0.01 * rng.standard_normal(10)})
    cmp = vd.compare(rows, ["baseline", "up", "weak", "none"]).set_index("variant")
    assert {"n", "mean", "sd", "delta", "ci_lo", "ci_hi", "wins", "verdict", "method", "p",
            "p_wilcoxon", "p_holm"} <= set(cmp.columns)
    assert cmp.at["baseline", "verdict"] == "reference"
    assert cmp.at["up", "verdict"] == "better" and cmp.at["up", "method"] == "bootstrap-t"
    assert cmp.at["weak", "p_holm"] == pytest.approx(2 * cmp.at["weak", "p"])  # 2nd of 3: p ≈ 0.04
    assert cmp.at["weak", "ci_lo"] > 0 and cmp.at["weak", "verdict"] == "no difference detected"
    assert cmp.at["none", "verdict"] == "no difference detected"
    few = vd.compare(frame({"up": np.full(10, 0.02)}).query("seed < 3"), ["up"])
    assert few.at[0, "verdict"] == vd.TOO_FEW and np.isnan(few.at[0, "ci_lo"])


def test_slope_of_the_paired_difference_over_the_knob():
    rng = np.random.default_rng(0)
    strengths, seeds = [0.0, 0.5, 1.0], range(10)
    slope = 0.04 + 0.002 * rng.standard_normal(10)  # per seed
    rows = pd.DataFrame([{"spurious": s, "seed": k, "variant": v,
                          "test_srcc": 0.8 - 0.1 * s + (0.01 + slope[k] * s if v == "a" else 0)
                          + (0.001 * rng.standard_normal() if v == "a" else 0)}
                         for s in strengths for k in seeds for v in ("a", "b")])
    got, xs = judging.slopes(rows, "a", "b")
    assert xs == strengths
    ref = [np.polyfit(strengths, rows[(rows.seed == k) & (rows.variant == "a")].test_srcc.values
                      - rows[(rows.seed == k) & (rows.variant == "b")].test_srcc.values, 1)[0]
           for k in seeds]
    assert got.to_numpy() == pytest.approx(ref)
    (e,) = judging.judge_slopes(rows, [("a", "b")], "sweep")
    assert e["verdict"] == "grows" and e["method"] == "bootstrap-t slope" and e["ci_lo"] < 0.04 < e["ci_hi"]
    flat = rows.assign(test_srcc=np.where(rows.variant == "a", rows.test_srcc - 0.04 *
                                          rows.spurious, rows.test_srcc))
    assert judging.judge_slopes(flat, [("a", "b")], "sweep")[0]["verdict"] != "grows"
    assert judging.judge_slopes(rows[rows.spurious == 0], [("a", "b")], "sweep") == []
