"""benchmarks/: the GPU check's CPU-safe paths, the pipeline-stage timer's parsers, the loader
benchmark at toy size. The measurements themselves are not asserted (machine-dependent)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    """Import ``benchmarks/<name>.py`` (scripts import their siblings by name)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # worker processes unpickle its functions by module name
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(BENCH))


def run_main(mod, argv: list[str], monkeypatch, capsys) -> dict:
    monkeypatch.setattr(sys, "argv", [mod.__file__, *argv])
    mod.main()
    return json.loads(capsys.readouterr().out)


def test_gpu_check_without_cuda_measures_nothing(monkeypatch, capsys):
    gpu = load("gpu_check")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = run_main(gpu, [], monkeypatch, capsys)
    assert out["status"] == "no CUDA: nothing measured"
    assert "training" not in out and "predict" not in out


def test_gpu_check_dry_run_exercises_every_path(monkeypatch, capsys):
    gpu = load("gpu_check")
    out = run_main(gpu, ["--dry-run", "--images", "24"], monkeypatch, capsys)
    assert out["dry_run"] and out["synthetic_set"]["images"] == 24
    configs = {r["config"]: r for r in out["training"]}
    assert set(configs) == {"vit_b8", "cnn_b16", "cnn_b16_channels_last"}
    for r in configs.values():
        assert "error" not in r, r
        assert r["images_per_s"] > 0 and r["epoch_images"] > 0
    assert configs["vit_b8"]["channels_last"] == "n/a (ViT)"
    assert configs["cnn_b16_channels_last"]["channels_last"] is True
    assert out["predict"]["ratio_predict_over_backbone"] > 0, out["predict"]


LOG = """\
1700000100.0 + dvc repro
1700000101.0 Running stage 'world':
1700000101.1 > qfm world
1700000131.0 Updating lock file 'dvc.lock'
1700000131.5 Stage 'upstream' didn't change, skipping
1700000132.0 Running stage 'train@baseline-s0':
1700000150.0 Updating lock file 'dvc.lock'
1700000150.0 Running stage 'book':
1700000155.0 ERROR: failed to reproduce 'book': exit 1
1700000156.0 dvc repro exited 255
"""


def test_pipeline_stages_parses_a_timestamped_log():
    ps = load("pipeline_stages")
    out = ps.parse_log(LOG.splitlines() + ["no timestamp: ignored"])
    rows = {s["stage"]: s for s in out["stages"]}
    assert list(rows) == ["world", "upstream", "train@baseline-s0", "book"]
    assert rows["world"]["seconds"] == pytest.approx(30.0)
    assert rows["upstream"] == {"stage": "upstream", "seconds": 0.0, "status": "unchanged"}
    assert rows["train@baseline-s0"]["seconds"] == pytest.approx(18.0)
    assert rows["book"]["status"] == "failed" and rows["book"]["seconds"] == pytest.approx(5.0)
    assert out["total_seconds"] == pytest.approx(56.0)
    iso = ps.parse_log(["2024-01-01T00:00:00 Running stage 'a':",
                        "2024-01-01T00:01:30 Updating lock file 'dvc.lock'"])
    assert iso["stages"][0]["seconds"] == pytest.approx(90.0)


def test_pipeline_stages_reads_papermill_durations(tmp_path):
    ps = load("pipeline_stages")
    (tmp_path / "train").mkdir()
    for rel, dur in (("train/baseline-s0.ipynb", 12.5), ("figures.ipynb", 3.0)):
        (tmp_path / rel).write_text(json.dumps({"metadata": {"papermill": {"duration": dur}}}))
    (tmp_path / "unexecuted.ipynb").write_text(json.dumps({"metadata": {}}))
    out = ps.from_notebooks(tmp_path)
    assert {s["stage"]: s["seconds"] for s in out["stages"]} == {"figures": 3.0,
                                                                "train@baseline-s0": 12.5}
    assert out["total_seconds"] == pytest.approx(15.5)


@pytest.mark.slow
def test_loader_throughput_toy(monkeypatch, capsys):
    lt = load("loader_throughput")
    out = run_main(lt, ["--images", "8", "--rounds", "1", "--batch", "4", "--backbone",
                        "test_vit", "--img-size", "32", "--workers", "0"], monkeypatch, capsys)
    assert set(out["loaders"]) == {"no_cache", "cache_png", "cache_jpg"}
    assert out["ratio_with_cache"] > 0 and out["model_images_per_s"] > 0
    assert out["torch_threads_model"] >= 1 and len(out["load_average_before"]) == 3


def test_baseline_select_trains_each_candidate_and_chooses_on_validation(
        tiny_home, tmp_path, make_cfg, monkeypatch, capsys):
    import yaml

    from qfm.config import to_dict
    from qfm.upstream import pretrain

    cfg = make_cfg(shared={"smoke": True})  # one short epoch per run
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(to_dict(cfg)))
    up = tmp_path / "up.safetensors"
    pretrain(cfg.model, cfg.upstream, up, steps=2, progress=False)
    sel = load("baseline_select")
    monkeypatch.setattr(sys, "argv", [sel.__file__, "--params", str(params), "--upstream",
                                      str(up), "--seeds", "0", "--out", str(tmp_path / "s.json"),
                                      "--candidate", "lr_hi", "train.lr=0.01",
                                      "--candidate", "lr_lo", "train.lr=0.0001"])
    sel.main()
    out = json.loads((tmp_path / "s.json").read_text())
    assert [c["name"] for c in out["candidates"]] == ["lr_hi", "lr_lo"]
    assert all(len(c["runs"]) == 1 and -1 <= c["val_srcc_mean"] <= 1 for c in out["candidates"])
    best = max(out["candidates"], key=lambda c: c["val_srcc_mean"])
    assert out["chosen"] == best["name"] and out["budget"]["train.batch_size"] == 8
    assert "chosen: " in capsys.readouterr().out


def test_baseline_select_without_upstream_is_one_line(tmp_path, monkeypatch):
    sel = load("baseline_select")
    monkeypatch.setattr(sys, "argv", [sel.__file__, "--upstream", str(tmp_path / "no.pt")])
    with pytest.raises(SystemExit, match="no.pt: no upstream checkpoint"):
        sel.main()


def test_run_all_marks_a_result_measured_on_a_loaded_machine(tmp_path, monkeypatch, capsys):
    run_all = load("run_all")
    (tmp_path / "fake.py").write_text("print('{\"value\": 1}')\n")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all.os, "getloadavg", lambda: (7.5, 6.0, 5.0))
    monkeypatch.setattr(run_all.os, "sched_getaffinity", lambda pid: {0, 1})
    r = run_all.run_one("fake", [], 1, tmp_path / "out")
    stored = json.loads((tmp_path / "out" / "fake.json").read_text())
    assert r["_run"]["loaded"] is True and stored["_run"]["loaded"] is True
    assert "load 7.5 on 2 cores" in capsys.readouterr().err
    monkeypatch.setattr(run_all.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert run_all.run_one("fake", [], 1, tmp_path / "out")["_run"]["loaded"] is False


def test_analyze_memory_benchmark_runs_small(monkeypatch, capsys):
    out = run_main(load("analyze_memory"), ["--n", "300", "--width", "16"], monkeypatch, capsys)
    assert out["pairs"] == 300 * 299 // 2 and out["peak_rss_gib"] > 0
    assert set(out["share"]) == {"upstream", "selected"}
