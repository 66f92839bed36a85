"""``qfm evaluate``: a checkpoint is scored on its own run's data set and split."""

import json

import pytest

from qfm.cli import main
from qfm.runs.train import fit
from qfm.runs.evaluate import evaluate_checkpoint


def test_a_split_1_checkpoint_is_scored_on_split_1_whatever_params_say(
        tiny_home, tmp_path, make_cfg, capsys, monkeypatch):
    m = fit(make_cfg(train={"epochs": 1, "split": 1}), tmp_path / "r", progress=False)
    ck = tmp_path / "r" / "model.safetensors"
    params_split_0 = make_cfg(train={"split": 0, "test_crops": 1})
    got = evaluate_checkpoint(ck, params_split_0, "test")
    assert got["split"] == 1 and got["dataset"] == "world" and got["n"] == m["test"]["n"]
    assert got["srcc"] == pytest.approx(m["test"]["srcc"], abs=1e-6)  # its own test crops
    other = evaluate_checkpoint(ck, params_split_0, "test", split=0)  # asked for explicitly
    assert other["split"] == 0
    monkeypatch.chdir(tmp_path)  # no params.yaml: built-in defaults (split 0)
    sets = ["--set", "model.backbone=test_vit"]
    assert main(["evaluate", "--checkpoint", str(ck), *sets]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == 1 and printed["srcc"] == pytest.approx(got["srcc"])
