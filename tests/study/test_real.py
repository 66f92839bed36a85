"""The study on a real data set (CLIVE): tokens of each photo and its views, the protocol's
splits, the tuner's leak-free split, a group of runs, the measured results' staleness check,
and the stage without data. A synthetic CLIVE tree in the release's layout (BMP names, some
stored as PNG) runs everywhere; the shared copy (``../shared/data/livec``) where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy.io import savemat

from qfm.config import RunConfig, to_dict
from qfm.study import livec, real, record

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "livec"


def _cell(strings):
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = np.array([s])
    return cell


@pytest.fixture(scope="module")
def clive_tree(tmp_path_factory) -> Path:
    """30 photos (7 training images first, as the release), MOS rising with smoothness."""
    root = tmp_path_factory.mktemp("livec")
    names = [f"t{i}.bmp" for i in range(1, 8)] + [f"{100 + i}.bmp" if i % 3 else f"{100 + i}.JPG"
                                                  for i in range(30)]
    rng = np.random.default_rng(0)
    mos = np.concatenate([np.full(7, 50.0), np.linspace(10, 90, 30)])
    (root / "Data").mkdir()
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": _cell(names)})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos.reshape(1, -1)})
    for i, n in enumerate(names[7:]):
        noise = rng.normal(0, 60 * (1 - i / 30), (40, 48, 3))
        arr = np.clip(128 + noise, 0, 255).astype(np.uint8)
        stored = n.replace(".bmp", ".png") if i % 2 else n  # a lossless copy's PNG
        (root / "Images").mkdir(exist_ok=True)
        Image.fromarray(arr).save(root / "Images" / stored,
                                  format="JPEG" if n.endswith(".JPG") else None)
    return root


def tiny_model_cfg():
    from qfm.config import override

    return override(RunConfig(), {"model.backbone": "test_vit", "model.weights": "none",
                                  "model.img_size": 32, "model.tokens": "multiscale",
                                  "model.grid": 2, "model.dim": 16, "model.heads": 2,
                                  "model.backbone_kwargs": {"patch_size": 8,
                                                            "dynamic_img_size": True}}).model


def test_recipe_gives_the_whole_photo_and_its_views(clive_tree):
    recipe = real.TokenRecipe(resize=32, views=3, view_crop=24)
    main, views = recipe.crops(clive_tree / "Images" / "101.png")
    assert main.shape == (3, 32, 32) and views.shape == (3, 3, 24, 24)
    assert 0.0 <= float(main.min()) and float(main.max()) <= 1.0
    assert not np.allclose(views[0].numpy(), views[1].numpy())  # different places


def test_source_splits_and_tuning_split_never_validate_on_a_test_image(clive_tree):
    src = real.source("livec", clive_tree, n_splits=4)
    assert len(src.table) == 30  # t1-t7 dropped; .bmp names found as .png
    for sp in src.splits:
        assert set(sp["split"]) == {"train", "val", "test"} and len(sp) == 30
    rows, rec = src.tuning_split([0, 1, 2, 3], seed=100)
    tested = set().union(*[set(s.loc[s["split"] == "test", "image"]) for s in src.splits])
    val = set(rows.loc[rows["split"] == "val", "image"])
    assert val and not val & tested and rec["val_images"] == len(val)
    assert set(rows.loc[rows["split"] == "train", "image"]) <= tested


def test_tokens_views_and_a_group_on_a_real_tree(clive_tree, tmp_path, monkeypatch):
    from qfm.study import stages
    from qfm.study.tokens import FeatureBank

    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    src = real.source("livec", clive_tree, n_splits=5)
    cfg = tiny_model_cfg()
    feats = tmp_path / "data" / "features" / "livec.safetensors"
    meta = real.extract(cfg, clive_tree, src.table, real.TokenRecipe(32, 2, 24), feats,
                        progress=False)
    bank = FeatureBank(feats)
    assert meta["shape"][0] == 30 * 3 and meta["data"] == real.fingerprint(src.table)
    data = src.load(bank, 0, smoke=False, views=True)
    assert len(data["unlabelled"][0]) == 2 * len(data["train"][0])  # the views: no MOS
    assert set(data) == {"train", "val", "test", "unlabelled"}
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"] = {**raw["model"], **to_dict(cfg)}
    raw["train"].update(epochs=2, lr=1e-3, batch_size=8, patience=0)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    _, study = livec.livec_section(raw)
    study["seeds"] = [0, 1, 2, 3, 4]
    study["groups"]["livec"]["variants"] = ["baseline", "gate_qfm", "full"]
    study["workers"] = 1
    rows = stages.run_group(params, "livec", tmp_path / "livec.json", None, None, False,
                            study=study, source=src)
    frame = pd.DataFrame(rows)
    assert len(frame) == 15 and set(frame["variant"]) == {"baseline", "gate_qfm", "full"}
    assert (frame.loc[frame["variant"] == "full", "pseudo_images"] > 0).all()
    assert frame["test_srcc"].notna().all()
    # the runs' test predictions, read back by the report: the worst photos, thumbnails drawn
    from qfm.report import predictions

    pred = predictions.load_predictions(tmp_path / "livec.predictions.json")
    assert len(pred) == sum(len(src.splits[s].query("split == 'test'")) for s in range(5)) * 3
    assert set(pred["image"]) <= set(src.table["image"])
    worst = predictions.worst_frame(pred, "gate_qfm", k=4)
    assert len(worst) == 4 and worst["error"].is_monotonic_decreasing
    strip = predictions.thumbnail_strip(worst, tmp_path / "worst.png", root=clive_tree)
    assert Image.open(strip).size[0] > 0


def test_status_is_stale_when_code_or_params_change(tmp_path, monkeypatch):
    monkeypatch.setenv("QFM_HOME", str(ROOT))
    params = {"livec": {"resize": 500}}
    prov = record.provenance({"images": 3}, params, 1.0, command="qfm livec")
    (tmp_path / "provenance.json").write_text(__import__("json").dumps(prov))
    assert record.status(tmp_path, params)["stale"] is False
    assert record.status(tmp_path, {"livec": {"resize": 384}})["stale"] is True
    assert record.status(tmp_path / "none", params)["present"] is False


def params_without_data(tmp_path, monkeypatch) -> Path:
    """A params.yaml whose CLIVE root is nowhere, in a home with no data (no ../shared)."""
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    monkeypatch.delenv("QFM_DATA", raising=False)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["livec"]["root"] = str(tmp_path / "nowhere")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    return params


@pytest.mark.parametrize("stage,kept", [("livec", "livec.json"), ("livec_finetune", "finetune.json")])
def test_the_stage_without_data_changes_nothing(stage, kept, tmp_path, monkeypatch, capsys):
    from qfm.study import finetune

    params = params_without_data(tmp_path, monkeypatch)
    out = tmp_path / "measured"
    out.mkdir()
    (out / kept).write_text('{"rows": []}')
    run = livec.run_livec if stage == "livec" else finetune.run_finetune
    res = run(params, out, progress=False)
    assert res["status"] == "no data" and "no CLIVE copy found" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [kept]


@pytest.mark.skipif(not (SHARED / "Data").is_dir(),
                    reason="the CLIVE copy ../shared/data/livec is absent (never in the repo)")
def test_the_shared_copy_gives_tokens_for_a_few_photos(tmp_path):
    src = real.source("livec", SHARED)
    few = src.table.iloc[:3]
    main, views = real.TokenRecipe(500, 1, 384).crops(SHARED / few["image"].iloc[0])
    assert main.shape == (3, 500, 500) and views.shape == (1, 3, 384, 384)  # a whole photo
    recipe = real.TokenRecipe(resize=256, views=1, view_crop=128)  # the tiny ViT: ×8 sides
    meta = real.extract(tiny_model_cfg(), SHARED, few, recipe, tmp_path / "t.safetensors",
                        progress=False)
    assert meta["shape"][0] == 6 and meta["data"]["images"] == 3


def test_the_code_fingerprint_covers_everything_the_stage_runs():
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "system"))
    from test_architecture import MODULES, closure

    files = {MODULES[m].relative_to(ROOT).as_posix()
             for m in closure("qfm.study.livec") | {"qfm.study.livec"}}
    covered = lambda f: any(f == c or f.startswith(c + "/") for c in record.CODE)  # noqa
    assert not [f for f in files if not covered(f)]
