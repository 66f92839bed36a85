import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from qfm.config import QFMConfig
from qfm.data.expanded import LeakError, PseudoLabelled, check_no_leak, make_view
from qfm.data.sources import load_parts
from qfm.files import sha256
from qfm.losses.distill import DistillObjective
from qfm.models import build_model
from qfm.runs.distill import run_distill, teacher_config


def _parts():
    tab = lambda c: pd.DataFrame({"image": [f"{x}.png" for x in c], "content": c})  # noqa
    return {"train": tab(["a", "b"]), "val": tab(["c"]), "test": tab(["d"])}


def test_leak_check_refuses_val_and_test_content():
    check_no_leak(["a", "b", "a"], _parts())
    with pytest.raises(LeakError, match="val"):
        check_no_leak(["a", "c"], _parts())
    with pytest.raises(LeakError, match="test"):
        check_no_leak(["a"], _parts(), images=["d.png"])


def test_views_are_seeded_and_sized():
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    a = make_view(im, 32, np.random.default_rng([0, 1, 0]))
    b = make_view(im, 32, np.random.default_rng([0, 1, 0]))
    c = make_view(im, 32, np.random.default_rng([0, 1, 1]))
    assert a.size == (32, 32) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_distill_objective_splits_labels_from_pseudo_labels(make_cfg):
    torch.manual_seed(0)
    model = build_model(make_cfg(model={"gate": True}).model)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0.2, 0.21, 0.7, 0.72])
    obj = DistillObjective(QFMConfig(enabled=True), lambda_kd=0.5)
    _, lab = obj(model, {"image": x, "mos": y, "index": torch.arange(4)})
    _, pse = obj(model, {"image": x, "mos": y, "index": -1 - torch.arange(4)})
    assert lab["kd"] == 0 and pse["reg"] == 0
    assert lab["reg"] == pytest.approx(pse["kd"], rel=1e-5)
    loss, mix = obj(model, {"image": x, "mos": y, "index": torch.tensor([0, -1, 2, -2])})
    assert mix["loss"] == pytest.approx(mix["reg"] + mix["qfm"] + 0.5 * mix["kd"], rel=1e-5)
    loss.backward()


def test_smoke_distill_end_to_end_without_val_test(tiny_home, tmp_path, make_cfg):
    cfg = make_cfg(train={"epochs": 1}, qfm={"enabled": True, "sampler": True},
                   model={"gate": True},
                   distill={"enabled": True, "views": 1, "unlabelled": "world"})
    tcfg = teacher_config(cfg)  # same split: the teacher trains on train
    assert tcfg.train == cfg.train and not tcfg.distill.enabled
    m = run_distill(cfg, tmp_path / "d", progress=False)
    out = tmp_path / "d" / "expanded"
    table = pd.read_csv(out / "pseudo_labels.csv", dtype={"content": str})
    _, parts = load_parts("world", cfg.train.split)
    train, held = set(parts["train"]["content"]), set(parts["val"]["content"]) | set(
        parts["test"]["content"])
    assert set(table["content"]) <= train and not set(table["content"]) & held
    assert set(table["origin"][table["kind"] == "view"]) <= set(parts["train"]["image"])
    assert (table["kind"] == "view").sum() == len(parts["train"])
    assert (table["kind"] == "unlabelled").sum() > 0
    assert table["mos"].between(0, 1).all()
    side = json.loads((out / "pseudo_labels.json").read_text())
    assert side["teacher_sha256"] == sha256(tmp_path / "d" / "teacher" / "model.safetensors")
    assert side["rows"] == len(table)
    assert m["teacher"]["test"]["n"] == m["test"]["n"] > 0
    assert (tmp_path / "d" / "model.safetensors").is_file()
    assert "kd" in m["history"][0] and np.isfinite(m["test"]["srcc"])
    # the student's epoch covers labels + pseudo-labels
    assert m["history"][0]["steps"] == (len(parts["train"]) + len(table)) // 8
    # rerun: the teacher and its pseudo-labels are reused, not redone
    mtime = (out / "pseudo_labels.csv").stat().st_mtime_ns
    run_distill(cfg, tmp_path / "d", progress=False)
    assert (out / "pseudo_labels.csv").stat().st_mtime_ns == mtime


def test_pseudo_labelled_items_carry_negative_index():
    class DS:
        mos = torch.tensor([0.1, 0.2])

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": torch.zeros(1), "mos": self.mos[i], "index": i}

    p = PseudoLabelled(DS())
    assert [p[i]["index"] for i in range(2)] == [-1, -2] and torch.equal(p.mos, DS.mos)


def _teacher(cfg, tmp_path):
    from qfm.runs.train import fit

    fit(teacher_config(cfg), tmp_path / "teacher", progress=False)
    return tmp_path / "teacher" / "model.safetensors"


def _files(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_pseudo_labels_are_redone_when_views_or_unlabelled_change(tiny_home, tmp_path,
                                                                   make_cfg):
    from qfm.config import override
    from qfm.runs.distill import pseudo_label

    cfg = make_cfg(train={"epochs": 1, "max_images": 16},
                   distill={"enabled": True, "views": 0, "unlabelled": "world"})
    teacher, out = _teacher(cfg, tmp_path), tmp_path / "expanded"
    t0 = pseudo_label(cfg, teacher, out, progress=False)
    assert set(t0["kind"]) == {"unlabelled"}
    t1 = pseudo_label(override(cfg, {"distill.views": 1}), teacher, out, progress=False)
    assert (t1["kind"] == "view").sum() == 16
    t2 = pseudo_label(override(cfg, {"distill.views": 1, "distill.unlabelled": ""}), teacher,
                      out, progress=False)
    assert set(t2["kind"]) == {"view"}
    assert not list((out / "unlabelled").glob("*"))  # no stale copies left beside it
    mtime = (out / "pseudo_labels.csv").stat().st_mtime_ns
    again = pseudo_label(override(cfg, {"distill.views": 1, "distill.unlabelled": ""}),
                         teacher, out, progress=False)  # same recipe: reused
    assert (out / "pseudo_labels.csv").stat().st_mtime_ns == mtime
    assert again["image"].tolist() == t2["image"].tolist()


def test_only_rank_0_writes_the_expanded_set_and_prints(tiny_home, tmp_path, make_cfg,
                                                        monkeypatch, capsys):
    import qfm.runs.distill as dr

    cfg = make_cfg(train={"epochs": 1, "max_images": 16},
                   distill={"enabled": True, "views": 1, "unlabelled": "world"})
    run_distill(cfg, tmp_path / "d", progress=False)  # rank 0 (one process)
    out = tmp_path / "d" / "expanded"
    waited = []
    monkeypatch.setattr(dr, "init_distributed", lambda device: (device, 1, 2))  # rank 1 of 2
    monkeypatch.setattr(dr, "barrier", lambda world: waited.append(world))
    (out / "pseudo_labels.json").write_text(  # rank 0 would redo them now: rank 1 must not
        (out / "pseudo_labels.json").read_text().replace('"views"', '"views_was"'))
    before = _files(out)
    capsys.readouterr()
    m = run_distill(cfg, tmp_path / "d", progress=True)
    assert _files(out) == before and waited  # waited for rank 0, wrote nothing
    assert capsys.readouterr().out == ""
    assert m["expanded"]["rows"] > 0
    waited.clear()  # rank 0 meets the others after redoing them, and after reusing them
    monkeypatch.setattr(dr, "init_distributed", lambda device: (device, 0, 2))
    run_distill(cfg, tmp_path / "d", progress=False)
    mtime = (out / "pseudo_labels.csv").stat().st_mtime_ns
    run_distill(cfg, tmp_path / "d", progress=False)
    assert waited == [2, 2] and (out / "pseudo_labels.csv").stat().st_mtime_ns == mtime


def test_unlabelled_auto_is_the_worlds_on_the_world_and_none_on_a_real_data_set(make_cfg):
    from qfm.runs.distill import unlabelled_source

    assert unlabelled_source(make_cfg(distill={"unlabelled": "auto"})) == "world"
    real = {"dataset": "koniq10k"}
    assert unlabelled_source(make_cfg(train=real, distill={"unlabelled": "auto"})) == ""
    assert unlabelled_source(make_cfg(train=real, distill={"unlabelled": ""})) == ""
    with pytest.raises(ValueError, match="distill.unlabelled: 'world' needs train.dataset"):
        unlabelled_source(make_cfg(train=real, distill={"unlabelled": "world"}))


def test_distill_on_a_real_data_set_with_world_unlabelled_fails_before_the_teacher(
        tmp_path, make_cfg):
    cfg = make_cfg(train={"dataset": "koniq10k"},
                   distill={"enabled": True, "unlabelled": "world"})
    with pytest.raises(ValueError, match="distill.unlabelled"):
        run_distill(cfg, tmp_path / "d", progress=False)
    assert not (tmp_path / "d" / "teacher").exists()


def test_the_paper_recipe_on_a_real_data_set_does_not_use_the_worlds_images():
    """params.yaml + the documented `dvc exp run -S …` recipe, on KonIQ: the distill stage
    must not ask for the embedded default's unlabelled images (it crashed there)."""
    import re
    from pathlib import Path

    import yaml

    from qfm.config import load_params, override
    from qfm.runs.distill import unlabelled_source

    params = Path(__file__).resolve().parents[2] / "params.yaml"
    block = params.read_text()[params.read_text().index("# Paper profile"):]
    sets = {k: yaml.safe_load(v) for k, v in re.findall(
        r"-S '?((?:protocol)\.[^=\s]+)=([^\s']+)", block)}
    assert sets["protocol.dataset"] != "world"
    # the protocol stage trains on protocol.dataset (qfm.runs.protocol.run_protocol sets it)
    cfg = override(load_params(params), {"train.dataset": sets["protocol.dataset"],
                                         "distill.enabled": True})
    assert unlabelled_source(cfg) == ""


def test_an_empty_expanded_set_is_a_one_line_error(tiny_home, make_cfg, tmp_path):
    from qfm.runs.distill import run_distill

    cfg = make_cfg(shared={"smoke": True}, distill={"enabled": True, "views": 0,
                                                    "unlabelled": ""})
    with pytest.raises(ValueError, match="the expanded set is empty"):
        run_distill(cfg, tmp_path / "student", progress=False)


def test_auto_views_make_a_real_data_set_s_expanded_set(make_cfg):
    from qfm.runs.distill import AUTO_VIEWS, views_of

    real = make_cfg(train={"dataset": "livec"}, distill={"enabled": True, "views": -1,
                                                         "unlabelled": "auto"})
    assert views_of(real) == AUTO_VIEWS  # CLIVE: nothing unlabelled, so views
    assert views_of(make_cfg(distill={"views": -1, "unlabelled": "auto"})) == 0  # the world's
    assert views_of(make_cfg(distill={"views": 3})) == 3
