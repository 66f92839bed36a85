"""qfm.report.performance (and performance_predict): absent results read "not measured yet";
targets are judged both ways; every value is shown with its load (never withheld); the study's
own step ratio is reported apart from the image model's; predict's target is judged per runtime
(torch, ONNX Runtime), and a result from before ONNX Runtime was timed reads "not measured yet"
where it lacks a key; the tables stay narrow; the ratio figure is drawn from the same table
(bars only where measured)."""

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from qfm.report import performance as perf
from qfm.report import performance_predict as pp
from qfm.report import pipeline_stages as stages

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_nothing_measured(tmp_path):
    results = perf.load_results(tmp_path / "absent")
    assert set(results) == set(perf.BENCHMARKS) and not any(results.values())
    table = perf.ratio_table(results)
    assert table["ratio"].isna().all() and table["met"].isna().all()
    cpu = table["benchmark"] != "gpu_check"
    assert (table["conditions"][cpu] == perf.NOT_MEASURED).all()
    assert (table["conditions"][~cpu] == perf.NOT_RUN).all()
    values = perf.summary_values(results)
    assert values["step_cached"] == perf.NOT_MEASURED == values["load_range"]
    assert values["step_cached_verdict"] == perf.NOT_MEASURED
    assert values["pipeline_total_minutes"] == perf.NOT_MEASURED
    predict = pp.predict_values(results)
    assert set(predict.values()) == {perf.NOT_MEASURED}  # every one, none fails
    assert stages.stage_table(None).empty
    assert perf.NOT_MEASURED in stages.stage_shown(None).markup
    assert perf.NOT_RUN in perf.gpu_table(None).markup


RUN = {"machine": {"load_average_before": [4.5, 4, 4], "load_average_after": [6.0, 5, 5],
                   "cpu_cores": 2, "omp_num_threads": "1", "gpu": None}}


def test_ratios_against_targets(tmp_path):
    files = {
        "step_cost_cached": {"ratio_median": 2.9, "backbone": "tf_efficientnet_lite0",
                             "img_size": 128, "cached_width": 1024, "grid": 3, "batch": 32,
                             **RUN},
        "step_cost": {"ratio_median": 1.1, "backbone": "tf_efficientnet_lite0",
                      "img_size": 128, "batch": 32, **RUN},
        "loader_throughput": {"ratio_with_cache": 3.0, "ratio_without_cache": 1.0,
                              "workers": 1, **RUN},
        "gpu_check": {"status": "no CUDA: nothing measured"},
        "predict_throughput": "{not json",
    }
    for name, obj in files.items():
        (tmp_path / f"{name}.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))
    results = perf.load_results(tmp_path)
    assert results["predict_throughput"] is None  # unreadable = not measured
    t = perf.ratio_table(results).set_index("key")
    assert t.loc["step_cached", "met"] is True  # 2.9 ≤ 3, the design's floor
    assert t.loc["step_image", "met"] is True
    assert "study" in t.loc["step_cached", "ratio_name"]
    assert "image" in t.loc["step_image", "ratio_name"]
    assert t.loc["step_cached", "conditions"] == "Lite0 tokens (10 × 1024), batch 32"
    assert t.loc["step_image", "conditions"] == "Lite0 128 px, batch 32"
    assert t.loc["loader_cache", "met"] is True and t.loc["loader_no_cache", "met"] is False
    assert math.isnan(t.loc["gpu_predict", "ratio"])
    assert t.loc["gpu_predict", "conditions"] == "not run yet (no CUDA: nothing measured)"
    v = perf.summary_values(results)
    assert (v["step_cached"], v["step_cached_verdict"]) == ("2.90", "met")  # floor: ≤ 3
    assert (v["step_image"], v["step_image_verdict"]) == ("1.10", "met")
    assert v["cpu_default_model"] == "tf_efficientnet_lite0 at 128 px"  # both name it
    files["step_cost"]["backbone"] = "test_vit"
    other = {**results, "step_cost": files["step_cost"]}
    assert perf.summary_values(other)["cpu_default_model"] == (
        "step_cost_cached: tf_efficientnet_lite0 at 128 px; step_cost: test_vit at 128 px")
    assert v["load_range"] == "6.0–6.0" and v["cpu_cores"] == "2" and v["omp_threads"] == "1"
    shown = perf.ratio_shown(results).frame.set_index("ratio")
    assert shown.loc[t.loc["step_cached", "ratio_name"], "verdict"] == "met"
    assert shown.loc[t.loc["step_cached", "ratio_name"], "target"] == "≤ 3"
    assert shown.loc[t.loc["step_image", "ratio_name"], "target"] == "≤ 1.5"


def test_the_ratio_figure_draws_a_bar_per_measured_ratio_and_every_target(tmp_path):
    results = {"step_cost": {"ratio_median": 1.1, "backbone": "m", "img_size": 128, "batch": 8,
                             **RUN},
               "step_cost_cached": {"ratio_median": 3.4, "backbone": "m", "batch": 8, **RUN}}
    fig = perf.ratio_figure(results, tmp_path / "figs" / "ratios.png")
    try:
        assert (tmp_path / "figs" / "ratios.png").stat().st_size > 0
        ax = fig.axes[0]
        bars = [p.get_width() for p in ax.patches]
        assert sorted(bars) == [1.1, 3.4]  # the two measured ratios; the others: no bar
        colours = {round(p.get_width(), 1): p.get_facecolor()[:3] for p in ax.patches}
        assert colours[1.1][1] > colours[1.1][0] and colours[3.4][0] > colours[3.4][1]  # met/missed
        assert len(ax.get_yticklabels()) == len(perf.RATIOS)  # every target has a row
        texts = [t.get_text() for t in ax.texts]
        assert "3.40" in texts and any(t.startswith(perf.NOT_MEASURED) for t in texts)
    finally:
        plt.close(fig)


GPU_RESULT = {"dry_run": False,
              "machine": {"gpu": "NVIDIA H100 80GB HBM3", "cpu_cores": 16,
                          "load_average_before": [0.5, 0.4, 0.3]},
              "predict": {"ratio_predict_over_backbone": 0.93},
              "training": [{"config": "vit_b16", "batch": 16, "compile": True,
                            "images_per_s": 900.0, "fed_share": 0.97},
                           {"config": "cnn", "batch": 64, "error": "boom"}]}


def test_gpu_check_reads_not_run_yet_until_it_ran_on_a_gpu():
    dry = {"dry_run": True, "predict": {"ratio_predict_over_backbone": 0.1},
           "training": [{"config": "vit_b8", "images_per_s": 5.0}]}
    for gpu in (None, {"status": "no CUDA: nothing measured"}, dry):
        results = {"gpu_check": gpu}
        v = perf.summary_values(results)
        assert v["gpu_status"] == perf.NOT_RUN and v["gpu_predict"] == perf.NOT_RUN
        row = perf.ratio_table(results).set_index("benchmark").loc["gpu_check"]
        assert row["conditions"].startswith(perf.NOT_RUN) and math.isnan(row["ratio"])
        table = perf.gpu_table(gpu)  # a dry run's CPU numbers are not shown as GPU numbers
        assert table.frame["note"].tolist() == [perf.NOT_RUN]
        m = perf.machine_table(results).set_index("benchmark").loc["gpu_check"]
        assert m["measured"] == perf.NOT_RUN
    v = perf.summary_values({"gpu_check": GPU_RESULT})
    assert v["gpu_status"] == "NVIDIA H100 80GB HBM3" and v["gpu_predict"] == "0.93"
    assert v["gpu_predict_verdict"] == "met"
    frame = perf.gpu_table(GPU_RESULT).frame
    assert frame["config"].tolist() == ["vit_b16 (batch 16, compile)", "cnn (batch 64, boom)"]
    assert len(frame.columns) <= 6 and frame["loader keeps up"].tolist() == ["97%", "–"]


LOADED = {"benchmark": "predict_throughput",
          "profiles": {"paper": {"predict_images_per_s": 0.13, "backbone_images_per_s": 0.13,
                                 "ratio_predict_over_backbone": 0.985},
                       "shipped": {"predict_fast_images_per_s": 9.1,
                                   "predict_plain_images_per_s": 4.4,
                                   "backbone_fast_images_per_s": 9.6, "img_size": 500,
                                   "speedup_channels_last": 2.07,
                                   "backbone_gflops_per_image": 4.1,
                                   "predict_gflop_per_s": 37.3, "roofline":
                                       {"conv3x3_gflop_per_s": 170.0},
                                   "predict_share_of_conv_rate": 0.219,
                                   "ratio_predict_over_backbone": 0.948}},
          "machine": {"load_average_before": [5.26, 4.8, 4.9], "cpu_cores": 2,
                      "load_average_after": [5.12, 5.3, 5.3]}}


def test_a_loaded_run_is_flagged_in_its_table_and_its_values_still_shown():
    idle = json.loads(json.dumps(LOADED))
    idle["machine"].update(load_average_before=[0.4, 0.5, 0.5], load_average_after=[1.1, 1, 1])
    assert perf.machine_load(LOADED) == (5.26, 2) and perf.is_loaded(LOADED)
    assert not perf.is_loaded(idle) and not perf.is_loaded(None)
    assert perf.load_text(LOADED) == "5.3 / 2 loaded" and perf.load_text(idle) == "1.1 / 2"
    v = perf.summary_values({"predict_throughput": LOADED})
    v |= pp.predict_values({"predict_throughput": LOADED})
    assert v["predict_paper_predict_ips"] == "0.13"  # shown, loaded or not
    assert v["predict_paper"] == "0.98" and v["predict_paper_verdict"] == "met"
    assert (v["predict_shipped"], v["predict_shipped_verdict"]) == ("0.95", "met")  # ≥ 0.9
    assert (v["predict_shipped_ips"], v["predict_shipped_plain_ips"]) == ("9.1", "4.4")
    assert (v["predict_shipped_speedup"], v["predict_shipped_roof_share"]) == ("2.07", "22")
    assert not any("withheld" in text for text in v.values())
    shown = perf.ratio_shown({"predict_throughput": LOADED})
    assert "5.3 / 2 loaded" in shown.frame["load / cores"].tolist()
    assert shown.markup.count(perf.LOAD_NOTE.split(";")[0]) == 1  # flagged once, as a note
    m = perf.machine_table({"predict_throughput": LOADED, "step_cost": idle})
    loads = m.set_index("benchmark")["load / cores"]
    assert (loads["predict_throughput"], loads["step_cost"]) == ("5.3 / 2 loaded", "1.1 / 2")
    assert m.set_index("benchmark").at["step_cost_cached", "measured"] == perf.NOT_MEASURED


def shipped_result(**shipped) -> dict:
    """A predict_throughput result whose shipped entry is ``shipped`` (idle machine)."""
    return {"predict_throughput": {
        "profiles": {"shipped": {"backbone": "tf_efficientnet_lite0", "img_size": 500,
                                 "crops_per_image": 1, "target_images_per_s": 7.0,
                                 "goal_images_per_s": 10.0, **shipped}},
        "machine": {"load_average_before": [0.9, 1, 1], "load_average_after": [1.0, 1, 1],
                    "cpu_cores": 2}}}


BEFORE_ONNX = {"predict_fast_images_per_s": 6.38, "backbone_fast_images_per_s": 6.83,
               "ratio_predict_over_backbone": 0.982, "predict_workers": 1}
WITH_ONNX = {**BEFORE_ONNX, "predict_fast_images_per_s": 4.7, "ratio_predict_over_backbone": 0.93,
             "predict_fast_w0_images_per_s": 6.4, "speedup_w0_over_workers": 1.362,
             "faster_torch_workers": 0, "predict_onnx_images_per_s": 19.4,
             "model_onnx_images_per_s": 20.1, "ratio_predict_onnx_over_model_onnx": 0.965,
             "speedup_onnx_over_channels_last": 4.128, "speedup_onnx_over_torch_w0": 3.031,
             "onnx": {"onnxruntime": "1.32.0", "session_threads": 2, "spin": False}}


def test_predict_on_both_runtimes_says_which_one_meets_the_target():
    results = shipped_result(**WITH_ONNX)
    v = perf.summary_values(results) | pp.predict_values(results)
    assert (v["predict_shipped_onnx"], v["predict_shipped_onnx_verdict"]) == ("0.96", "met")
    assert (v["predict_shipped"], v["predict_shipped_verdict"]) == ("0.93", "met")
    assert (v["predict_shipped_onnx_ips"], v["predict_shipped_onnx_model_ips"]) == ("19.4", "20.1")
    assert (v["predict_shipped_onnx_speedup"], v["predict_shipped_onnx_over_w0"]) == \
        ("4.13", "3.03")
    assert v["predict_shipped_onnx_threads"] == "2"
    assert (v["predict_shipped_w0_ips"], v["predict_shipped_w0_speedup"]) == ("6.4", "1.36")
    assert v["predict_shipped_faster_policy"].startswith("decoding in the main process")
    assert v["predict_shipped_onnx_target_verdict"] == "met"  # 19.4 ≥ 7 and 0.965 ≥ 0.9
    assert v["predict_shipped_torch_target_verdict"] == "missed"  # 4.7 < 7
    assert v["predict_shipped_meets_target"] == "ONNX Runtime"
    assert v["predict_shipped_meets_goal"] == "ONNX Runtime"  # 19.4 ≥ 10
    slow = shipped_result(**{**WITH_ONNX, "ratio_predict_onnx_over_model_onnx": 0.5})
    assert pp.predict_values(slow)["predict_shipped_meets_target"] == "none"  # ratio missed
    both = shipped_result(**{**WITH_ONNX, "predict_fast_images_per_s": 8.0,
                             "faster_torch_workers": 1})
    b = pp.predict_values(both)
    assert (b["predict_shipped_meets_target"], b["predict_shipped_meets_goal"]) == \
        ("torch and ONNX Runtime", "ONNX Runtime")
    assert b["predict_shipped_faster_policy"] == "1 decoding worker (the default)"
    rows = perf.ratio_table(results).set_index("key")
    assert "ONNX Runtime" in rows.at["predict_shipped_onnx", "ratio_name"]
    assert "torch" in rows.at["predict_shipped", "ratio_name"]
    assert rows.at["predict_shipped_onnx", "met"] is True


def test_a_result_from_before_onnx_reads_not_measured_yet_where_it_lacks_a_key():
    results = shipped_result(**BEFORE_ONNX)
    v = perf.summary_values(results) | pp.predict_values(results)
    for key in ("predict_shipped_onnx", "predict_shipped_onnx_verdict", "predict_shipped_onnx_ips",
                "predict_shipped_onnx_model_ips", "predict_shipped_onnx_speedup",
                "predict_shipped_onnx_threads", "predict_shipped_w0_ips",
                "predict_shipped_faster_policy", "predict_shipped_onnx_target_verdict"):
        assert v[key] == perf.NOT_MEASURED, key
    assert (v["predict_shipped_ips"], v["predict_shipped"]) == ("6.38", "0.98")
    assert v["predict_shipped_torch_target_verdict"] == "missed"  # 6.38 < 7
    assert v["predict_shipped_meets_target"] == f"none (ONNX Runtime: {perf.NOT_MEASURED})"
    fast = shipped_result(**{**BEFORE_ONNX, "predict_fast_images_per_s": 9.1})
    assert pp.predict_values(fast)["predict_shipped_meets_target"] == \
        f"torch (ONNX Runtime: {perf.NOT_MEASURED})"
    row = perf.ratio_table(results).set_index("key").loc["predict_shipped_onnx"]
    assert math.isnan(row["ratio"]) and row["conditions"] == perf.NOT_MEASURED
    assert row["met"] is None
    stored = json.loads(json.dumps(results))  # "onnx": "not timed" (--no-onnx) is no dict
    stored["predict_throughput"]["profiles"]["shipped"]["onnx"] = "not timed"
    assert pp.predict_values(stored)["predict_shipped_onnx_threads"] == perf.NOT_MEASURED


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no committed benchmark results")
def test_the_committed_results_make_narrow_tables_without_withheld_values():
    results = perf.load_results(RESULTS)
    tables = [perf.ratio_shown(results),
              stages.stage_shown(results["pipeline_stages"]),
              perf.gpu_table(results["gpu_check"]), perf.machine_shown(results)]
    for table in tables:
        assert "withheld" not in table.markup.lower()
        assert len(table.frame.columns) <= 6  # fits the page at 1280 px
    values = perf.summary_values(results) | pp.predict_values(results)
    assert not any("withheld" in text for text in values.values())
    assert values["step_cached_verdict"] in ("met", "missed")  # the study's own step ratio
    assert values["cpu_default_model"].startswith("tf_efficientnet_lite0 at ")


def test_cache_values_say_the_speedups_and_the_changed_choices():
    from qfm.report.performance_predict import cache_values

    assert set(cache_values({}).values()) == {"not measured yet"}
    results = {"cache_throughput": {"caches": {
        "tokens": {"side": 500, "speedup_channels_last": 2.7531, "max_abs_diff_relative": 1.5e-6},
        "tail": {"side": 384, "speedup_channels_last": 1.18, "max_abs_diff_relative": 2.2e-6}}},
        "tuning_stability": {"largest_change_by_variant": {"baseline": 0.0, "gate_qfm": 0.01,
                                                           "full": 0.007},
                             "changed_choices": {"gate_qfm": {}, "full": {}, "sam": {}}}}
    v = cache_values(results)
    assert (v["cache_tokens_speedup"], v["cache_tail_speedup"]) == ("2.75", "1.18")
    assert v["cache_tokens_diff"] == "2e-06" and v["cache_tokens_side"] == "500"
    assert v["stability_changed"] == "2 of 3 tuned variants (full, gate_qfm)"


def test_the_second_repro_reads_idle_or_names_what_it_would_run():
    text = lambda r: perf.summary_values({"pipeline_stages": r})["pipeline_second"]  # noqa
    assert text({"stages": []}) == "not measured yet"
    assert text({"stages": [], "second_repro": {"idle": True, "out_of_date": []}}) == \
        "idle, nothing left to run"
    assert text({"stages": [], "second_repro": {"idle": False,
                                                "out_of_date": ["book", "figures"]}}) == \
        "would run book, figures again"
