import hashlib

import numpy as np
import pandas as pd
import pytest

from qfm.config import WorldConfig
from qfm.data.world import LEVELS, distort, generate, pseudo_mos

SMALL = dict(photos=["astronaut", "coffee"], contents_per_photo=2,
             distortions=["gaussian_blur", "jpeg"], levels=2, unlabelled_per_content=1)


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "world.json":
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    a = generate(WorldConfig(**SMALL, seed=0), tmp_path / "a", n_splits=1, progress=False)
    b = generate(WorldConfig(**SMALL, seed=0), tmp_path / "b", n_splits=1, progress=False)
    c = generate(WorldConfig(**SMALL, seed=1), tmp_path / "c", n_splits=1, progress=False)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_world_table_and_splits(tmp_path):
    out = generate(WorldConfig(**SMALL, split=[0.5, 0.25, 0.25]), tmp_path, n_splits=2,
                   progress=False)
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 2 * 2 * 2 * 2
    assert table["mos"].between(0, 1).all() and table["raw"].between(0, 100).all()
    for k in range(2):
        split = pd.read_csv(out / "splits" / f"split_{k}.csv").merge(table, on="image")
        per_content = split.groupby("content")["split"].nunique()
        assert (per_content == 1).all(), "a content appears in two parts"
        assert set(split["split"]) == {"train", "val", "test"}
    with np.load(out / "upstream.npz") as z:
        assert z["images"].shape[1:] == (96, 96, 3) and z["labels"].max() == 2 * 4 - 1


def test_pseudo_mos_orders_levels():
    rng = np.random.default_rng(0)
    ref = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    from skimage import data

    ref = data.astronaut()[100:228, 100:228]
    for kind, grid in LEVELS.items():
        scores = [pseudo_mos(ref, distort(ref, kind, s, np.random.default_rng(1))) for s in grid]
        assert scores[0] > scores[-1], kind
        assert all(0 <= s <= 100 for s in scores)
    assert pseudo_mos(ref, ref) == pytest.approx(100.0)


def test_unknown_distortion_is_named(tmp_path):
    with pytest.raises(ValueError, match="world.distortions: unknown distortion 'warp'"):
        generate(WorldConfig(**{**SMALL, "distortions": ["warp"]}), tmp_path, progress=False)
