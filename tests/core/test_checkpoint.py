"""Checkpoints: provenance in the sidecar, no unpickling, one-line refusals, atomic state."""

import json
import math
import os
import pickle
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import qfm.core.checkpoint as ck
from qfm.core.checkpoint import (CheckpointError, load_state, load_tensors, save_state, save_tensors,
                            sidecar)
from qfm.cli import main
from qfm.config import to_dict
from qfm.models import build_model


@pytest.fixture
def good(tmp_path, make_cfg):
    """A tiny checkpoint with its sidecar, and one image to score."""
    cfg = make_cfg()
    torch.manual_seed(0)
    model = build_model(cfg.model)
    path = tmp_path / "good.safetensors"
    save_tensors(model.state_dict(), path, {"config": to_dict(cfg), "dataset": "world",
                                            "label_scale": {"offset": 0.0, "scale": 100.0}},
                 code=True)  # as `qfm train` saves it
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(img)
    return path, model.state_dict(), img


def _refused(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    assert err[0].startswith("qfm: error: ")
    return err[0]


def _doctor(kind, path, state, tmp_path):
    bad = tmp_path / f"{kind}.safetensors"
    meta = json.loads(sidecar(path).read_text())
    if kind == "missing_key":
        save_tensors({k: v for k, v in state.items() if k != "decoder.score.weight"}, bad,
                     meta)
        return bad, "1 missing key(s), e.g. decoder.score.weight"
    if kind == "extra_key":
        save_tensors({**state, "gate.mlp.0.weight": torch.zeros(2, 2)}, bad, meta)
        return bad, "1 unexpected key(s), e.g. gate.mlp.0.weight"
    if kind == "other_config":  # sidecar says dim 16, the weights were trained with 32
        bad.write_bytes(path.read_bytes())
        meta["config"]["model"]["dim"] = 16
        sidecar(bad).write_text(json.dumps(meta))
        return bad, "shape mismatch(es), e.g. "
    if kind == "changed_weights":
        data = bytearray(path.read_bytes())
        data[-8:] = bytes(8)
        bad.write_bytes(bytes(data))
        sidecar(bad).write_text(json.dumps(meta))
        return bad, "sha256 does not match"
    if kind == "truncated":
        bad.write_bytes(path.read_bytes()[:100])
        sidecar(bad).write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))
        return bad, "not a readable safetensors file"
    if kind == "no_sidecar":  # weights alone, no metadata in the header (a foreign file)
        ck.save_file({k: v.contiguous() for k, v in state.items()}, str(bad))
        return bad, "no JSON sidecar"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["missing_key", "extra_key", "other_config",
                                  "changed_weights", "truncated", "no_sidecar"])
def test_doctored_checkpoint_refused_in_one_line(kind, good, tmp_path, capsys, monkeypatch):
    path, state, img = good
    bad, words = _doctor(kind, path, state, tmp_path)
    line = _refused(capsys, ["predict", str(img), "--checkpoint", str(bad)])
    assert words in line and str(bad) in line
    monkeypatch.chdir(tmp_path)  # no params.yaml: built-in defaults
    line = _refused(capsys, ["evaluate", "--checkpoint", str(bad)])
    assert words in line


def test_shape_mismatch_says_what_differs(good, tmp_path, capsys):
    path, state, img = good
    bad, _ = _doctor("other_config", path, state, tmp_path)
    line = _refused(capsys, ["predict", str(img), "--checkpoint", str(bad)])
    assert ("24 shape mismatch(es), e.g. decoder.layer.linear1.bias: "
            "checkpoint (128,) vs model (64,)") in line


def test_loading_never_unpickles(tmp_path, good, capsys):
    path, _, img = good
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return open, (str(marker), "w")

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    sidecar(evil).write_text(sidecar(path).read_text().replace('"sha256"', '"_sha"'))
    line = _refused(capsys, ["predict", str(img), "--checkpoint", str(evil)])
    assert "not a readable safetensors file" in line
    with pytest.raises(CheckpointError):
        load_tensors(evil)
    assert not marker.exists()


def test_sidecar_holds_provenance(good):
    path, state, _ = good
    meta = json.loads(sidecar(path).read_text())
    assert {"config", "dataset", "label_scale", "sha256", "qfm_version", "code"} <= set(meta)
    assert meta["sha256"] == ck.sha256(path) and set(meta["code"]) == {"qfm", "git", "dirty"}
    tensors, again = load_tensors(path)
    assert again == meta and all(torch.equal(tensors[k], v) for k, v in state.items())


def test_state_is_one_file_and_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "state.safetensors"
    meta = {"epoch": 0, "best": {"srcc": -math.inf}, "history": [{"loss": 0.1}]}
    save_state({"model.w": torch.arange(4.0)}, path, meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.safetensors"]
    tensors, back = load_state(path)
    assert back == meta and torch.equal(tensors["model.w"], torch.arange(4.0))

    def dies_halfway(tensors, filename, metadata=None):  # a kill while writing
        with open(filename, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_state({"model.w": torch.zeros(4)}, path, {**meta, "epoch": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.safetensors"]
    assert load_state(path)[1]["epoch"] == 0  # the previous state, intact


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_outputs_get_the_usual_file_mode_not_mkstemps_0600(tmp_path, umask_022):
    import pandas as pd

    from qfm.data.table import write_csv_atomic
    from qfm.predict import write_scores

    save_tensors({"w": torch.zeros(2)}, tmp_path / "m.safetensors", {"x": 1})
    save_state({"w": torch.zeros(2)}, tmp_path / "state.safetensors", {"epoch": 0})
    ck.write_json({"a": 1}, tmp_path / "metrics.json")
    write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    write_scores(pd.DataFrame({"path": ["x"], "score": [1.0]}), tmp_path / "scores.csv")
    for name in ("m.safetensors", "m.json", "state.safetensors", "metrics.json", "t.csv",
                 "scores.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == umask_022, name


def test_a_kill_between_weights_and_sidecar_leaves_a_consistent_checkpoint(tmp_path,
                                                                            monkeypatch):
    path = tmp_path / "model.safetensors"
    save_tensors({"w": torch.zeros(3)}, path, {"metrics": {"epoch": 1}})

    def killed(obj, where):  # the weights are renamed into place, then the process dies
        if Path(where).name == "model.json":
            raise KeyboardInterrupt
        return real(obj, where)

    real = ck.write_json
    monkeypatch.setattr(ck, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        save_tensors({"w": torch.ones(3)}, path, {"metrics": {"epoch": 2}})
    monkeypatch.undo()
    tensors, meta = load_tensors(path)  # the new weights with their own metadata
    assert torch.equal(tensors["w"], torch.ones(3)) and meta["metrics"] == {"epoch": 2}
    assert meta["sha256"] == ck.sha256(path)
