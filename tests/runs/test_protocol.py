import json

from pathlib import Path

import pytest

from qfm.runs.protocol import cross_dataset, parse_splits, run_protocol


def test_parse_splits():
    assert parse_splits("0-3") == [0, 1, 2, 3]
    assert parse_splits("0,2, official") == [0, 2, -1]
    with pytest.raises(ValueError, match="no split"):
        parse_splits(" ")


def test_protocol_two_splits_and_cross(tiny_home, tmp_path, make_cfg):
    cfg = make_cfg(train={"epochs": 1})
    res = run_protocol(cfg, "world", [0, 1], tmp_path / "runs", progress=False)
    assert [r["split"] for r in res["splits"]] == [0, 1]
    srcc = [r["srcc"] for r in res["splits"]]
    s = res["summary"]["srcc"]
    assert s["n"] == 2 and s["median"] == pytest.approx(sum(srcc) / 2)
    assert set(res["summary"]) >= {"srcc", "plcc", "plcc_logistic", "krcc"}
    saved = json.loads((tmp_path / "runs" / "world" / "protocol.json").read_text())
    assert saved["summary"]["srcc"]["n"] == 2
    ck = tmp_path / "runs" / "world" / "split_0" / "model.safetensors"
    cross = cross_dataset(ck, "world", cfg)
    from qfm import paths
    from qfm.data.table import read_table

    assert cross["n"] == len(read_table(paths.world_table()))  # every image of B
    assert cross["test_dataset"] == "world"


def test_cross_applies_the_koniq_resize_that_training_and_predict_apply(real_data, tmp_path,
                                                                          make_cfg, monkeypatch):
    import qfm.data.dataset as dataset
    from qfm.core.checkpoint import save_tensors
    from qfm.config import to_dict
    from qfm.models import build_model

    cfg = make_cfg()
    ck = tmp_path / "m.safetensors"
    save_tensors(build_model(cfg.model).state_dict(), ck, {"config": to_dict(cfg),
                                                            "dataset": "kadid10k", "split": 0})
    sizes = []
    real = dataset.load_rgb
    monkeypatch.setattr(dataset, "load_rgb", lambda p: sizes.append(real(p).size) or real(p))
    r = cross_dataset(ck, "koniq10k", cfg)
    assert r["n"] == 24 and set(sizes) == {(512, 384)}  # not the 1024x768 originals


def test_protocol_with_distillation_trains_teacher_and_student(tiny_home, tmp_path, make_cfg):
    cfg = make_cfg(train={"epochs": 1, "max_images": 24}, model={"gate": True},
                   qfm={"enabled": True},
                   distill={"enabled": True, "views": 1, "unlabelled": "world"})
    res = run_protocol(cfg, "world", [1], tmp_path / "runs", progress=False)
    run = tmp_path / "runs" / "world" / "split_1"
    assert (run / "teacher" / "model.safetensors").is_file()
    table = json.loads((run / "expanded" / "pseudo_labels.json").read_text())
    assert table["views"] > 0 and table["split"] == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert "kd" in metrics["history"][0] and "teacher" in metrics
    assert res["splits"][0]["teacher_srcc"] == metrics["teacher"]["test"]["srcc"]


def test_protocol_stage_not_run_without_a_data_set_and_checks_its_keys(tmp_path):
    import yaml

    from qfm.config import ConfigError
    from qfm.runs.protocol import protocol_stage

    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    assert raw["protocol"]["dataset"] == "none"  # the embedded default trains no protocol
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw))
    res = protocol_stage(p, tmp_path / "out")
    assert res["status"] == "not run" and (tmp_path / "out" / "protocol.json").is_file()
    raw["protocol"].update(dataset="koniq10k", profile="gpu")
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="protocol.profile: expected 'paper' or 'params'"):
        protocol_stage(p, tmp_path / "out")
    del raw["protocol"]["weights"]
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="protocol.weights: missing"):
        protocol_stage(p, tmp_path / "out")


def test_protocol_stage_checks_the_paper_weights_before_training_and_not_when_not_run(tmp_path):
    import yaml

    from qfm.config import ConfigError
    from qfm.runs.protocol import protocol_stage

    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    assert not Path(raw["protocol"]["weights"]).is_absolute()  # repo-relative, pasteable
    raw["protocol"]["weights"] = str(tmp_path / "absent.safetensors")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(raw))
    assert protocol_stage(p, tmp_path / "out")["status"] == "not run"  # never looks for it
    raw["protocol"]["dataset"] = "koniq10k"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="protocol.weights: .*absent.safetensors: file not found"):
        protocol_stage(p, tmp_path / "out")
    assert not (tmp_path / "out" / "runs").exists()  # nothing trained
    raw["protocol"].update(profile="params", variants=["baseline", "nope"])
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        protocol_stage(p, tmp_path / "out")
    assert not (tmp_path / "out" / "runs").exists()  # every variant checked first


def test_variant_overrides_are_the_profile_then_the_variant():
    from qfm.config import ConfigError
    from qfm.paper import PAPER_PROFILE
    from qfm.runs.protocol import variant_overrides

    variants = {"full": {"model": {"gate": True}, "qfm": {"enabled": True},
                         "distill": {"enabled": True}, "teacher": "gate_qfm"}, "baseline": {}}
    full = variant_overrides(variants, "full", "paper", "w.safetensors")
    assert full["model.weights"] == "w.safetensors" and "teacher" not in full
    assert full["model.backbone"] == PAPER_PROFILE["model.backbone"]
    assert full["model.gate"] is True and full["distill.enabled"] is True
    assert variant_overrides(variants, "baseline", "params") == {}
    assert variant_overrides(variants, "baseline")["model.weights"] == \
        PAPER_PROFILE["model.weights"]
    with pytest.raises(ConfigError, match="unknown variant"):
        variant_overrides(variants, "gate")
