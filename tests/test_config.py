import pytest

from qfm.config import ConfigError, RunConfig, TrainConfig, from_dict, load_params, override


def test_defaults_round_trip():
    cfg = from_dict(RunConfig, {"train": {"lr": 1e-3, "epochs": 3}})
    assert cfg.train.lr == 1e-3 and cfg.train.epochs == 3
    assert cfg.model.gate is False


def test_unknown_key_rejected_with_its_name():
    with pytest.raises(ConfigError, match=r"^train\.lrr: unknown key"):
        from_dict(RunConfig, {"train": {"lrr": 1e-3}})


def test_unknown_section_rejected():
    with pytest.raises(ConfigError, match="trian"):
        from_dict(RunConfig, {"trian": {}})


def test_wrong_type_rejected():
    with pytest.raises(ConfigError, match=r"train\.epochs: expected int, got str"):
        from_dict(RunConfig, {"train": {"epochs": "ten"}})
    with pytest.raises(ConfigError, match=r"train\.epochs: expected int, got bool"):
        from_dict(TrainConfig, {"epochs": True}, "train")


def test_int_accepted_for_float():
    assert from_dict(TrainConfig, {"lr": 1}).lr == 1.0


def test_override_dotted():
    cfg = override(RunConfig(), {"qfm.tau": 0.1, "model.gate": True})
    assert cfg.qfm.tau == 0.1 and cfg.model.gate
    with pytest.raises(ConfigError, match="qfm.taux"):
        override(RunConfig(), {"qfm.taux": 0.1})


def test_load_params_names_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  batch_size: 8\n  bogus: 1\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: train\.bogus: unknown key"):
        load_params(p)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_repo_params_yaml_loads():
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "params.yaml"
    if not p.is_file():
        pytest.skip("no params.yaml yet")
    load_params(p, sections=_stage_sections(p))


def _stage_sections(p):
    import yaml

    return set(yaml.safe_load(p.read_text()))
