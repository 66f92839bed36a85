"""The whole-upstream regime's refit on every photo (``qfm whole --refit``) and the restamp of
its rows after a change that leaves their numbers as they were (scripts/restamp_whole_rows.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from test_real import ROOT, clive_tree  # noqa: F401  (clive_tree: fixture)
from test_whole import _home, _params

from qfm.cli import main
from qfm.files import FileError
from qfm.study import whole, whole_refit, whole_rows


def test_the_refit_trains_the_best_variant_on_every_photo_and_ships(clive_tree, tmp_path,  # noqa: F811
                                                                     monkeypatch, capsys):
    """``qfm whole --refit``: the regime's best variant by mean validation SRCC, on every photo,
    for the median best epoch + 1 of its split rows, its teacher first; then ``export_default``
    makes it a checkpoint that ``qfm predict`` scores with."""
    from qfm.core.checkpoint import load_tensors
    from qfm.predict import score_files
    from qfm.study.default_model import export_default

    _home(tmp_path, monkeypatch)  # the tiny ViT's positions are fixed by its side: view = crop
    params = _params(tmp_path, clive_tree, test_views=["whole:32", "crops:2"])
    out = tmp_path / "whole"
    whole.run_whole(params, out, progress=False)
    with pytest.raises(FileError, match="has rows on 2 splits; a refit needs 5"):
        whole_refit.refit_whole(params, out, progress=False)
    meta = whole_refit.refit_whole(params, out, min_splits=2, progress=False)
    rows = pd.DataFrame(json.loads((out / "livec_whole.json").read_text())["rows"])
    means = rows.groupby("variant")["val_srcc"].mean()
    assert meta["variant"] == means.idxmax() and meta["splits"] == [0, 1]
    mine = rows[rows["variant"] == meta["variant"]]
    assert meta["epochs"] == int(np.median(mine["best_epoch"])) + 1
    assert meta["images"] == 30 and meta["test_view"] in set(mine["test_view"])
    assert (meta["teacher"] == "refit/gate_qfm") == (meta["variant"] == "full")
    tensors, _ = load_tensors(out / whole_refit.REFIT)
    assert any(k.startswith("backbone.") for k in tensors)  # every weight: the upstream too
    ship = tmp_path / "default.safetensors"
    export_default(out / whole_refit.REFIT, ship)
    photos = sorted(str(p) for p in (clive_tree / "Images").iterdir())[:3]
    scores = score_files(photos, ship, workers=0, progress=False)["score"]
    assert scores.notna().all() and scores.between(-50, 150).all()
    # the command: the same refit, one line at the end
    assert main(["whole", "--params", str(params), "--out", str(out), "--refit"]) == 2
    assert "a refit needs 5" in capsys.readouterr().err


def test_the_restamp_proves_each_row_under_the_old_revision_and_its_own_code_list(
        clive_tree, tmp_path, monkeypatch):  # noqa: F811
    """``scripts/restamp_whole_rows.py``: a row whose fingerprint is its run's hash under the
    old revision's code — hashed with that revision's own CODE list — gets the current hash
    and a ``restamped`` note; a row current under neither stays as it was."""
    import argparse
    import importlib.util
    import subprocess

    repo = tmp_path / "repo"  # the old revision: today's package with a shorter CODE list
    shutil.copytree(ROOT / "qfm", repo / "qfm", ignore=shutil.ignore_patterns("__pycache__"))
    old_rows = repo / "qfm" / "study" / "whole_rows.py"
    old_rows.write_text(old_rows.read_text().replace(', "qfm/study/whole_run.py")', ")"))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "qfm"], ["commit", "-q", "-m", "old"]):
        subprocess.run(git + cmd, cwd=repo, check=True)
    _home(tmp_path, monkeypatch)
    params = _params(tmp_path, clive_tree)  # lr_backbone fixed: no tuning rows
    out = tmp_path / "whole"
    (out / "rows").mkdir(parents=True)
    spec = importlib.util.spec_from_file_location("restamp", ROOT / "scripts" /
                                                  "restamp_whole_rows.py")
    rs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rs)
    raw = yaml.safe_load(params.read_text())
    plan = whole_rows.RunPlan(raw, whole_rows.section(raw), json.loads(
        (tmp_path / "home" / "measured" / "livec" / "tune.json").read_text())["chosen"], out,
        None)
    job = plan.job("baseline", 0)
    old_list = tuple(c for c in whole_rows.CODE if c != "qfm/study/whole_run.py")
    assert rs.old_code(repo) == old_list
    rows = {"baseline_s0": whole_rows.code_hash(job.params, repo, old_list),
            "baseline_s1": "0" * 64}  # current under no code
    for name, code in rows.items():
        (out / "rows" / f"{name}.json").write_text(json.dumps(
            {"variant": "baseline", "seed": int(name[-1]), "code_fingerprint": code,
             "data": None}))
    monkeypatch.chdir(repo)
    args = argparse.Namespace(params=params, out=out, old_rev="HEAD", why="a test")
    assert rs.restamp("rows", args, rs.old_tree("HEAD", tmp_path / "old")) == 1
    done = json.loads((out / "rows" / "baseline_s0.json").read_text())
    assert done["code_fingerprint"] == job.code != rows["baseline_s0"]
    assert [r["why"] for r in done["restamped"]] == ["a test"]
    kept = json.loads((out / "rows" / "baseline_s1.json").read_text())
    assert kept["code_fingerprint"] == "0" * 64 and "restamped" not in kept
