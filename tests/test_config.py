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


def test_unknown_params_section_rejected_when_sections_are_given(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  epochs: 1\nfigures: {}\nfigurs: {}\n")
    assert load_params(p).train.epochs == 1  # other stages' sections: ignored by default
    with pytest.raises(ConfigError, match=r"params\.yaml: figurs: unknown section"):
        load_params(p, sections={"figures"})


def test_repo_params_yaml_has_only_component_stage_and_helper_sections():
    """Every top-level section is a config component, a dvc.yaml stage or a helper section."""
    from pathlib import Path

    import yaml

    from test_pipeline import HELPER_SECTIONS

    root = Path(__file__).resolve().parents[1]
    stages = set(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    load_params(root / "params.yaml", sections=stages | HELPER_SECTIONS)
