"""What the book reports about the study: verdicts from paired t intervals and Holm-adjusted
tests, the DVC metrics record of every stated comparison, the tables read from it, the tuning
trials in the order tuned."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qfm.report import claims, livec
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
    line = claims.answer(next(sr.comparison(r, ["up"]).itertuples()))
    assert line.startswith("better (Δ test SRCC +0.0") and "95 % bootstrap-t CI [+" in line
    assert "Holm p < 0.001, Wilcoxon p = 0.002, 10 paired seeds)" in line
    few = claims.answer(next(sr.comparison(r[r["seed"] < 3], ["up"]).itertuples()))
    assert few.startswith("too few seeds (Δ test SRCC +0.0") and "CI" not in few


ALL = ["baseline", "gate", "gate_qfm", "full", "rho0", "random_partner", "random_direction",
       "distill"]


def test_plan_names_every_stated_comparison_once_and_skips_absent_variants():
    specs = claims.comparisons(ALL, ["baseline", "gate", "gate_qfm", "full"])
    keys = [(v, r, m) for v, r, m, _ in specs]
    assert len(keys) == len(set(keys))
    fam = {(v, r, m): f for v, r, m, f in specs}
    assert [k for k, f in fam.items() if f == "intro"] == [
        ("gate", "baseline", "test_srcc"), ("gate_qfm", "gate", "test_srcc"),
        ("full", "gate", "test_srcc"), ("full", "baseline", "test_srcc")]
    assert fam[("full", "gate_qfm", "test_srcc")] == "attribution"
    assert fam[("rho0", "gate_qfm", "test_srcc")] == "controls"
    assert fam[("rho0", "baseline", "test_srcc")] == "variants"
    assert fam[("gate_qfm", "gate", "share")] == "share"
    assert not any("gate_static" in k for k in keys)  # not run: no comparison
    cap = claims.comparisons(ALL + ["gate_static", "gate_params"])
    assert ("gate", "gate_static", "test_srcc", "capacity") in cap
    assert ("gate_params", "baseline", "test_srcc", "capacity") in cap
    assert claims.comparisons(["baseline", "gate_qfm", "full"]) == [
        ("full", "baseline", "test_srcc", "intro"), ("full", "gate_qfm", "test_srcc",
                                                      "attribution"),
        ("gate_qfm", "baseline", "test_srcc", "variants"),
        ("gate_qfm", "baseline", "heldout_srcc", "heldout"),
        ("full", "baseline", "heldout_srcc", "heldout"), ("full", "baseline", "share", "share")]


def sweep_rows() -> pd.DataFrame:
    """main (spurious 0) with every variant; half and full with the sweep's: QFM's edge over
    the gate grows with the strength, the gate's over the baseline does not."""
    frames = []
    for g, s in (("main", 0.0), ("spurious_half", 0.5), ("spurious_full", 1.0)):
        grow = 0.01 + 0.04 * s
        deltas = {"gate": 0.01, "gate_qfm": 0.01 + grow, "full": 0.012 + grow}
        if g == "main":
            deltas.update(rho0=0.011, random_partner=0.0, random_direction=0.01, distill=0.0)
        frames.append(rows(deltas, group=g).assign(spurious=s))
    return pd.concat(frames, ignore_index=True)


def test_verdict_record_holds_every_named_comparison_with_its_family():
    r = sweep_rows()
    groups = {"main": ALL, "spurious_half": ["baseline", "gate", "gate_qfm", "full"],
              "spurious_full": ["baseline", "gate", "gate_qfm", "full"]}
    rec = claims.verdict_record(r, groups, ["baseline", "gate", "gate_qfm", "full"],
                                ["gate_qfm", "full"])
    json.dumps(rec, allow_nan=False)  # NaN written as null: valid JSON for dvc metrics
    main = rec["main"]
    e = main["gate_qfm_vs_gate"]["test_srcc"]
    assert set(e) == {"variant", "reference", "metric", "n", "delta", "ci_lo", "ci_hi",
                      "method", "p", "p_wilcoxon", "p_holm", "family", "wins", "verdict",
                      "question", "flagged", "reading", "yardstick"}
    assert e["question"] == "intro" and e["verdict"] == "better" and e["n"] == 10
    assert e["family"] == "main · test_srcc" and e["reading"] in ("consistent", "undecided",
                                                                   "ruled out")
    assert e["method"] == "bootstrap-t" and e["p_holm"] >= e["p"]
    fam = [c["test_srcc"] for k, c in main.items() if "_vs_" in k and "test_srcc" in c]
    m = len(fam)  # the plan: one Holm family per group × metric
    assert m > 4 and all(x["family"] == "main · test_srcc" for x in fam)
    assert sorted(x["p_holm"] for x in fam) == pytest.approx(
        np.maximum.accumulate(np.minimum(1, np.arange(m, 0, -1) *
                                         np.sort([x["p"] for x in fam]))))
    assert main["full_vs_gate_qfm"]["test_srcc"]["question"] == "attribution"
    assert main["random_partner_vs_gate_qfm"]["test_srcc"]["verdict"] == "worse"
    assert main["rho0_vs_gate_qfm"]["test_srcc"]["question"] == "controls"
    assert main["full_vs_baseline"]["heldout_srcc"]["verdict"] == "no difference detected"
    assert main["full_vs_gate"]["share"]["verdict"] == "higher"  # share = 0.3 + Δ here
    assert main["means"]["baseline"]["test_srcc"]["sd"] > 0 and main["spurious"] == 0.0
    inter = rec["sweep_interaction"]
    assert inter["gate_qfm_vs_gate"]["test_srcc"]["verdict"] == "grows"
    assert inter["gate_qfm_vs_gate"]["test_srcc"]["delta"] == pytest.approx(0.04, abs=0.003)
    assert inter["gate_qfm_vs_gate"]["test_srcc"]["strengths"] == "0, 0.5, 1"
    assert inter["full_vs_baseline"]["test_srcc"]["question"] == "sweep_baseline"
    assert claims.interaction_answer(rec, "full").startswith(
        "grows (slope of Δ test SRCC per unit spurious strength +0.04")
    no_gate = claims.verdict_record(r[(r["group"] == "main") | (r["variant"] != "gate")],
                                    groups, sweep=["full"])
    assert "gate_qfm_vs_gate" not in no_gate["sweep_interaction"]
    assert "gate_qfm_vs_gate" not in no_gate["spurious_half"]
    assert claims.interaction_answer(no_gate, "gate_qfm").startswith("not measured")


def test_tables_read_the_record():
    r = sweep_rows()
    groups = {"main": ALL, "spurious_half": ["baseline", "gate_qfm", "full"],
              "spurious_full": ["baseline", "gate_qfm", "full"]}
    rec = claims.verdict_record(r, groups, ["baseline", "gate", "gate_qfm", "full"])
    f = claims.record_frame(rec["main"], ["full", "nope", "gate"])
    assert f["variant"].tolist() == ["full", "gate"] and f["ci_lo"].dtype == np.float64
    assert f["family"].tolist() == ["main · test_srcc"] * 2 and f["delta_ci"].iloc[0].startswith("+")
    assert "Holm p (family)" in sr.delta_table(f).markup
    word, row = sr.share_direction(rec["main"], "full")
    assert word == "higher" and row.family == "main · share"
    sw = sr.sweep_frame(rec, ["gate_qfm", "full"])
    assert sorted(sw["spurious"].unique()) == [0.0, 0.5, 1.0] and (sw["verdict"] == "better").all()


def test_tuning_frame_lists_trials_in_the_order_tuned_and_marks_reused_trials():
    t = lambda knob, v, val, reused=False, **kw: {"knob": knob, "variant": v, "val_srcc": val,
                                                 "best_is_last": 0.0, "reused": reused, **kw}
    tune = {"chosen": {"gate_qfm": {"train.lr": 2e-3, "qfm.lambda_qfm": 1.0}},
            "knobs": [{"knob": "train.lr", "on": "baseline", "value": 1e-3, "status": "tuned"},
                      {"knob": "train.lr", "on": "gate", "value": 2e-3, "status": "tuned"},
                      {"knob": "qfm.rho", "on": "gate_qfm", "value": 0.1,
                       "status": "fixed by params.yaml"},
                      {"knob": "qfm.lambda_qfm", "on": "gate_qfm", "value": 1.0,
                       "status": "tuned"}],
            "trials": [t("train.lr", "baseline", 0.7, **{"train.lr": 1e-3}),
                       t("train.lr", "baseline", 0.6, **{"train.lr": 2e-3}),
                       t("train.lr", "gate", 0.8, **{"train.lr": 2e-3}),
                       t("train.lr", "gate", 0.75, **{"train.lr": 4e-3}),
                       t("qfm.lambda_qfm", "gate_qfm", 0.85, True,
                         **{"train.lr": 2e-3, "qfm.lambda_qfm": 1.0}),
                       t("qfm.lambda_qfm", "gate_qfm", 0.8,
                         **{"train.lr": 2e-3, "qfm.lambda_qfm": 0.0})]}
    f = tuning_report.tuning_frame(tune, {})
    assert f["step"].tolist() == ["learning rate (baseline)"] * 2 + ["learning rate (gate)"] * 2 \
        + ["λ_qfm (gate_qfm)"] * 2
    assert f["chosen"].tolist() == [True, False, True, False, True, False]
    assert f["reused"].tolist() == [False] * 4 + [True, False]
    text = tuning_report.chosen_text(tune)
    assert text.startswith("learning rate = 0.001 (baseline), 0.002 (gate), λ_qfm = 1 (gate_qfm)")
    assert text.endswith("fixed by params.yaml: ρ = 0.1")
    grid = pd.DataFrame({"step": ["ρ"] * 3 + ["τ"] * 3, "value": [0.05, 0.2, 0.5] * 2,
                         "chosen": [False, False, True, False, True, False]})
    assert tuning_report.edge_text(grid).startswith("Chosen at the edge of the range tried: "
                                                    "ρ (highest) —")
    off = pd.DataFrame({"step": ["ρ"] * 3 + ["τ"] * 3,
                        "value": [0.0, 0.01, 0.05, 0.02, 0.05, 0.1],
                        "chosen": [True, False, False, False, True, False]})
    text = tuning_report.edge_text(off)  # 0 is a bound, not an edge the best may lie beyond
    assert text.startswith("Chosen at 0, the value that switches its part off") and "ρ" in text
    assert text.endswith("Every other chosen value lies inside the range tried.")


def test_ladder_compares_each_rung_with_the_one_below():
    r = rows({"gate": 0.0, "gate_qfm": 0.02})
    ladder = ["baseline", "gate", "gate_qfm"]
    rec = claims.verdict_record(r, {"main": ladder}, ladder)
    f = sr.ladder_frame(r, ladder, rec["main"]).set_index("variant")
    assert np.isnan(f.at["baseline", "step_delta"])
    assert f.at["gate_qfm", "step_delta"] == pytest.approx(0.02, abs=0.003)
    assert f.at["gate_qfm", "step_verdict"] == "better"
    assert f.at["gate", "step_verdict"] == "no difference detected"


def test_rows_that_repeat_a_run_are_counted_once_and_named():
    """λ_qfm = 0: gate_qfm's rows are the gate's runs (same_as); the best-epoch share counts
    each run trained once, the per-variant table names the repeat, and the diagnostics say
    why they are empty."""
    df = pd.DataFrame([{"variant": v, "seed": s, "epochs": 20, "max_epochs": 60,
                        "best_epoch": 59 if (v == "gate" and s == 0) else 10,
                        "best_is_last": v == "gate" and s == 0, "stopped_early": True,
                        "same_as": "gate" if v == "gate_qfm" else None}
                       for v in ("baseline", "gate", "gate_qfm") for s in range(5)])
    facts = livec.best_epoch_facts(df)
    assert facts["runs"] == 10 and facts["best_last"] == 0.1  # not 2 of 15
    table = sr.best_last_table(df, ["baseline", "gate", "gate_qfm"]).markup
    assert "gate_qfm (= gate)" in table and table.count("<tr>") == 3  # header + 2 rows
    assert "best epoch = first epoch" in table
    assert "every QFM variant ran as gate" in sr.diagnostics_table(df).markup


def test_the_qfm_term_sentence_says_what_validation_switched_off():
    def said(**chosen):
        return tuning_report.qfm_term_text({"chosen": {"gate_qfm": chosen}})
    assert said(**{"qfm.lambda_qfm": 0.0, "qfm.rho": 0.0}).startswith(
        "validation switched QFM's term off")
    assert "perturbation off (ρ = 0" in said(**{"qfm.lambda_qfm": 0.3, "qfm.rho": 0.0})
    assert said(**{"qfm.lambda_qfm": 0.3, "qfm.rho": 0.01}) == \
        "validation kept QFM's term on (λ_qfm = 0.3 chosen)"
    assert tuning_report.qfm_term_text(None) == "not measured yet"
