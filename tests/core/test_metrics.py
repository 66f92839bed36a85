import math

import numpy as np
import pytest

from qfm.core.metrics import correlations, fit_logistic, logistic4, summarize


def test_metrics_match_hand_computed_values():
    # x = 1..5, y swaps the first two and the middle two: rank differences ±1 (Σd² = 4),
    # 8 concordant and 2 discordant pairs, centred cross-products 8 over variances 10 and 10
    m = correlations([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    assert m["srcc"] == pytest.approx(1 - 6 * 4 / (5 * (25 - 1)))  # 0.8
    assert m["krcc"] == pytest.approx((8 - 2) / 10)  # 0.6
    assert m["plcc"] == pytest.approx(8 / math.sqrt(10 * 10))  # 0.8
    assert m["rmse"] == pytest.approx(math.sqrt(4 / 5))
    assert m["n"] == 5


def test_ties_get_average_ranks_and_kendall_tau_b():
    # x ranks (1, 2.5, 2.5, 4), y ranks (1, 3, 2, 4): Pearson of ranks = 4.5 / √(4.5 · 5);
    # 5 concordant pairs, 0 discordant, one pair tied in x: τ_b = 5 / √((6 - 1) · 6)
    m = correlations([1, 2, 2, 3], [1, 3, 2, 4], logistic=False)
    assert m["srcc"] == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert m["krcc"] == pytest.approx(5 / math.sqrt(5 * 6))
    assert "plcc_logistic" not in m


def test_logistic_fit_recovers_known_curve():
    x = np.linspace(-3, 3, 300)
    true = (80.0, 10.0, 0.5, 0.7)
    y = logistic4(x, *true)
    params = fit_logistic(x, y)
    assert np.allclose(logistic4(x, *params), y, atol=1e-3)
    m = correlations(x, y)
    assert m["plcc_logistic"] == pytest.approx(1.0, abs=1e-6)
    assert m["plcc"] < 0.99  # the raw relation is not linear


def test_constant_prediction_is_nan_not_crash():
    m = correlations(np.ones(10), np.arange(10.0))
    assert np.isnan(m["srcc"]) and np.isnan(m["plcc_logistic"])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        correlations(np.ones(3), np.ones(4))


def test_summarize():
    s = summarize([0.8, 0.9, 1.0, float("nan")])
    assert s["median"] == pytest.approx(0.9) and s["n"] == 3
    assert s["std"] == pytest.approx(0.1)
