"""The answer lines the figures notebook glues (qfm.report.answers): each one is the record's
entry as text, under the glue name the book reads, and "not measured yet" where LIVEC never ran."""

from __future__ import annotations

import re

import pytest

from qfm.report import answers, claims, verdicts
from qfm.report.ledger import NOT_MEASURED
from qfm.report.study import comparison, toy_frame
from qfm.report.study_views import sweep_base

ATTRIBUTION = ["gate_over_baseline", "qfm_over_gate", "full_over_gate", "full_over_qfm"]


def test_intro_values_are_the_records_entries(inputs, record):
    v = answers.intro_values(record, inputs)
    intro = inputs.fig["intro"]
    assert set(v) == ({f"{k}_{x}" for x in intro for k in ("verdict", "delta", "answer")}
                      | {f"answer_{a}" for a in ATTRIBUTION} | {"baseline_test_srcc"}
                      | {"answer_sweep_interaction_gate_qfm", "answer_sweep_interaction_full"})
    main = record["main"]
    assert v["verdict_gate"] == main["gate_vs_baseline"]["test_srcc"]["verdict"] == "better"
    assert v["delta_gate"] == claims.record_frame(main, ["gate"])["delta_ci"].iloc[0]
    assert v["answer_full_over_qfm"] == claims.answer(main["full_vs_gate_qfm"]["test_srcc"])
    assert v["answer_sweep_interaction_gate_qfm"].startswith("grows (slope of Δ test SRCC")
    assert v["answer_sweep_interaction_full"].startswith("not measured")  # not in the sweep
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}", v["baseline_test_srcc"])
    notes = answers.attribution_notes(record, inputs)
    assert [n.frame["note"].iloc[0].split(":")[0] for n in notes] == [
        "gate vs baseline", "gate_qfm vs gate", "full vs gate", "full vs gate_qfm"]


def test_livec_and_finetune_lines_say_not_measured_where_livec_never_ran(
        inputs, record, unmeasured):
    names = {f"{p}_{a}" for a in ATTRIBUTION for p in ("ft_answer", "livec_ft_answer")}
    ft = answers.finetune_values(record)
    assert set(ft) == names
    assert ft["ft_answer_gate_over_baseline"].startswith("better (Δ test SRCC")
    assert "95 % t CI" in ft["ft_answer_gate_over_baseline"]  # 5 seeds: the t interval
    assert ft["livec_ft_answer_full_over_gate"] == claims.answer_of(
        record["livec_finetune"], "full", "gate")
    lv = answers.livec_values(record)
    assert set(lv) == {f"livec_answer_{a}" for a in ATTRIBUTION}
    assert lv["livec_answer_gate_over_baseline"] == claims.answer_of(record["livec"], "gate")
    never = verdicts.verdict_record(unmeasured)
    assert set(answers.livec_values(never).values()) == {NOT_MEASURED}
    ft_never = answers.finetune_values(never)
    assert {ft_never[f"livec_ft_answer_{a}"] for a in ATTRIBUTION} == {NOT_MEASURED}
    assert ft_never["ft_answer_gate_over_baseline"] == ft["ft_answer_gate_over_baseline"]


def test_heldout_sweep_and_slope_lines(inputs, record):
    held = answers.heldout_values(record, inputs)
    assert set(held) == {f"heldout_answer_{v}" for v in inputs.variants[1:]} | {
        "baseline_heldout_srcc"}
    assert held["heldout_answer_full"] == claims.answer(
        record["main"]["full_vs_baseline"]["heldout_srcc"])
    sw = answers.sweep_values(record, inputs)
    assert set(sw) == {"spurious_max", "sweep_answer_gate", "sweep_answer_gate_qfm",
                       "baseline_drop"}
    assert sw["spurious_max"] == "1"
    assert sw["sweep_answer_gate_qfm"] == claims.answer_of(record["spurious_full"], "gate_qfm")
    base = sweep_base(inputs)
    assert sw["baseline_drop"] == (f"{base['mean'].iloc[0]:.3f} at strength 0 to "
                                   f"{base['mean'].iloc[-1]:.3f} at strength 1")
    notes = [n.frame["note"].iloc[0] for n in answers.slope_notes(record, inputs)]
    assert len(notes) == 3 and notes[0].startswith("slope of gate_qfm − gate over the "
                                                   "strength: grows")
    assert notes[2].startswith("slope of gate_qfm − baseline")


def test_share_and_toy_lines(inputs, record):
    sh = answers.share_values(record, inputs)
    entry = record["main"]["full_vs_baseline"]["share"]
    assert sh["share_word"] == entry["verdict"] == "lower"  # share = 0.3 − the variant's lift
    assert sh["share_delta"] == (f"{100 * entry['delta']:+.1f} [{100 * entry['ci_lo']:+.1f}, "
                                 f"{100 * entry['ci_hi']:+.1f}] percentage points")
    assert sh["share_answer_gate"] == claims.answer_of(record["main"], "gate", "baseline",
                                                       "share")
    toy = answers.toy_values(record, inputs)
    row = next(comparison(toy_frame(inputs.rows, inputs.toy), ["toy upstream"],
                          reference="ImageNet upstream").itertuples())
    assert toy["answer_toy"] == claims.answer(row)  # the record's entry reads as the row
    assert toy["toy_seeds"] == "0, 1, 2, 3, 4"
    assert record["toy"][verdicts.TOY_KEY]["test_srcc"]["delta"] == pytest.approx(row.delta)
