import json

import numpy as np
import pytest

from qfm.core.engine import lr_factor, param_groups
from qfm.runs.train import fit
from qfm.runs.upstream import pretrain


def test_lr_schedule_warmup_then_steps():
    f = [lr_factor(s, 10, 2.0, 3, 0.1) for s in range(0, 100)]
    assert f[0] == pytest.approx(0.05) and f[19] == pytest.approx(1.0)
    assert f[29] == 1.0 and f[30] == pytest.approx(0.1) and f[60] == pytest.approx(0.01)


def test_no_weight_decay_on_norms_biases_queries(make_cfg):
    from qfm.models import build_model

    model = build_model(make_cfg().model)
    decay, no_decay = param_groups(model, 0.05)
    assert no_decay["weight_decay"] == 0
    ids = {id(p) for p in no_decay["params"]}
    assert id(model.decoder.queries) in ids
    assert all(p.ndim > 1 for p in decay["params"])


def test_smoke_pretrain_train_evaluate_end_to_end(tiny_home, tmp_path, make_cfg):
    cfg = make_cfg(model={"weights": "upstream"})
    up = tmp_path / "up.safetensors"
    meta = pretrain(cfg.model, cfg.upstream, up, steps=5, progress=False)
    assert up.is_file() and 0 <= meta["heldout_accuracy"] <= 1
    metrics = fit(cfg, tmp_path / "run", upstream=up, progress=False)
    assert (tmp_path / "run" / "model.safetensors").is_file()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test"]["n"] == metrics["test"]["n"] > 0
    assert np.isfinite(saved["test"]["srcc"])
    assert saved["images"]["train"] > 0 and len(saved["history"]) == 2
    sidecar = json.loads((tmp_path / "run" / "model.json").read_text())
    assert sidecar["label_scale"]["scale"] == pytest.approx(100.0)


def test_same_seed_same_metrics_on_cpu(tiny_home, tmp_path, make_cfg, capfd):
    cfg = make_cfg(train={"epochs": 1})
    a = fit(cfg, tmp_path / "a", progress=False)
    b = fit(cfg, tmp_path / "b", progress=False)
    assert a["test"] == b["test"]
    out = capfd.readouterr()
    assert out.err == "" and out.out == ""  # progress=False: no bars, not even val/test's


def test_resume_with_other_config_refused(tiny_home, tmp_path, make_cfg):
    fit(make_cfg(train={"epochs": 1}), tmp_path / "r", progress=False)
    with pytest.raises(RuntimeError, match="another config"):
        fit(make_cfg(train={"epochs": 1, "lr": 0.5}), tmp_path / "r", progress=False)


def test_evaluate_checkpoint_matches_fit(tiny_home, tmp_path, make_cfg):
    from qfm.runs.evaluate import evaluate_checkpoint

    cfg = make_cfg(train={"epochs": 1})
    m = fit(cfg, tmp_path / "e", progress=False)
    again = evaluate_checkpoint(tmp_path / "e" / "model.safetensors", cfg, "test")
    assert again["srcc"] == pytest.approx(m["test"]["srcc"], abs=1e-6)


def test_config_hash_ignores_how_a_run_executes_not_what_it_computes():
    from qfm.config import RunConfig, override
    from qfm.runs.train import config_hash

    base = RunConfig()
    same = override(base, {"train.workers": 8, "train.device": "cpu"})
    assert config_hash(same) == config_hash(base)  # a run resumes on another machine
    assert config_hash(override(base, {"train.lr": 5e-4})) != config_hash(base)
    assert config_hash(override(base, {"train.split": 1})) != config_hash(base)
