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


def test_repo_params_yaml_has_only_component_stage_and_helper_sections():
    """Every top-level section is a config component, a dvc.yaml stage or a helper section."""
    from pathlib import Path

    import yaml

    from test_pipeline import HELPER_SECTIONS

    root = Path(__file__).resolve().parents[2]
    stages = set(yaml.safe_load((root / "dvc.yaml").read_text())["stages"])
    load_params(root / "params.yaml", sections=stages | HELPER_SECTIONS)


def test_unknown_top_level_section_rejected_by_name(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  batch_size: 8\ntrian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: trian: unknown section"):
        load_params(p)


def test_pipeline_sections_are_known_without_reading_dvc_yaml(tmp_path):
    # a stage's own section and the pipeline's helpers: qfm.config's list, no dvc.yaml needed
    p = tmp_path / "params.yaml"
    p.write_text("train: {epochs: 3}\nfigures: {seed: 0}\nvariants: {}\n")
    assert not (tmp_path / "dvc.yaml").exists()
    assert load_params(p).train.epochs == 3
    p.write_text("train: {epochs: 3}\nfigurez: {seed: 0}\n")
    with pytest.raises(ConfigError, match="figurez: unknown section"):
        load_params(p)


def test_yaml_syntax_error_is_one_line_naming_file_and_line(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  epochs: 3\n  lr: [0.1\nmodel:\n  gate: true\n")
    with pytest.raises(ConfigError) as err:
        load_params(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}: not valid YAML") and "line " in msg and "\n" not in msg


def test_cli_reports_a_broken_params_file_in_one_line(tmp_path, capsys):
    from qfm.cli import main

    p = tmp_path / "params.yaml"
    p.write_text("train: {epochs: 3\n")
    assert main(["train", "--params", str(p), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qfm: error: ") and "not valid YAML" in err[0]
