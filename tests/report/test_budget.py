"""The pipeline's time budget: before/after per stage, merged stages, skipped stages, verdict."""

from __future__ import annotations

import math

from qfm.report import budget

BEFORE = {"machine": {"started": "2026-12-04T09:14:03", "seconds": 4600.0},
          "stages": [{"stage": "features", "seconds": 100.0, "status": "ran"},
                     {"stage": "features_tail", "seconds": 60.0, "status": "ran"},
                     {"stage": "study@main", "seconds": 1500.0, "status": "ran"},
                     {"stage": "study@finetune", "seconds": 900.0, "status": "ran"},
                     {"stage": "gone", "seconds": 30.0, "status": "ran"}]}
NOW = {"machine": {"started": "2026-12-04T16:00:00", "seconds": 1700.0},
       "stages": [{"stage": "features", "seconds": 90.0, "status": "ran"},
                  {"stage": "study@main", "seconds": 600.0, "status": "ran"},
                  {"stage": "world_finetune", "seconds": 0.0, "status": "unchanged"}]}


def test_merged_stages_compare_under_the_new_name_and_a_stage_gone_saves_all_it_cost():
    df = budget.before_after(BEFORE, NOW).set_index("stage")
    assert df.at["world_finetune", "minutes before"] == (60.0 + 900.0) / 60
    assert df.at["world_finetune", "minutes now"] == 0.0
    assert df.at["world_finetune", "status now"] == "unchanged"
    assert df.at["study@main", "saved"] == 15.0
    assert math.isnan(df.at["gone", "minutes now"]) and df.at["gone", "saved"] == 0.5
    assert df.at["gone", "status now"] == "not in the pipeline"


def test_values_give_both_totals_the_verdict_and_the_skipped_stages():
    v = budget.values(BEFORE, NOW)
    assert v["budget_before"] == f"{2590 / 60:.1f}" and v["budget_now"] == f"{690 / 60:.1f}"
    assert v["budget_verdict"] == "met" and v["budget_skipped"] == "world_finetune"
    assert v["budget_wall"] == f"{1700 / 60:.1f}" and v["budget_target"] == "30"
    slow = {"stages": [{"stage": "tune", "seconds": 1900.0, "status": "ran"}]}
    assert budget.values(BEFORE, slow)["budget_verdict"] == "missed"
    # the stages fit, but the whole run (copy and DVC's checks too) did not: missed
    late = {**NOW, "machine": {"seconds": 1810.0}}
    assert budget.values(BEFORE, late)["budget_verdict"] == "missed"
    assert budget.values(None, None)["budget_verdict"] == budget.NOT_MEASURED


def test_the_table_has_a_total_row_or_says_not_measured():
    assert budget.NOT_MEASURED in budget.shown(None, NOW).markup
    markup = budget.shown(BEFORE, NOW).markup
    assert "total" in markup and "2026-12-04" in markup and "unchanged" in markup
