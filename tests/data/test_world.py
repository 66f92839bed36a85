import hashlib

import numpy as np
import pandas as pd
import pytest

from qfm.config import WorldConfig
from qfm.data.distortions import LEVELS, distort, pseudo_mos
from qfm.data.world import (generate, load_photo, make_contents, pixel_overlap, spurious_train,
                            tile_boxes)

SMALL = dict(photos=["astronaut", "coffee", "chelsea", "rocket"], heldout_photos=["coffee"],
             contents_per_photo=4, distortions=["gaussian_blur", "jpeg"], levels=2,
             unlabelled_per_content=1, split=[0.5, 0.25, 0.25])


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
    out = generate(WorldConfig(**SMALL), tmp_path, n_splits=3, progress=False)
    table = pd.read_csv(out / "table.csv")
    contents = pd.read_csv(out / "contents.csv")
    assert len(table) == len(contents) * 2 * 2
    assert table["mos"].between(0, 1).all() and table["raw"].between(0, 100).all()
    for k in range(3):
        split = pd.read_csv(out / "splits" / f"split_{k}.csv").merge(table, on="image")
        per_content = split.groupby("content")["split"].nunique()
        assert (per_content == 1).all(), "a content appears in two parts"
        assert set(split["split"]) == {"train", "val", "test", "heldout"}
        held = split.loc[split["split"] == "heldout", "content"].str.rsplit("_", n=1).str[0]
        assert set(held) == {"coffee"}, "held-out photos form their own part"
        inside = split.loc[split["split"] != "heldout", "content"].str.rsplit("_", n=1).str[0]
        assert "coffee" not in set(inside)
    with np.load(out / "upstream.npz") as z:  # toy upstream: training tiles only
        assert z["images"].shape[1:] == (96, 96, 3) and len(z["names"]) >= 1


def test_parts_share_no_pixel(tmp_path):
    out = generate(WorldConfig(**SMALL), tmp_path, n_splits=3, progress=False)
    contents = pd.read_csv(out / "contents.csv")
    table = pd.read_csv(out / "table.csv")
    for k in range(3):
        split = pd.read_csv(out / "splits" / f"split_{k}.csv").merge(table, on="image")
        per_content = split[["content", "split"]].drop_duplicates()
        assert pixel_overlap(contents, per_content) == {"val": 0, "test": 0, "heldout": 0}
    # the measure itself sees an overlap when one is there
    fake = contents.iloc[:2].copy()
    fake.loc[fake.index[1], ["photo", "y", "x"]] = [fake.iloc[0]["photo"], fake.iloc[0]["y"] + 10,
                                                   fake.iloc[0]["x"] + 10]
    part = pd.DataFrame({"content": fake["content"], "split": ["train", "test"]})
    side = int(fake.iloc[0]["side"])
    assert pixel_overlap(fake, part)["test"] == (side - 10) ** 2


def test_tiles_do_not_overlap_and_cover_a_grid():
    boxes = tile_boxes((400, 600, 3), 128, 4)
    assert len(boxes) == 3 * 4
    for i, (y, x, s) in enumerate(boxes):
        for y2, x2, s2 in boxes[i + 1:]:
            assert min(y + s, y2 + s2) <= max(y, y2) or min(x + s, x2 + s2) <= max(x, x2)


def test_photos_from_three_packages_load_offline():
    for name in ("china", "flower", "grace_hopper", "chelsea"):
        img = load_photo(name)
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    with pytest.raises(ValueError, match="kept outside the world"):
        make_contents(WorldConfig(photos=["grace_hopper"]))


def _train_part(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in ("a", "b", "c", "d"):
        for c in range(3):
            for i in range(20):
                rows.append({"image": f"{p}_{c}_{i}", "content": f"{p}_{c:02d}",
                             "mos": rng.uniform()})
    return pd.DataFrame(rows)


def test_spurious_keeps_half_of_each_photo_and_makes_photo_predict_quality():
    train = _train_part()
    photo = lambda df: df["content"].str.rsplit("_", n=1).str[0]  # noqa: E731
    gaps = {}
    for s in (0.0, 0.5, 1.0):
        kept = spurious_train(train, s, seed=3)
        assert len(kept) == len(train) // 2
        assert (photo(kept).value_counts() == 30).all()
        means = kept.groupby(photo(kept))["mos"].mean()
        gaps[s] = float(means.max() - means.min())
    assert gaps[0.0] < gaps[0.5] < gaps[1.0]
    assert gaps[1.0] > 0.4  # mild photos keep their best half, severe ones their worst
    pd.testing.assert_frame_equal(spurious_train(train, 0.5, 3), spurious_train(train, 0.5, 3))
    with pytest.raises(ValueError, match="world.spurious"):
        spurious_train(train, 1.5, 0)


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
