"""Bytes that reproduce: what a DVC stage writes is the same, byte for byte, each time its
inputs are — no wall time, date or git state in a run row, a token cache, a head's or a
model's safetensors + sidecar, or an executed notebook (its clock goes to logs/timings.jsonl).
A fresh clone's ``dvc repro`` then leaves ``dvc.lock`` unchanged
(benchmarks/pipeline_stages.py checks that on the reference machine)."""

from __future__ import annotations

import json

import torch

from qfm.config import ModelConfig
from qfm.core import checkpoint
from qfm.files import read_timings, scrub_notebook, write_json

TOKENS = {"backbone": "test_vit", "img_size": 32, "weights": "none", "tokens": "multiscale",
          "grid": 2, "backbone_kwargs": {"patch_size": 8}}
GIT = ({"qfm": "x", "git": "a" * 40, "dirty": False}, {"qfm": "x", "git": "b" * 40, "dirty": True})


def _pair(path) -> tuple[bytes, bytes]:
    return path.read_bytes(), checkpoint.sidecar(path).read_bytes()


def test_safetensors_and_sidecar_do_not_depend_on_the_git_state(tmp_path, monkeypatch):
    """A clone runs another commit than the one the committed outputs were made at, and the
    tree is "dirty" while DVC rewrites dvc.lock: neither may reach a stage's file."""
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    meta = {"kind": "head", "config": {"model": {"dim": 16}}, "val_srcc": 0.5}
    files = []
    for k, code in enumerate(GIT):
        monkeypatch.setattr(checkpoint, "code_version", lambda code=code: code)
        path = tmp_path / str(k) / "head.safetensors"
        checkpoint.save_tensors(state, path, meta)
        files.append(_pair(path))
    assert files[0] == files[1]
    assert b"dirty" not in files[0][0] and b"dirty" not in files[0][1]
    for k, code in enumerate(GIT):  # `qfm train` asks for them: there they are recorded
        monkeypatch.setattr(checkpoint, "code_version", lambda code=code: code)
        checkpoint.save_tensors(state, tmp_path / f"run{k}.safetensors", meta, code=True)
    assert checkpoint.load_tensors(tmp_path / "run1.safetensors")[1]["code"] == GIT[1]
    assert _pair(tmp_path / "run0.safetensors") != _pair(tmp_path / "run1.safetensors")


def test_token_cache_is_the_same_bytes_twice_and_logs_its_time(tiny_home, tmp_path,
                                                                monkeypatch):
    from qfm.study.tokens import extract

    files = []
    for k, code in enumerate(GIT):
        monkeypatch.setattr(checkpoint, "code_version", lambda code=code: code)
        torch.manual_seed(0)  # weights "none": a seeded initialisation
        out = tmp_path / str(k) / "tiny.safetensors"
        meta = extract(ModelConfig(**TOKENS), out, max_images=12, progress=False)
        assert meta["seconds"] >= 0  # returned (the CLI prints it), not stored
        files.append(_pair(out))
    assert files[0] == files[1]
    side = json.loads(files[0][1])
    assert "seconds" not in side and "code" not in side
    logged = [e for e in read_timings("features") if e.get("out") == "tiny.safetensors"]
    assert len(logged) >= 2 and all(e["seconds"] >= 0 for e in logged)


def test_a_run_row_is_the_same_bytes_twice(tiny_home, tmp_path, make_cfg):
    from qfm import paths
    from qfm.study.run import RunSpec, load_run_data, summary_row, train_run
    from qfm.study.stages import write_predictions
    from qfm.study.tokens import FeatureBank, extract

    torch.manual_seed(0)
    bank_file = tmp_path / "tokens.safetensors"
    extract(ModelConfig(**TOKENS), bank_file, progress=False)
    bank = FeatureBank(bank_file)
    cfg = make_cfg(model={**TOKENS, "dim": 16, "heads": 2}, train={"lr": 1e-3, "epochs": 2})
    spec = RunSpec("baseline", 0, cfg, 0.0)
    data = load_run_data(bank, str(paths.world_dir()), 0, 0.0, False)
    texts, preds = [], []
    for k in range(2):
        res = train_run(spec, data, bank.width)
        write_json({"group": "main", "rows": [summary_row(res)]}, tmp_path / f"rows{k}.json")
        texts.append((tmp_path / f"rows{k}.json").read_bytes())
        preds.append(write_predictions([res], tmp_path / f"p{k}.json", "main", 0.0).read_bytes())
        checkpoint.save_tensors(res["state"], tmp_path / str(k) / "head.safetensors",
                                {"kind": "head", "val_srcc": res["val_srcc"]})
    assert texts[0] == texts[1] and preds[0] == preds[1]
    assert len(res["predictions"]["pred"]) == len(data["test"][1]) and \
        res["predictions"]["image"] == data["test"][2]["image"].tolist()
    assert "predictions" not in json.loads(texts[0])["rows"][0]
    assert _pair(tmp_path / "0" / "head.safetensors") == _pair(tmp_path / "1" / "head.safetensors")
    row = json.loads(texts[0])["rows"][0]
    assert "seconds" not in row and row["val_curve"]
    assert any(e["variant"] == "baseline" and e["seed"] == 0 for e in read_timings("run"))


def _executed(when: str, seconds: float) -> dict:
    """A notebook as papermill and nbclient leave it, executed at ``when``."""
    clock = {"start_time": f"{when}T10:00:00.000001+00:00", "duration": seconds,
             "end_time": f"{when}T10:00:{seconds:09.6f}+00:00"}
    cell = {"cell_type": "code", "execution_count": 1, "id": "a1", "source": ["print(2)"],
            "metadata": {"execution": {"iopub.execute_input": f"{when}T10:00:00.1Z",
                                       "shell.execute_reply": f"{when}T10:00:00.2Z"},
                         "papermill": {**clock, "exception": False, "status": "completed"},
                         "tags": []},
            "outputs": [{"name": "stdout", "output_type": "stream", "text": ["2\n"]}]}
    return {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"papermill": {**clock, "exception": None, "parameters": {"group": "x"},
                                       "input_path": "in.ipynb", "output_path": "out.ipynb"},
                         "kernelspec": {"name": "python3"}}}


def test_scrubbed_executed_notebooks_are_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    paths = []
    for k, (when, sec) in enumerate((("2026-01-01", 12.5), ("2026-02-03", 40.25))):
        path = tmp_path / "book" / "executed" / f"nb{k}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_executed(when, sec), indent=1, sort_keys=True))
        scrub_notebook(path)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    nb = json.loads(paths[0].read_text())
    assert "start_time" not in nb["metadata"]["papermill"] and \
        nb["metadata"]["papermill"]["parameters"] == {"group": "x"}
    cell = nb["cells"][0]
    assert "execution" not in cell["metadata"] and cell["metadata"]["papermill"] == \
        {"exception": False, "status": "completed"}
    assert cell["outputs"][0]["text"] == ["2\n"] and cell["execution_count"] == 1
    scrub_notebook(paths[0])  # twice: nothing more to take
    assert paths[0].read_bytes() == paths[1].read_bytes()
    logged = {e["path"]: e["seconds"] for e in read_timings("notebook")}
    assert logged == {"book/executed/nb0.ipynb": 12.5, "book/executed/nb1.ipynb": 40.25}
