"""The fine-tuning regime: packed tail inputs of a real tree and of the world, a group whose
runs train the upstream's last stage, pairing by seed, and the stage without data."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import yaml
from test_real import ROOT, clive_tree, params_without_data  # noqa: F401  (clive_tree: fixture)

from qfm.config import ConfigError, RunConfig, override, to_dict
from qfm.study import finetune, real


def lite_cfg():
    return override(RunConfig(), {"model.backbone": "tf_efficientnet_lite0",
                                  "model.weights": "none", "model.img_size": 64,
                                  "model.tokens": "multiscale", "model.grid": 2,
                                  "model.dim": 16, "model.heads": 2}).model


def _params(tmp_path, cfg, batch_size: int = 8, **sections) -> tuple:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"] = {**raw["model"], **to_dict(cfg)}
    raw["train"].update(epochs=2, lr=1e-3, batch_size=batch_size, patience=0)
    for k, v in sections.items():
        raw[k] = {**raw[k], **v}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return raw, path


def test_a_group_trains_the_tail_on_a_real_tree(clive_tree, tmp_path, monkeypatch):  # noqa: F811
    from qfm.core.checkpoint import load_tensors
    from qfm.study import livec, stages

    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    torch.manual_seed(0)
    src = real.source("livec", clive_tree, n_splits=3)
    cfg = lite_cfg()
    feats = tmp_path / "data" / "features" / "livec_tail.safetensors"
    with pytest.raises(ConfigError, match="view_crop"):
        finetune.extract_real(cfg, clive_tree, src.table, real.TokenRecipe(64, 2, 48), feats)
    meta = finetune.extract_real(cfg, clive_tree, src.table,
                                 real.TokenRecipe(64, 2, 64, view_resize=96), feats,
                                 progress=False)
    assert meta["shape"][0] == 30 * 3 and meta["tail"]["map"] == [192, 2, 2]
    tensors, _ = load_tensors(feats)
    assert not torch.equal(tensors["tokens"][0], tensors["tokens"][30])  # a view ≠ its photo
    raw, params = _params(tmp_path, cfg)
    _, study = livec.livec_section(raw)
    study.update(features="livec_tail", seeds=[0, 1, 2], workers=1,
                 groups={"finetune": {"spurious": 0.0,
                                      "variants": ["baseline", "gate_qfm", "full"]}})
    runs = []
    for _ in range(2):  # twice: the same seed gives the same numbers
        rows = stages.run_group(params, "finetune", tmp_path / "ft.json", None, None, False,
                                study=study, source=src)
        runs.append(pd.DataFrame(rows))
    frame = runs[0]
    assert len(frame) == 9 and frame["test_srcc"].notna().all()
    assert (frame.loc[frame["variant"] == "full", "pseudo_images"] > 0).all()
    pd.testing.assert_frame_equal(frame[["val_srcc", "test_srcc"]],
                                  runs[1][["val_srcc", "test_srcc"]])


def test_the_tail_trains_and_world_inputs_cover_every_image(tmp_path, monkeypatch):
    from qfm import paths
    from qfm.config import WorldConfig, load_params
    from qfm.data.world import generate
    from qfm.study import runner as runs
    from qfm.study.tokens import world_images

    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    world = dict(photos=["astronaut", "chelsea"], heldout_photos=["chelsea"],
                 contents_per_photo=4, distortions=["gaussian_blur", "jpeg"], levels=3,
                 unlabelled_per_content=1, split=[0.5, 0.25, 0.25], size=64)
    generate(WorldConfig(**world), paths.world_dir(), n_splits=1, progress=False)
    cfg = lite_cfg()
    out = paths.features_dir() / "tail.safetensors"
    meta = finetune.extract_world(cfg, out, 1, progress=False)
    assert meta["shape"][0] == len(world_images()) and meta["tail"]["lr_scale"] == 0.1
    raw, params = _params(tmp_path, cfg, batch_size=4, world=world)  # 6 training images
    spec = runs.make_specs(raw, load_params(params), ["gate"], [0], 0.0)[0]
    res = runs.run_specs([spec], str(out), str(paths.world_dir()), 1, False)[0]
    from qfm.models import create_backbone

    init = create_backbone(cfg).blocks[-1].state_dict()
    key = f"backbone.blocks.{meta['tail']['split']}.{{}}".format  # the slice keeps its index
    moved = [k for k, v in init.items() if v.is_floating_point() and "running" not in k
             and not torch.equal(v, res["state"][key(k)])]
    assert moved  # the tail's weights trained
    assert all(torch.equal(init[k], res["state"][key(k)])
               for k in init if "running" in k)  # its batch-norm statistics did not


def test_the_stage_needs_its_group(tmp_path, monkeypatch):
    params = params_without_data(tmp_path, monkeypatch)
    raw = yaml.safe_load(params.read_text())
    del raw["study"]["groups"]["finetune"]
    params.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="study.groups.finetune"):
        finetune.run_finetune(params, tmp_path / "out", progress=False)
