"""Resume and determinism: an interrupted run, restarted with the same command, ends exactly
where an uninterrupted one does (CPU)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import qfm.core.engine as engine
from qfm.core.checkpoint import load_state
from qfm.runs.train import fit

EPOCHS = 3  # tiny world: 54 training images, batch 8 → 6 steps an epoch
_REFERENCE: dict = {}


def comparable(metrics: dict) -> dict:
    """Metrics without wall-clock times and the config hash."""
    m = json.loads(json.dumps(metrics))
    m.pop("train_seconds"), m.pop("config_hash")
    for h in m["history"]:
        h.pop("seconds")
    return m


def weights(run: Path) -> dict:
    return load_file(str(run / "model.safetensors"))


def assert_same_run(run: Path, metrics: dict, reference: tuple[dict, dict]) -> None:
    ref_metrics, ref_weights = reference
    assert comparable(metrics) == ref_metrics
    assert comparable(json.loads((run / "metrics.json").read_text())) == ref_metrics
    got = weights(run)
    assert got.keys() == ref_weights.keys()
    assert all(torch.equal(got[k], ref_weights[k]) for k in got)


@pytest.fixture
def reference(tiny_home, tmp_path_factory, make_cfg):
    """An uninterrupted 3-epoch run (computed once per session)."""
    if not _REFERENCE:
        run = tmp_path_factory.mktemp("reference")
        m = fit(make_cfg(train={"epochs": EPOCHS}), run, progress=False)
        _REFERENCE.update(metrics=comparable(m), weights=weights(run), run=run)
    return _REFERENCE["metrics"], _REFERENCE["weights"]


class Interrupted(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way may swallow it."""


def test_interrupted_mid_epoch_then_resumed_equals_uninterrupted(reference, tmp_path,
                                                                 make_cfg, monkeypatch):
    cfg, run = make_cfg(train={"epochs": EPOCHS}), tmp_path / "run"
    steps = {"n": 0}
    sync = engine.sync_gradients

    def dies_at_step_9(params, world):  # epoch 2, step 3 of 6
        steps["n"] += 1
        if steps["n"] == 9:
            raise Interrupted
        sync(params, world)

    monkeypatch.setattr(engine, "sync_gradients", dies_at_step_9)
    with pytest.raises(Interrupted):
        fit(cfg, run, progress=False)
    monkeypatch.setattr(engine, "sync_gradients", sync)
    assert load_state(run / "state.safetensors")[1]["epoch"] == 0
    assert not (run / "metrics.json").exists()
    assert_same_run(run, fit(cfg, run, progress=False), reference)
    sidecar = json.loads((run / "model.json").read_text())
    assert {"config", "dataset", "split", "label_scale", "metrics", "code",
            "sha256"} <= set(sidecar)


def test_kill_9_then_same_command_resumes(reference, tiny_home, tmp_path, make_cfg):
    run = tmp_path / "run"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n"
              "from conftest import tiny_config\nfrom qfm.runs.train import fit\n"
              f"fit(tiny_config(train={{'epochs': {EPOCHS}}}), {str(run)!r}, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ,
                            "QFM_HOME": str(tiny_home)}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / "state.safetensors").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (run / "metrics.json").exists()
    assert_same_run(run, fit(make_cfg(train={"epochs": EPOCHS}), run, progress=False),
                    reference)


def test_same_seed_same_run_with_data_loader_workers(reference, tmp_path, make_cfg):
    """Crops are seeded per image, so two worker processes give the very same run."""
    run = tmp_path / "w2"
    assert_same_run(run, fit(make_cfg(train={"epochs": EPOCHS, "workers": 2}), run,
                             progress=False), reference)


def test_killed_after_the_last_epoch_redoes_only_the_test(reference, tmp_path, make_cfg):
    run = tmp_path / "run"
    run.mkdir()
    state = _REFERENCE["run"] / "state.safetensors"  # the last epoch's, nothing else written
    (run / "state.safetensors").write_bytes(state.read_bytes())
    m = fit(make_cfg(train={"epochs": EPOCHS}), run, progress=False)
    assert_same_run(run, m, reference)
