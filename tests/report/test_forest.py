"""The answer at a glance (qfm.report.forest), the sensitivity table (qfm.report.sensitivity)
and the whole-upstream regime's views (qfm.report.whole_views), on the synthetic study of
conftest: every number is the record's, every regime shows once its rows exist."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from qfm.report import forest, plan_page, sensitivity, verdicts, whole_views
from qfm.report.analysis_plan import PLAN
from qfm.report.claims import HEADLINE


def test_the_forest_holds_every_headline_comparison_the_record_has(record):
    f = forest.forest_frame(record)
    assert set(f["comparison"]) <= {f"{v} vs {r}" for v, r in HEADLINE}
    e = record["main"]["gate_vs_baseline"]["test_srcc"]
    row = f[(f["comparison"] == "gate vs baseline") & (f["data"] == "world")
            & (f["regime"] == "frozen")].iloc[0]
    assert (row["delta"], row["ci_lo"], row["verdict"], row["reading"]) == (
        e["delta"], e["ci_lo"], e["verdict"], e["reading"])
    assert "whole upstream" not in set(f["regime"])  # no rows: not drawn
    assert set(f["data"]) == {"world", "LIVEC"}


def test_the_answer_reads_the_record_and_names_what_is_missing(record):
    f = forest.forest_frame(record)
    sentences = forest.answer_sentences(f)
    assert len(sentences) == f["comparison"].nunique()
    first = sentences[0]
    e = record["main"]["gate_vs_baseline"]["test_srcc"]
    assert first.startswith(forest.ASKS["gate vs baseline"])
    assert f"{e['delta']:+.3f} [{e['ci_lo']:+.3f}, {e['ci_hi']:+.3f}]" in first
    assert f"{e['verdict']} on the world" in first
    scope = forest.scope_sentence(f)
    assert "Not measured yet: LIVEC, whole upstream." in scope
    assert f"+{PLAN.yardstick:.3f}" in scope
    lead = forest.lead_sentence(f)
    assert lead.startswith("On LIVEC's human opinion scores QFM-IQM")
    assert "gate vs baseline (world frozen" in lead  # where gains were detected
    block = forest.answer_block(f, PLAN)
    assert block.markup.count("<li>") == len(sentences) and "<strong>" in block.markup


def test_the_forest_figure_is_written(record, tmp_path):
    path = forest.forest_figure(forest.forest_frame(record), tmp_path / "forest.png")
    assert path.is_file() and path.stat().st_size > 10_000


def test_the_sensitivity_table_lists_the_verdicts_an_alternative_changes(inputs, tmp_path):
    rec = verdicts.write_verdicts(inputs, tmp_path / "v.json")
    sens = rec["sensitivity"]
    assert set(sens) == {name for name, _ in PLAN.sensitivity}
    n = len(sensitivity.flat(rec))
    assert all(s["judged"] == n for s in sens.values())
    # any alternative list judges every comparison again
    strict = replace(inputs, plan=replace(inputs.plan, sensitivity=(("t", (("interval", "t"),)),)))
    alts = sensitivity.alternatives(strict, strict.plan, verdicts.verdict_record)
    assert set(alts) == {"t"} and sensitivity.sensitivity_record(rec, alts)["t"]["judged"] == n
    frame = sensitivity.sensitivity_frame(rec)
    moved = sum(s["changed"] for s in sens.values())
    assert (len(frame) > 0) == (moved > 0)
    for r in frame.itertuples():
        assert r.group in {k.split("/")[0] for k in rec} | {"regime"}
    table = sensitivity.sensitivity_table(rec)
    assert f"of {n} verdicts" in table.markup


def test_the_plan_page_values_name_the_plan_and_its_commit():
    v = plan_page.plan_values(PLAN.__class__(history=({"version": 1, "date": "d",
                                                       "sha256": "ab" * 32,
                                                       "commit": "0123456789abcdef"},)))
    assert v["plan_version"] == "1" and v["plan_commit"] == "0123456789"
    assert v["plan_yardstick"] == "+0.016" and v["plan_paper_srcc"] == "0.891"
    assert "pending" not in plan_page.plan_values(PLAN)["plan_commit"]


def test_whole_regime_shows_its_rows_verdicts_and_change(whole_inputs, tmp_path):
    rec = verdicts.verdict_record(whole_inputs)
    g = rec["livec_whole"]["gate_vs_baseline"]["test_srcc"]
    assert g["n"] == 5 and g["family"] == "livec_whole · test_srcc" and g["reading"]
    change = rec["regime"]["livec_whole"]["gate_whole_vs_frozen"]["test_srcc"]
    assert change["n"] == 5 and change["reading"] is None  # a regime, not a method's gain
    f = forest.forest_frame(rec)
    assert "whole upstream" in set(f["regime"])
    assert "whole upstream" not in forest.scope_sentence(f).split("Not measured yet")[-1]
    values = whole_views.status_values(whole_inputs)
    assert values["whole_status"].startswith("20 current rows, 0 stale, 1 still to run")
    assert values["whole_splits"] == "5" and values["whole_crop"] == "224"
    assert "gate vs baseline" in whole_views.answer_table(rec).markup
    assert whole_views.change_table(rec, whole_inputs).frame.shape[0] == 4
    assert whole_views.curves(whole_inputs, tmp_path).is_file()
    json.dumps(rec, allow_nan=False)


def test_whole_regime_says_not_measured_yet_before_its_rows(inputs, record, tmp_path):
    values = whole_views.status_values(inputs)
    assert values["whole_status"].startswith("not measured yet")
    assert record["livec_whole"] == {} and record["regime"]["livec_whole"] == {}
    assert "not measured yet" in whole_views.answer_table(record).markup
    assert whole_views.curves(inputs, tmp_path).is_file()  # a note in the figure's place


@pytest.mark.parametrize("reading, text", [("ruled out", "the paper's gain ruled out"),
                                           ("consistent", "consistent with")])
def test_reading_phrases(reading, text):
    assert text in forest.READS[reading]
