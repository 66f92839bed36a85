"""qfm.performance: absent results read "not measured yet"; targets are judged both ways."""

import json
import math

from qfm import performance as perf


def test_nothing_measured(tmp_path):
    results = perf.load_results(tmp_path / "absent")
    assert set(results) == set(perf.BENCHMARKS) and not any(results.values())
    table = perf.ratio_table(results)
    assert table["ratio"].isna().all() and table["met"].isna().all()
    assert (table["conditions"] == perf.NOT_MEASURED).all()
    values = perf.summary_values(results)
    assert values["step_cost"] == perf.NOT_MEASURED == values["load_range"]
    assert perf.stage_table(None).empty and perf.gpu_table(None).empty


def test_ratios_against_targets(tmp_path):
    run = {"machine": {"load_average_before": [4.5, 4, 4], "load_average_after": [6.0, 5, 5],
                       "cpu_cores": 2, "omp_num_threads": "1", "gpu": None}}
    files = {
        "step_cost": {"ratio_median": 1.6, "backbone": "m", "img_size": 96, "batch": 32, **run},
        "loader_throughput": {"ratio_with_cache": 3.0, "ratio_without_cache": 1.0,
                              "workers": 1, **run},
        "gpu_check": {"status": "no CUDA: nothing measured"},
        "predict_throughput": "{not json",
    }
    for name, obj in files.items():
        (tmp_path / f"{name}.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))
    results = perf.load_results(tmp_path)
    assert results["predict_throughput"] is None  # unreadable = not measured
    t = perf.ratio_table(results).set_index("ratio_name")
    assert t.loc["QFM-IQM step ÷ baseline step", "met"] is False  # 1.6 > at most 1.5
    assert t.loc["loader ÷ model, resize cache", "met"] is True  # 3.0 ≥ 2
    assert t.loc["loader ÷ model, no cache", "met"] is False
    assert math.isnan(t.loc["GPU: predict ÷ backbone", "ratio"])
    assert t.loc["GPU: predict ÷ backbone", "conditions"] == "no CUDA: nothing measured"
    v = perf.summary_values(results)
    assert v["step_cost"] == "1.60" and v["loader_cache"] == "3.00"
    assert v["load_range"] == "4.5–6.0" and v["cpu_cores"] == "2" and v["omp_threads"] == "1"
    dry = {"dry_run": True, "predict": {"ratio_predict_over_backbone": 0.1},
           "training": [{"config": "vit_b8", "images_per_s": 5.0},
                        {"config": "cnn", "error": "boom"}]}
    t = perf.ratio_table({"gpu_check": dry}).set_index("ratio_name")
    assert math.isnan(t.loc["GPU: predict ÷ backbone", "ratio"])  # a dry run is no measurement
    g = perf.gpu_table(dry)
    assert list(g["config"]) == ["vit_b8", "cnn (boom)"]
