import numpy as np
import pytest
from scipy import stats

from qfm.metrics import correlations, fit_logistic, logistic4, summarize


def test_metrics_equal_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    m = correlations(x, y)
    assert m["srcc"] == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert m["krcc"] == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
    assert m["plcc"] == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((x - y) ** 2)))
    assert m["n"] == 200


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
