"""``qfm.load_scorer()``: two lines of Python score a path, a PIL image, a tensor or a list,
exactly as ``qfm predict`` scores the same files; a checkpoint's own preprocessing (the
CLIVE head's short side) is applied; bad input is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import qfm
from qfm.config import to_dict
from qfm.core.checkpoint import save_tensors
from qfm.models import build_model
from qfm.predict import score_files


def _save(path, cfg, **meta):
    torch.manual_seed(0)
    save_tensors(build_model(cfg.model).state_dict(), path,
                 {"config": to_dict(cfg), "label_scale": {"offset": 10.0, "scale": 80.0},
                  **meta})
    return path


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    files = []
    for i, (w, h) in enumerate([(60, 40), (45, 70), (50, 50)]):
        f = tmp_path / f"p{i}.png"
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(f)
        files.append(f)
    return files


def test_two_lines_score_paths_images_tensors_as_predict_does(tmp_path, make_cfg, photos):
    ck = _save(tmp_path / "m.safetensors", make_cfg(train={"test_crops": 3}), dataset="world")
    scorer = qfm.load_scorer(ck)
    want = score_files([str(p) for p in photos], ck, workers=0, progress=False)["score"]
    got = scorer([str(p) for p in photos])
    np.testing.assert_allclose(got, want.to_numpy(), rtol=0, atol=1e-5)
    one = scorer(photos[0])
    assert isinstance(one, float) and one == pytest.approx(want[0], abs=1e-5)
    im = Image.open(photos[1])
    assert scorer(im) == pytest.approx(want[1], abs=1e-5)
    t = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    assert scorer(t) == pytest.approx(want[1], abs=1e-5)
    assert scorer(t[None]).shape == (1,)


def test_a_checkpoint_s_short_side_resize_is_applied(tmp_path, make_cfg, photos):
    cfg = make_cfg(model={"img_size": 32}, train={"test_crops": 1})
    ck = _save(tmp_path / "c.safetensors", cfg, dataset="livec",
               preprocess={"short_side": 32, "crops": 1})
    scorer = qfm.load_scorer(ck)
    want = score_files([str(p) for p in photos], ck, workers=0, progress=False)["score"]
    np.testing.assert_allclose(scorer(photos), want.to_numpy(), rtol=0, atol=1e-5)
    assert scorer.resize(60, 40) == (48, 32)  # the short side to 32 px, aspect kept


def test_bad_input_is_a_clear_error(tmp_path, make_cfg):
    ck = _save(tmp_path / "m.safetensors", make_cfg(), dataset="world")
    scorer = qfm.load_scorer(ck)
    with pytest.raises(TypeError, match="cannot score a dict"):
        scorer({"not": "an image"})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scorer(torch.full((3, 40, 40), 255.0))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        qfm.load_scorer(tmp_path / "missing.safetensors")
