"""The whole-upstream regime's tuning as the LIVEC page shows it (qfm.report.whole_views):
the runs that match params.yaml's grid and cap, the point each variant runs at, a student at
its teacher's point, the curves; and the sentence on runs that kept their last epoch."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from qfm.report import whole_views

GRID = [1.0e-4, 3.0e-4, 1.0e-3]


def _tuning_tree(tmp_path, rows):
    (tmp_path / "tune").mkdir(parents=True)
    for name, lr, cap, val in rows:
        curve = [0.5, val, val - 0.01]
        (tmp_path / "tune" / f"{name}.json").write_text(json.dumps({
            "lr_backbone": lr, "max_epochs": cap, "val_srcc": val, "best_epoch": 1,
            "epochs": 3, "val_curve": curve, "run": {"seconds": 60.0}}))
    return tmp_path


def _inputs(whole_inputs, tmp_path, chosen=None, knobs=None):
    raw = json.loads(json.dumps(whole_inputs.raw))
    raw["whole"]["tune"] = {"epochs": 20, "student": "teacher", "grid": {"lr_backbone": GRID}}
    root = _tuning_tree(tmp_path, [
        ("baseline_p0_t100", 1.0e-4, 20, 0.80), ("baseline_p1_t100", 3.0e-4, 20, 0.84),
        ("baseline_p2_t100", 1.0e-3, 20, 0.82), ("gate_p0_t100", 1.0e-4, 20, 0.79),
        ("gate_p1_t100", 3.0e-5, 12, 0.99),  # an older run (another grid, another cap): hidden
        ("gate_qfm_p2_t100", 3.0e-4, 20, 0.99)])  # not the grid's point 2: hidden
    if chosen:
        (root / "tune.json").write_text(json.dumps({"chosen": chosen}))
    index = {**(whole_inputs.whole_index or {}), "knobs": knobs or {}}
    return dataclasses.replace(whole_inputs, raw=raw, measured_whole=root, whole_index=index)


def test_tuning_shows_the_runs_of_the_grid_and_cap_only(whole_inputs, tmp_path):
    inputs = _inputs(whole_inputs, tmp_path)
    rows = whole_views.tuning_rows(inputs)
    assert sorted(zip(rows["variant"], rows["point"])) == [("baseline", 0), ("baseline", 1),
                                                           ("baseline", 2), ("gate", 0)]
    table = whole_views.tuning_table(inputs)
    assert "0.840 (best epoch 2 of 3; cap 20)" in table.markup
    assert "0.99" not in table.markup and "not chosen yet" in table.markup
    # before tune.json (every variant tuned), the index names each variant's point as it lands
    early = _inputs(whole_inputs, tmp_path / "early", knobs={"baseline": {"lr_backbone": 3e-4}})
    frame = whole_views.tuning_table(early).frame
    assert frame.set_index("variant").loc["baseline", "runs at"] == "lr_backbone 0.0003"
    assert whole_views.tuning_figure(inputs, tmp_path / "fig").is_file()


def test_a_student_runs_at_its_teachers_point(whole_inputs, tmp_path):
    pick = {"lr_backbone": 3.0e-4}
    inputs = _inputs(whole_inputs, tmp_path, {"baseline": pick, "gate_qfm": pick, "full": pick})
    frame = whole_views.tuning_table(inputs).frame
    full = frame[frame["variant"] == "full"].iloc[0]
    assert full["runs at"] == "lr_backbone 0.0003 (its teacher's point)"
    assert frame[frame["variant"] == "baseline"].iloc[0]["runs at"] == "lr_backbone 0.0003"


def test_before_any_tuning_run_the_table_and_figure_say_so(inputs, tmp_path):
    empty = dataclasses.replace(inputs, measured_whole=tmp_path / "none")
    assert "not measured yet" in whole_views.tuning_table(empty).markup
    assert whole_views.tuning_figure(empty, tmp_path).is_file()


def test_the_state_says_how_many_runs_kept_their_last_epoch(whole_inputs):
    rows = whole_inputs.whole_rows.copy()
    rows["best_is_last"] = False
    fine = dataclasses.replace(whole_inputs, whole_rows=rows)
    assert whole_views.status_values(fine)["whole_cap"].startswith("no run of 20")
    rows["best_is_last"] = [True] * 2 + [False] * (len(rows) - 2)
    capped = dataclasses.replace(whole_inputs, whole_rows=pd.DataFrame(rows))
    assert whole_views.status_values(capped)["whole_cap"].startswith("2 of 20 runs kept")


def test_the_default_rule_table_marks_the_chosen_regime(inputs, tmp_path):
    from qfm.report import livec_views

    assert "not measured yet" in livec_views.default_rule_table(inputs).markup
    rule = {"regime": "frozen", "common_splits": [0, 1, 2, 3, 4], "rule": "the rule",
            "table": [{"regime": "frozen", "variant": "full", "splits": 10, "val_srcc_own": 0.83,
                       "competes": True, "val_srcc_common": 0.82},
                      {"regime": "whole upstream", "variant": None, "splits": 0,
                       "val_srcc_own": None, "competes": False, "val_srcc_common": None}]}
    frame = livec_views.default_rule_table(dataclasses.replace(inputs, default_rule=rule)).frame
    assert list(frame["default"]) == ["chosen", "too few splits"]
    assert list(frame["mean val SRCC (5 shared splits)"]) == ["0.820", "–"]
