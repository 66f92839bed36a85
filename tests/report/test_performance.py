"""qfm.report.performance: absent results read "not measured yet"; targets are judged both ways."""

import json
import math

from qfm.report import performance as perf


def test_nothing_measured(tmp_path):
    results = perf.load_results(tmp_path / "absent")
    assert set(results) == set(perf.BENCHMARKS) and not any(results.values())
    table = perf.ratio_table(results)
    assert table["ratio"].isna().all() and table["met"].isna().all()
    cpu = table["benchmark"] != "gpu_check"
    assert (table["conditions"][cpu] == perf.NOT_MEASURED).all()
    assert (table["conditions"][~cpu] == perf.NOT_RUN).all()
    values = perf.summary_values(results)
    assert values["step_cost"] == perf.NOT_MEASURED == values["load_range"]
    assert perf.stage_table(None).empty
    assert perf.gpu_table(None)["config"].tolist() == [perf.NOT_RUN]


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
    assert t.loc["GPU: predict ÷ backbone", "conditions"] == \
        "not run yet (no CUDA: nothing measured)"
    v = perf.summary_values(results)
    assert v["step_cost"].startswith("1.60 (loaded machine: load 6.0 on 2 cores")
    assert v["loader_cache"].startswith("3.00 ")
    assert v["load_range"] == "4.5–6.0" and v["cpu_cores"] == "2" and v["omp_threads"] == "1"
    dry = {"dry_run": True, "predict": {"ratio_predict_over_backbone": 0.1},
           "training": [{"config": "vit_b8", "images_per_s": 5.0},
                        {"config": "cnn", "error": "boom"}]}
    t = perf.ratio_table({"gpu_check": dry}).set_index("ratio_name")
    assert math.isnan(t.loc["GPU: predict ÷ backbone", "ratio"])  # a dry run is no measurement
    g = perf.gpu_table({**dry, "dry_run": False, "machine": {"gpu": "NVIDIA H100"}})
    assert list(g["config"]) == ["vit_b8", "cnn (boom)"]


GPU_RESULT = {"dry_run": False,
              "machine": {"gpu": "NVIDIA H100 80GB HBM3", "cpu_cores": 16,
                          "load_average_before": [0.5, 0.4, 0.3]},
              "predict": {"ratio_predict_over_backbone": 0.93},
              "training": [{"config": "vit_b16", "images_per_s": 900.0}]}


def test_gpu_check_reads_not_run_yet_until_it_ran_on_a_gpu(tmp_path):
    dry = {"dry_run": True, "predict": {"ratio_predict_over_backbone": 0.1},
           "training": [{"config": "vit_b8", "images_per_s": 5.0}]}
    for gpu in (None, {"status": "no CUDA: nothing measured"}, dry):
        results = {"gpu_check": gpu}
        v = perf.summary_values(results)
        assert v["gpu_status"] == perf.NOT_RUN and v["gpu_predict"] == perf.NOT_RUN
        row = perf.ratio_table(results).set_index("benchmark").loc["gpu_check"]
        assert row["conditions"].startswith(perf.NOT_RUN) and math.isnan(row["ratio"])
        table = perf.gpu_table(gpu)  # a dry run's CPU numbers are not shown as GPU numbers
        assert table["config"].tolist() == [perf.NOT_RUN]
        m = perf.machine_table(results).set_index("benchmark").loc["gpu_check"]
        assert m["measured"] == perf.NOT_RUN
    v = perf.summary_values({"gpu_check": GPU_RESULT})
    assert v["gpu_status"] == "NVIDIA H100 80GB HBM3" and v["gpu_predict"] == "0.93"
    assert perf.gpu_table(GPU_RESULT)["config"].tolist() == ["vit_b16"]


LOADED = {"benchmark": "predict_throughput", "cpu_cores": 2, "load_average_1min": 5.24,
          "profiles": {"paper": {"predict_images_per_s": 0.13, "backbone_images_per_s": 0.13,
                                 "ratio_predict_over_backbone": 0.985},
                       "default": {"predict_images_per_s": 24.4,
                                   "ratio_predict_over_backbone": 0.809}},
          "machine": {"load_average_before": [5.26, 4.8, 4.9], "cpu_cores": 2,
                      "load_average_after": [5.12, 5.3, 5.3]}}


def test_a_benchmark_run_on_a_loaded_machine_is_flagged_not_quoted():
    idle = json.loads(json.dumps(LOADED))
    idle["load_average_1min"] = 0.4
    idle["machine"].update(load_average_before=[0.4, 0.5, 0.5], load_average_after=[1.1, 1, 1])
    assert perf.machine_load(LOADED) == (5.26, 2) and perf.is_loaded(LOADED)
    assert not perf.is_loaded(idle) and not perf.is_loaded(None)
    v = perf.summary_values({"predict_throughput": LOADED})
    assert "0.13" not in v["predict_paper_predict_ips"]  # an absolute rate is withheld
    assert "withheld" in v["predict_paper_predict_ips"]
    assert v["predict_paper"].startswith("0.98") and "load 5.3 on 2 cores" in v["predict_paper"]
    assert perf.summary_values({"predict_throughput": idle})["predict_paper_predict_ips"] == "0.13"
    t = perf.ratio_table({"predict_throughput": LOADED}).set_index("ratio_name")
    row = t.loc["predict ÷ backbone, paper profile"]
    assert row["loaded"] and "loaded machine" in row["conditions"]
    m = perf.machine_table({"predict_throughput": LOADED, "step_cost": idle})
    assert m.set_index("benchmark")["loaded"].to_dict()["predict_throughput"] is True
    assert m.set_index("benchmark")["loaded"].to_dict()["step_cost"] is False
