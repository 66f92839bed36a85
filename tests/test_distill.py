import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from qfm.checkpoint import sha256
from qfm.config import QFMConfig
from qfm.data.sources import load_parts
from qfm.distill import DistillObjective, LeakError, PseudoLabelled, check_no_leak, make_view
from qfm.distill_run import run_distill, teacher_config
from qfm.model import build_model


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
