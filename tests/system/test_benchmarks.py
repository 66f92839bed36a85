"""benchmarks/: one machine record and one way to store results for all of them, the GPU
check's CPU-safe paths (the pipeline-stage timer: test_benchmark_pipeline_stages.py), the
loader benchmark at toy size, the caches' layouts, the tuning-stability comparison,
the shipped model's interleaved rounds and per-runtime verdicts. The measurements themselves
are not asserted (machine-dependent)."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))  # the scripts' shared modules (benchmarks/harness.py, shipped.py)


SHARED = {"harness", "shipped"}  # imported by the scripts; no script, no result of their own


def load(name: str):
    """Import ``benchmarks/<name>.py`` (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # worker processes unpickle its functions by module name
    spec.loader.exec_module(mod)
    return mod


def test_every_benchmark_stores_through_the_shared_record_and_imports_no_sibling():
    scripts = sorted(p for p in BENCH.glob("*.py") if p.stem not in {"run_all", *SHARED})
    siblings = {p.stem for p in BENCH.glob("*.py")} - SHARED
    assert len(scripts) >= 6
    for path in scripts:
        tree = ast.parse(path.read_text())
        imported = {n.module.split(".")[0] for n in ast.walk(tree)
                    if isinstance(n, ast.ImportFrom) and n.module} | \
            {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
        assert not imported & siblings, f"{path.name} imports a sibling script"
        calls = {n.func.id for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert {"Record", "add_out_argument"} <= calls, f"{path.name}: not through harness"


def test_record_is_the_schema_the_performance_page_reads(tmp_path, capsys):
    from harness import Record

    from qfm import paths
    from qfm.report import performance

    result = Record("step_cost").finish({"ratio_median": 1.2}, tmp_path / "step_cost.json")
    assert json.loads(capsys.readouterr().out) == result
    stored = json.loads((tmp_path / "step_cost.json").read_text())
    assert stored["benchmark"] == "step_cost" and stored["ratio_median"] == 1.2
    m = stored["machine"]
    assert m["cpu_cores"] >= 1 and len(m["load_average_before"]) == 3
    assert m["seconds"] >= 0 and m["started"] <= m["finished"]
    row = performance.machine_table(performance.load_results(tmp_path)).set_index("benchmark")
    load = max(m["load_average_before"][0], m["load_average_after"][0])
    assert row.at["step_cost", "load / cores"].startswith(f"{load:.1f} / {m['cpu_cores']}")
    assert row.at["step_cost", "measured"] == m["finished"][:16].replace("T", " ")
    Record("x").finish({}, "-")  # printed only
    assert not list(tmp_path.glob("x*")) and not list(paths.home().glob("-"))


def run_main(mod, argv: list[str], monkeypatch, capsys) -> dict:
    assert "--out" in argv, "a test never writes into benchmarks/results (tracked files)"
    monkeypatch.setattr(sys, "argv", [mod.__file__, *argv])
    mod.main()
    return json.loads(capsys.readouterr().out)


def test_gpu_check_without_cuda_measures_nothing(tmp_path, monkeypatch, capsys):
    gpu = load("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = run_main(gpu, ["--out", str(tmp_path / "g.json")], monkeypatch, capsys)
    assert out["status"] == "no CUDA: nothing measured"
    assert "training" not in out and "predict" not in out
    assert not (tmp_path / "g.json").exists()  # an earlier GPU result stays


def test_gpu_check_dry_run_exercises_every_path(tmp_path, monkeypatch, capsys):
    gpu = load("gpu_check")
    out = run_main(gpu, ["--dry-run", "--images", "24", "--out", str(tmp_path / "g.json")],
                   monkeypatch, capsys)
    assert not (tmp_path / "g.json").exists()  # a dry run is no measurement
    assert out["dry_run"] and out["synthetic_set"]["images"] == 24
    configs = {r["config"]: r for r in out["training"]}
    assert set(configs) == {"vit_b8", "cnn_b16", "cnn_b16_channels_last"}
    for r in configs.values():
        assert "error" not in r, r
        assert r["images_per_s"] > 0 and r["epoch_images"] > 0
    assert configs["vit_b8"]["channels_last"] == "n/a (ViT)"
    assert configs["cnn_b16_channels_last"]["channels_last"] is True
    assert out["predict"]["ratio_predict_over_backbone"] > 0, out["predict"]


@pytest.mark.slow
def test_loader_throughput_toy(tmp_path, monkeypatch, capsys):
    lt = load("loader_throughput")
    out = run_main(lt, ["--images", "8", "--rounds", "1", "--batch", "4", "--backbone",
                        "test_vit", "--img-size", "32", "--workers", "0",
                        "--out", str(tmp_path / "lt.json")], monkeypatch, capsys)
    assert set(out["loaders"]) == {"no_cache", "cache_png", "cache_jpg"}
    assert out["ratio_with_cache"] > 0 and out["model_images_per_s"] > 0
    assert out["torch_threads_model"] >= 1 and len(out["machine"]["load_average_before"]) == 3
    assert json.loads((tmp_path / "lt.json").read_text()) == out


def test_cache_throughput_times_both_layouts_and_finds_equal_outputs(tmp_path, monkeypatch,
                                                                    capsys):
    ct = load("cache_throughput")
    out = run_main(ct, ["--images", "2", "--rounds", "1", "--out", str(tmp_path / "ct.json")],
                   monkeypatch, capsys)
    assert set(out["caches"]) == {"tokens", "tail"}
    for cache in out["caches"].values():
        assert set(cache["images_per_s"]) == {"contiguous", "channels_last"}
        assert cache["speedup_channels_last"] > 0 and cache["max_abs_diff_relative"] < 1e-4
    assert json.loads((tmp_path / "ct.json").read_text()) == out


def test_tuning_stability_compares_trials_and_names_changed_choices(monkeypatch):
    ts = load("tuning_stability")

    def tuned(srcc: dict, chosen: dict) -> dict:
        return {"chosen": chosen, "trials": [
            {"variant": v, "knob": k, k: x, "val_srcc": s} for (v, k, x), s in srcc.items()]}

    before = tuned({("gate_qfm", "qfm.rho", 0.0125): 0.838, ("gate_qfm", "qfm.rho", 0.05): 0.822,
                    ("baseline", "train.lr", 5e-4): 0.8216},
                   {"gate_qfm": {"qfm.rho": 0.0125}, "baseline": {"train.lr": 5e-4}})
    after = tuned({("gate_qfm", "qfm.rho", 0.0125): 0.824, ("gate_qfm", "qfm.rho", 0.05): 0.826,
                   ("baseline", "train.lr", 5e-4): 0.8216},
                  {"gate_qfm": {"qfm.rho": 0.05}, "baseline": {"train.lr": 5e-4}})
    out = ts.compare(before, after)
    assert out["changed_choices"] == {"gate_qfm": {"contiguous": {"qfm.rho": 0.0125},
                                                   "channels_last": {"qfm.rho": 0.05}}}
    assert out["largest_change_by_variant"]["baseline"] == 0.0
    assert abs(out["largest_change_by_variant"]["gate_qfm"] - 0.014) < 1e-12
    assert {r["trial"] for r in out["trials"]} == {"gate_qfm qfm.rho=0.0125",
                                                  "gate_qfm qfm.rho=0.05",
                                                  "baseline train.lr=0.0005"}
    monkeypatch.setattr(ts.paths, "find_dataset", lambda *a, **k: None)
    with pytest.raises(SystemExit, match="no CLIVE copy"):
        ts.main(["--out", "-"])


def test_analyze_memory_benchmark_runs_small(tmp_path, monkeypatch, capsys):
    out = run_main(load("analyze_memory"), ["--n", "300", "--width", "16", "--out",
                                            str(tmp_path / "m.json")], monkeypatch, capsys)
    assert out["pairs"] == 300 * 299 // 2 and out["peak_rss_gib"] > 0
    assert set(out["share"]) == {"upstream", "selected"}


CPU_DEFAULT_RESULTS = {"step_cost": (), "step_cost_cached": ()}  # predict: the shipped model


def test_the_stored_predict_result_times_the_shipped_model_at_its_own_size():
    path = BENCH / "results" / "predict_throughput.json"
    if not path.is_file():
        pytest.skip(f"{path.name} not measured yet")
    shipped = json.loads(path.read_text())["profiles"]["shipped"]
    assert shipped["checkpoint"] == "default.safetensors"
    assert shipped["img_size"] == shipped["short_side"] == 500 and shipped["crops_per_image"] == 1
    assert shipped["photo_size"] == [500, 500]  # CLIVE's size


@pytest.mark.parametrize("name", sorted(CPU_DEFAULT_RESULTS))
def test_every_stored_cpu_default_result_times_the_lite0_upstream_at_the_study_size(name):
    from harness import cpu_default

    path = BENCH / "results" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path.name} not measured yet")
    result = json.loads(path.read_text())
    for key in CPU_DEFAULT_RESULTS[name]:
        result = result[key]
    model = cpu_default().model
    assert model.backbone == "tf_efficientnet_lite0"  # the CPU default the book names
    assert (result["backbone"], result["img_size"], result["weights"]) == \
        (model.backbone, model.img_size, model.weights)


def test_the_harness_cpu_default_is_params_yaml():
    from harness import cpu_default

    from qfm.config import read_params, to_dict

    raw = read_params(BENCH.parent / "params.yaml")
    model = to_dict(cpu_default())["model"]
    assert {k: model[k] for k in ("backbone", "img_size", "weights", "tokens", "grid")} == \
        {k: raw["model"][k] for k in ("backbone", "img_size", "weights", "tokens", "grid")}


def test_step_cost_cached_times_head_only_models_on_the_upstreams_token_width(
        tmp_path, monkeypatch, capsys):
    out = run_main(load("step_cost"), ["--cached", "--repeats", "2", "--warmup", "0",
                                       "--batch", "8", "--out", str(tmp_path / "s.json")],
                   monkeypatch, capsys)
    assert out["benchmark"] == "step_cost_cached" and out["regime"].startswith("cached")
    assert out["backbone"] == "tf_efficientnet_lite0" and out["cached_width"] == 1024
    assert out["ratio_median"] > 0 and out["batch"] == 8 and out["target"] == 3.0  # the floor
    assert "/" not in out["machine"]["command"].split()[0]  # no machine path recorded


def test_run_all_runs_the_cached_step_cost_through_step_cost_py(tmp_path, monkeypatch):
    run_all = load("run_all")
    seen = []
    monkeypatch.setattr(run_all.subprocess, "run",
                        lambda cmd, **kw: seen.append((cmd, kw["env"])) or
                        type("Done", (), {"returncode": 0})())
    assert run_all.run_one("step_cost_cached", [], 1, tmp_path)
    cmd, env = seen[0]
    assert Path(cmd[1]).name == "step_cost.py" and "--cached" in cmd
    assert cmd[cmd.index("--out") + 1] == str(tmp_path / "step_cost_cached.json")
    assert env["OMP_NUM_THREADS"] == "1"


def test_the_shipped_sides_alternate_and_ratios_are_medians_of_rounds():
    from shipped import interleave, per_round

    calls = []
    clock = {"a": iter([9.0, 1.0, 2.0, 4.0]), "b": iter([9.0, 2.0, 2.0, 2.0])}

    def side(name):
        return lambda: calls.append(name) or next(clock[name])

    warm, times = interleave({"a": side("a"), "b": side("b")}, repeats=3)
    assert calls == ["a", "b"] * 4  # warm-up, then three rounds, alternating
    assert warm == {"a": 9.0, "b": 9.0} and times == {"a": [1.0, 2.0, 4.0], "b": [2.0, 2.0, 2.0]}
    assert per_round(times, "a", "b") == 1.0  # a's rate ÷ b's per round: 2, 1, 0.5


def test_predict_throughput_says_which_runtime_meets_the_target():
    pt = load("predict_throughput")
    res = {"predict_fast_images_per_s": 4.7, "ratio_predict_over_backbone": 0.95,
           "predict_onnx_images_per_s": 12.0, "ratio_predict_onnx_over_model_onnx": 0.92}
    assert pt.verdicts(res) == {"meets_target_by_runtime": {"torch": False, "onnx": True},
                                "meets_goal_by_runtime": {"torch": False, "onnx": True}}
    res["ratio_predict_onnx_over_model_onnx"] = 0.5  # fast, but predict loses half the model
    assert pt.verdicts(res)["meets_target_by_runtime"]["onnx"] is False
    torch_only = {"predict_fast_images_per_s": 8.0, "ratio_predict_over_backbone": 0.95}
    assert pt.verdicts(torch_only) == {"meets_target_by_runtime": {"torch": True},
                                       "meets_goal_by_runtime": {"torch": False}}
