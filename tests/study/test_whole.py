"""The whole-upstream regime (qfm.study.whole): runs that train the upstream and the head from
pixels on a synthetic CLIVE tree in the release's layout (a tiny ViT, no weights), the tuner,
the row store across a stop and a rerun (skipped rows untouched, stale rows rerun, a broken
row named), the GPU command's smoke mode on the CPU, and bad input as one line."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from test_real import ROOT, SHARED, clive_tree  # noqa: F401  (clive_tree: fixture)

from qfm.cli import main
from qfm.files import FileError
from qfm.study import whole, whole_rows, whole_run

TINY_MODEL = {"backbone": "test_vit", "weights": "none", "img_size": 32, "tokens": "multiscale",
              "grid": 2, "dim": 16, "heads": 2,
              "backbone_kwargs": {"patch_size": 8, "dynamic_img_size": True}}


def _home(tmp_path, monkeypatch) -> Path:
    """A project home holding the frozen study's tuned values (measured/livec/tune.json)."""
    home = tmp_path / "home"
    (home / "measured" / "livec").mkdir(parents=True)
    shutil.copy(ROOT / "measured" / "livec" / "tune.json", home / "measured" / "livec")
    monkeypatch.setenv("QFM_HOME", str(home))
    monkeypatch.delenv("QFM_DATA", raising=False)
    return home


def _params(tmp_path, root, **whole_section) -> Path:
    """params.yaml with a tiny model and a small regime on the tree at ``root``."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"].update(TINY_MODEL)
    raw["train"].update(batch_size=8)
    raw["livec"].update(root=str(root), splits=3)
    raw["whole"].update({"variants": ["baseline", "gate_qfm", "full"], "seeds": [0, 1],
                         "lr_backbone": 1.0e-4, "epochs": 2, "patience": 0, "crop": 32,
                         "views": 1, "test_views": ["whole:40", "crops:2"], "workers": 0,
                         "device": "cpu", "tune": {"seeds": [100], "epochs": 1, "by": "variant",
                                                   "grid": {"lr_backbone": [1.0e-4, 1.0e-3]}},
                         **whole_section})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_whole_section_defaults_are_params_yaml():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert asdict(whole_rows.section(raw)) == asdict(whole_rows.WholeConfig())


def test_views_of_a_photo():
    from PIL import Image

    im = Image.new("RGB", (60, 40), (10, 20, 30))
    assert whole_run.View("whole:32", 24)(im).shape == (3, 32, 32)
    assert whole_run.View("crops:3", 24)(im).shape == (3, 3, 24, 24)
    with pytest.raises(ValueError, match="whole.test_views: 'half:3'"):
        whole_run.View("half:3", 24)


def test_runs_train_the_upstream_and_pair_by_split(clive_tree, tmp_path, monkeypatch):  # noqa: F811
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree, lr_backbone="auto")
    out = tmp_path / "whole"
    res = whole.run_whole(params, out, progress=False)
    assert res["status"] == "measured" and res["ran"] == 2 * 2 + 3 * 2  # tuning + the splits
    tuned = json.loads((out / "tune.json").read_text())
    assert set(tuned["chosen"]) == {"baseline", "gate_qfm", "full"}
    assert tuned["chosen"]["full"] == tuned["chosen"]["gate_qfm"]  # student: teacher
    assert set(tuned["val_srcc_by_point"]) == {"baseline", "gate_qfm"}  # no tuning runs of full
    assert all(len(m) == 2 for m in tuned["val_srcc_by_point"].values())
    index = json.loads((out / "livec_whole.json").read_text())
    rows = pd.DataFrame(index["rows"])
    assert len(rows) == 6 and not index["stale"] and not index["missing"]
    assert rows["test_srcc"].between(-1, 1).all() and rows["test_plcc"].notna().all()
    assert set(rows["test_view"]) <= {"whole:40", "crops:2"}
    assert (rows["epochs"] == 2).all() and (rows["max_epochs"] == 2).all()
    assert rows["val_curve"].map(len).eq(2).all() and rows["best_epoch"].isin([0, 1]).all()
    full = rows[rows["variant"] == "full"]
    assert (full["pseudo_images"] == full["train_images"]).all()  # one view per photo
    assert full["teacher"].map(lambda t: t["run"].startswith("rows/gate_qfm_s")).all()
    for seed in (0, 1):  # the same split's test photos for every variant: runs pair
        images = [set(pd.read_csv(out / "rows" / f"{v}_s{seed}.csv")["image"])
                  for v in ("baseline", "gate_qfm", "full")]
        assert images[0] == images[1] == images[2]
    preds = pd.read_csv(out / "rows" / "gate_qfm_s0.csv")
    assert list(preds.columns) == ["image", "pred", "mos", "mos_raw"] and len(preds) == 6
    from qfm.core.checkpoint import load_tensors

    tensors, meta = load_tensors(tmp_path / "home" / "runs" / "whole" / "teachers" / "rows" /
                                 "gate_qfm_s0.safetensors")
    assert meta["kind"] == "whole_teacher"
    from qfm.config import ModelConfig, from_dict
    from qfm.core.engine import seed_everything
    from qfm.models import build_model

    seed_everything(0)  # the run's own initial draw (no weights to load here)
    init = build_model(from_dict(ModelConfig, meta["model"], "model")).state_dict()
    moved = [k for k in init if k.startswith("backbone.") and not torch.equal(init[k], tensors[k])]
    assert len(moved) > 0.9 * sum(k.startswith("backbone.") for k in init)  # the upstream trained
    # a run is repeatable: the same run in another record gives the same numbers
    again = whole.run_whole(params, tmp_path / "again", only="baseline", seeds="0",
                            progress=False)
    row = json.loads((out / "rows" / "baseline_s0.json").read_text())
    assert again["rows"][0]["val_curve"] == row["val_curve"]
    assert again["rows"][0]["test_srcc"] == row["test_srcc"]


def test_the_row_store_survives_a_stop(clive_tree, tmp_path, monkeypatch, capsys):  # noqa: F811
    home = _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree)
    out = tmp_path / "whole"
    first = whole.run_whole(params, out, max_runs=1, progress=False)
    assert first["status"] == "partial" and first["ran"] == 1
    kept = out / "rows" / "baseline_s0.json"  # split 0 first, teachers before students
    assert [p.name for p in (out / "rows").glob("*.json")] == [kept.name]
    before = (kept.read_bytes(), kept.stat().st_mtime_ns)
    assert len(json.loads((out / "livec_whole.json").read_text())["missing"]) == 5
    rest = whole.run_whole(params, out, progress=False)
    assert rest["status"] == "measured" and rest["ran"] == 5 and len(rest["rows"]) == 6
    assert (kept.read_bytes(), kept.stat().st_mtime_ns) == before  # skipped, not recomputed
    assert whole.run_whole(params, out, progress=False)["ran"] == 0
    # a student whose teacher's weights are gone: the teacher runs again first
    (home / "runs" / "whole" / "teachers" / "rows" / "gate_qfm_s1.safetensors").unlink()
    (out / "rows" / "full_s1.json").unlink()
    capsys.readouterr()
    assert whole.run_whole(params, out, progress=False)["ran"] == 2
    said = capsys.readouterr().out
    assert "rows/gate_qfm_s1: run again (a student's teacher" in said
    assert "rows/full_s1: run\n" in said
    # a row written by other code or parameters is stale: reported and rerun, never used
    stale = _params(tmp_path, clive_tree, epochs=1)
    nodata = yaml.safe_load(stale.read_text())
    nodata["livec"]["root"] = str(tmp_path / "nowhere")
    (tmp_path / "nodata.yaml").write_text(yaml.safe_dump(nodata))
    index = (out / "livec_whole.json").read_bytes()
    res = whole.run_whole(tmp_path / "nodata.yaml", out, if_data=True, progress=False)
    assert res["status"] == "no data" and len(res["stale"]) == 6 and not res["rows"]
    assert (out / "livec_whole.json").read_bytes() == index  # nothing changes without data
    capsys.readouterr()
    res = whole.run_whole(stale, out, max_runs=1, progress=False)
    said = capsys.readouterr().out
    assert "rows/baseline_s0: run again (stale: the code or its parameters changed" in said
    assert len(res["rows"]) == 1 and len(res["stale"]) == 5
    # a damaged row file: a one-line error naming it (the CLI: exit 2, no traceback)
    (out / "rows" / "full_s0.json").write_text('{"variant": "full", "seed"')
    with pytest.raises(FileError, match=r"rows/full_s0\.json: not valid JSON"):
        whole.run_whole(stale, out, progress=False)
    capsys.readouterr()
    assert main(["whole", "--params", str(stale), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("qfm: error: ") and "full_s0.json" in err and "\n" not in err


def test_the_gpu_command_in_smoke_mode_on_the_cpu(clive_tree, tmp_path, monkeypatch,  # noqa: F811
                                                  capsys):
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree, lr_backbone="auto")
    code = main(["whole", "--params", str(params), "--device", "cpu", "--seeds", "1-2",
                 "--smoke", "--quiet"])
    assert code == 0, capsys.readouterr().err
    out = tmp_path / "home" / "runs" / "whole_smoke"  # never the committed record
    rows = pd.DataFrame(json.loads((out / "livec_whole.json").read_text())["rows"])
    assert sorted(set(rows["seed"])) == [1, 2] and len(rows) == 6
    assert (rows["max_epochs"] == 1).all() and (rows["train_images"] <= 8).all()
    assert rows["steps"].max() <= 4 and rows["run"].map(lambda r: r["device"] == "cpu").all()
    assert not (tmp_path / "home" / "measured" / "livec_whole").exists()


@pytest.mark.parametrize("argv,key", [
    (["--only", "baseline,nope"], "--only: unknown variant 'nope'"),
    (["--seeds", "2-4"], "--seeds: 3 is no CLIVE split (livec.splits: 3)"),
    (["--seeds", "x"], "--seeds: 'x': expected"),
])
def test_bad_options_are_one_line_errors(argv, key, clive_tree, tmp_path,  # noqa: F811
                                         monkeypatch, capsys):
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree)
    assert main(["whole", "--params", str(params), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and "Traceback" not in err


@pytest.mark.parametrize("change,key", [
    ({"variants": ["baseline", "gatee"]}, "whole.variants: unknown variant 'gatee'"),
    ({"test_views": ["whole:40", "half"]}, "whole.test_views[1]: 'half'"),
    ({"crop": "big"}, "whole.crop: expected a number or auto"),
    ({"lr_head": "auto", "tune": {"grid": {}}}, "whole.lr_head: auto needs a grid"),
    ({"tune": {"grid": {"rho": [0.1]}}}, "whole.tune.grid.rho: not a tunable knob"),
    ({"tune": {"student": "self"}}, "whole.tune.student: expected teacher or own"),
    ({"epochz": 3}, "whole.epochz: unknown key"),
])
def test_bad_params_are_one_line_errors(change, key, clive_tree, tmp_path,  # noqa: F811
                                        monkeypatch, capsys):
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree, **change)
    assert main(["whole", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and "Traceback" not in err


def test_without_data_the_command_fails_and_the_stage_changes_nothing(tmp_path, monkeypatch,
                                                                      capsys):
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, tmp_path / "nowhere")
    assert main(["whole", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "livec.root: no CLIVE copy found" in err
    out = tmp_path / "record"
    assert main(["whole", "--params", str(params), "--out", str(out), "--if-data"]) == 0
    assert "no CLIVE copy found" in capsys.readouterr().out
    assert out.is_dir() and not any(out.iterdir())
    monkeypatch.setenv("QFM_DATA", str(tmp_path))
    (tmp_path / "livec").mkdir()  # a CLIVE folder without its label files
    params = _params(tmp_path, "auto")
    assert main(["whole", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "livec: no label file in" in err
    shutil.rmtree(tmp_path / "home" / "measured" / "livec")  # no frozen study: it says so
    assert main(["whole", "--params", str(params)]) == 2
    assert "measured/livec/tune.json: missing" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "Data").is_dir() or not (ROOT / "models" /
                    "efficientnet_lite0.safetensors").is_file(),
                    reason="needs the CLIVE copy ../shared/data/livec and models/ (qfm weights)")
def test_the_gpu_command_smoke_on_real_clive_with_lite0(tmp_path, monkeypatch, capsys):
    """`qfm whole --device cpu --seeds 5-9 --smoke` with params.yaml as it is: ImageNet
    Lite0, the default tuning grid, every variant, on real CLIVE photos (~1 min on 2 cores)."""
    home = _home(tmp_path, monkeypatch)
    (home / "models").mkdir()
    for f in ("efficientnet_lite0.safetensors", "efficientnet_lite0.json"):
        (home / "models" / f).symlink_to(ROOT / "models" / f)
    monkeypatch.setenv("QFM_DATA", str(SHARED.parent))
    code = main(["whole", "--params", str(ROOT / "params.yaml"), "--device", "cpu",
                 "--seeds", "5-9", "--smoke", "--quiet"])
    assert code == 0, capsys.readouterr().err
    index = json.loads((home / "runs" / "whole_smoke" / "livec_whole.json").read_text())
    rows = pd.DataFrame(index["rows"])
    assert sorted(set(rows["seed"])) == [5, 6] and len(rows) == 8 and not index["missing"]
    assert set(rows["variant"]) == {"baseline", "gate", "gate_qfm", "full"}
    assert (home / "runs" / "whole_smoke" / "NOTICE.txt").is_file()


def test_the_stage_surveys_and_trains_nothing(clive_tree, tmp_path, monkeypatch):  # noqa: F811
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree, lr_backbone=1.0e-4)
    out = tmp_path / "whole"
    res = whole.run_whole(params, out, survey_only=True, progress=False)
    assert res["status"] == "surveyed" and res["ran"] == 0 and len(res["missing"]) == 6
    assert not list((out / "rows").glob("*.json")) if (out / "rows").is_dir() else True
    assert json.loads((out / "livec_whole.json").read_text())["rows"] == []


def test_a_killed_sitting_leaves_whole_rows_and_a_rerun_goes_on(clive_tree, tmp_path,  # noqa: F811
                                                                 monkeypatch):
    """SIGKILL a real `qfm whole` process once its first row has landed: every row file left is
    complete (each parses; a write cut short leaves only a ``.<name>.<random>.tmp``, never a
    row), and a rerun keeps them and runs the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    home = _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree, lr_backbone=1.0e-4, epochs=3)
    out = tmp_path / "whole"
    env = {**os.environ, "QFM_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "qfm.cli", "whole", "--params", str(params),
                             "--out", str(out), "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / "rows").glob("*.json")) if (out / "rows").is_dir() else True:
        assert proc.poll() is None and time.monotonic() < deadline, "no row landed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {p.name: p.read_bytes() for p in (out / "rows").glob("*.json")}
    assert kept and all(not p.name.startswith(".") for p in (out / "rows").glob("*.json"))
    for name in kept:
        assert json.loads(kept[name])["variant"]  # whole JSON, never half a file
    res = whole.run_whole(params, out, progress=False)
    assert res["status"] == "measured" and len(res["rows"]) == 6 and res["ran"] == 6 - len(kept)
    assert {n: (out / "rows" / n).read_bytes() for n in kept} == kept  # not recomputed


def test_the_row_fingerprint_covers_every_module_a_run_executes():
    """A row's hash (``whole_rows.CODE``) covers the closure of :mod:`qfm.study.whole` but the
    bookkeeping that writes files, paths and provenance and computes no number."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "system"))
    from test_architecture import MODULES, closure

    bookkeeping = {"qfm/__init__.py", "qfm/files.py", "qfm/paths.py", "qfm/study/__init__.py",
                   "qfm/study/record.py"}
    files = {MODULES[m].relative_to(ROOT).as_posix()
             for m in closure("qfm.study.whole") | {"qfm.study.whole"}}
    covered = lambda f: any(f == c or f.startswith(c + "/") for c in whole_rows.CODE)  # noqa
    assert sorted(f for f in files - bookkeeping if not covered(f)) == []

