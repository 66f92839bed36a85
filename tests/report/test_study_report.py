"""What the book reports about the study: verdicts from paired intervals, the tuning trials
in the order tuned, the DVC metrics record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qfm.report import study as sr
from qfm.report import tuning as tuning_report
def rows(deltas: dict[str, float], n: int = 10, group: str = "main") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = 0.8 + 0.03 * rng.standard_normal(n)
    out = [{"variant": "baseline", "seed": s, "test_srcc": base[s], "heldout_srcc": base[s],
            "share": 0.3, "share_upstream": 0.4} for s in range(n)]
    for v, d in deltas.items():
        noise = 0.002 * rng.standard_normal(n)
        out += [{"variant": v, "seed": s, "test_srcc": base[s] + d + noise[s],
                 "heldout_srcc": base[s], "share": 0.3 + d, "share_upstream": 0.4}
                for s in range(n)]
    return pd.DataFrame(out).assign(group=group, spurious=0.0)


def test_verdicts_come_from_the_paired_interval():
    r = rows({"up": 0.02, "down": -0.02, "same": 0.0})
    cmp = sr.comparison(r, ["baseline", "up", "down", "same"]).set_index("variant")
    assert list(cmp.index) == ["up", "down", "same"]  # the reference is not compared to itself
    assert cmp.at["up", "verdict"] == "better" and cmp.at["down", "verdict"] == "worse"
    assert cmp.at["up", "wins"] == 10
    line = sr.answer(next(sr.comparison(r, ["up"]).itertuples()))
    assert line.startswith("better (Δ test SRCC +0.0") and "95 % CI [+" in line and "10 paired seeds" in line
    word, _ = sr.share_direction(r, "down")
    assert word == "lower"


def test_verdict_record_is_a_metrics_mapping_per_group_variant_and_metric():
    rec = sr.verdict_record(rows({"full": 0.02}), {"main": ["baseline", "full"]})
    full = rec["main"]["full"]
    assert full["test_srcc"]["verdict"] == "better"
    assert full["heldout_srcc"]["verdict"] == "no difference detected"
    assert full["test_srcc"]["ci_lo"] > 0 and rec["main"]["spurious"] == 0.0
    assert set(rec["main"]["baseline"]["test_srcc"]) == {"mean", "sd"}


def test_tuning_frame_lists_trials_in_the_order_tuned_and_marks_reused_defaults():
    t = lambda val, **kw: {"variant": "gate_qfm" if len(kw) > 1 else "baseline",
                           "val_srcc": val, "best_is_last": 0.0, **kw}
    tune = {"chosen": {"train.lr": 1e-3, "qfm.rho": 0.2, "qfm.lambda_qfm": 3.0,
                       "qfm.tau": 0.05},
            "trials": [t(0.7, **{"train.lr": 1e-3}), t(0.6, **{"train.lr": 2e-3}),
                       t(0.8, **{"train.lr": 1e-3, "qfm.rho": 0.2}),
                       t(0.75, **{"train.lr": 1e-3, "qfm.rho": 0.5}),
                       t(0.85, **{"train.lr": 1e-3, "qfm.rho": 0.2, "qfm.lambda_qfm": 3.0}),
                       t(0.84, **{"train.lr": 1e-3, "qfm.rho": 0.2, "qfm.lambda_qfm": 3.0,
                                  "qfm.tau": 0.1})]}
    f = tuning_report.tuning_frame(tune, {"qfm.lambda_qfm": 1.0, "qfm.tau": 0.05})
    assert f["key"].tolist() == ["train.lr"] * 2 + ["qfm.rho"] * 2 + ["qfm.lambda_qfm"] * 2 \
        + ["qfm.tau"] * 2
    lam = f[f["key"] == "qfm.lambda_qfm"]
    assert lam["reused"].tolist() == [True, False]
    assert lam["val_srcc"].tolist() == [0.8, 0.85]  # λ = 1 is the chosen ρ trial
    tau = f[f["key"] == "qfm.tau"]
    assert tau["val_srcc"].tolist() == [0.85, 0.84] and tau["chosen"].tolist() == [True, False]
    assert tuning_report.chosen_text(tune).startswith("learning rate = 0.001, ρ = 0.2")
    grid = pd.DataFrame({"step": ["ρ"] * 3 + ["τ"] * 3, "value": [0.05, 0.2, 0.5] * 2,
                         "chosen": [False, False, True, False, True, False]})
    assert tuning_report.edge_text(grid).startswith("Chosen at the edge of the range tried: "
                                                    "ρ (highest) —")


def test_ladder_compares_each_rung_with_the_one_below():
    r = rows({"gate": 0.0, "gate_qfm": 0.02})
    f = sr.ladder_frame(r, ["baseline", "gate", "gate_qfm"]).set_index("variant")
    assert np.isnan(f.at["baseline", "step_delta"])
    assert f.at["gate_qfm", "step_delta"] == pytest.approx(0.02, abs=0.003)
    assert f.at["gate_qfm", "step_verdict"] == "better"
