"""qfm.report.pipeline_stages: seconds per DVC stage, what each expensive stage's time buys
(counts from params.yaml), whether the measured stages are the current pipeline's, the page's
table read from the files, and the stage figure."""

import matplotlib.pyplot as plt
import yaml

from qfm.report import performance as perf
from qfm.report import pipeline_stages as ps

PIPELINE = {"stages": [{"stage": "world", "seconds": 60.0, "status": "ran"},
                       {"stage": "tune", "seconds": 240.0, "status": "ran"},
                       {"stage": "study@main", "seconds": 1100.0, "status": "ran"},
                       {"stage": "book", "seconds": 5.0, "status": "ran"}],
            "total_seconds": 1410.0,
            "run": {"started": "2026-12-01T21:28:34+00:00", "load_average_start": [3.75, 3, 3],
                    "load_average_end": [1.3, 1, 1]},
            "machine": {"cpu_cores": 2, "finished": "2026-12-02T08:00:00+00:00",
                        "load_average_before": [0.1, 0, 0]}}
PARAMS = {"study": {"seeds": list(range(10)), "tune": {"seeds": [100, 101], "lr": {}},
                    "groups": {"main": {"variants": ["a", "b"]}}}}


def test_the_pipeline_total_its_date_its_load_and_what_each_expensive_stage_costs():
    v = perf.summary_values({"pipeline_stages": PIPELINE})
    assert v["pipeline_total_minutes"] == "23"  # the sum of the stages (1405 s)
    assert v["pipeline_date"] == "2026-12-01"  # when the pipeline ran, not when parsed
    assert v["pipeline_load"] == "3.8 / 2 loaded"  # its own loads, not the parser's
    costs = ps.stage_costs(ps.stage_table(PIPELINE), PARAMS)
    assert costs[0] == "" and costs[3] == ""  # cheap stages: no note
    assert costs[1] == "grid search on validation over lr, 2 tuning seeds each"
    assert costs[2].startswith("2 variants × 10 seeds = 20 rows; runs that would train")
    table = ps.stage_shown(PIPELINE, PARAMS, "extra words")
    assert table.frame["stage"].tolist()[-1] == "total"
    assert table.frame["minutes"].tolist()[-1] == "23.4"
    assert "2026-12-01" in table.markup and "3.8 / 2 loaded" in table.markup
    assert "extra words" in table.markup
    assert perf.machine_table({"pipeline_stages": PIPELINE}).set_index(
        "benchmark").at["pipeline_stages", "seconds"] == 1410.0


def test_stage_note_names_stages_gone_and_stages_not_measured(tmp_path):
    dvc = tmp_path / "dvc.yaml"
    dvc.write_text("stages:\n  world: {cmd: a}\n  livec: {cmd: b}\n")
    note = ps.stage_note(ps.stage_table(PIPELINE), dvc)
    assert "the stages book, study, tune left the pipeline" in note
    assert note.endswith("not in this measurement: livec.")


def test_the_page_table_reads_params_and_dvc_yaml(tmp_path):
    params, dvc = tmp_path / "params.yaml", tmp_path / "dvc.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    dvc.write_text("stages:\n  world: {cmd: a}\n  tune: {cmd: b}\n  study: {cmd: c}\n"
                   "  book: {cmd: d}\n")
    table = ps.page_stage_table(PIPELINE, params, dvc)
    assert table.markup == ps.stage_shown(PIPELINE, PARAMS, ps.stage_note(
        ps.stage_table(PIPELINE), dvc)).markup
    assert "Every stage measured is a stage of the current pipeline." in table.markup
    assert "2 variants × 10 seeds = 20 rows" in table.markup  # the counts of params.yaml


def test_the_stage_figure_draws_minutes_per_stage_or_says_not_measured(tmp_path):
    fig = ps.stage_figure(PIPELINE, tmp_path / "stages.png")
    try:
        assert (tmp_path / "stages.png").is_file()
        ax = fig.axes[0]
        assert [round(p.get_width(), 3) for p in ax.patches] == [1.0, 4.0, 18.333, 0.083]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["world", "tune", "study@main",
                                                                 "book"]
    finally:
        plt.close(fig)
    empty = ps.stage_figure(None, tmp_path / "none.png")
    try:
        assert [t.get_text() for t in empty.axes[0].texts] == [perf.NOT_MEASURED]
    finally:
        plt.close(empty)
