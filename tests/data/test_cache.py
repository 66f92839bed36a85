"""Resized copies of SPAQ and KonIQ: right sizes, atomic, resumable."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from qfm.data.cache import build_cache, target_size
from qfm.data.readers import DataError, read_dataset
from qfm.data.table import read_table


def test_target_sizes():
    assert target_size("spaq", 4000, 3000) == (683, 512)
    assert target_size("spaq", 3000, 4000) == (512, 683)
    assert target_size("koniq10k", 1024, 768) == (512, 384)
    assert target_size("kadid10k", 512, 384) == (512, 384)  # no resize defined


def test_spaq_short_side_512(spaq_root, tmp_path):
    table = read_dataset("spaq", spaq_root)
    out = tmp_path / "cache"
    cached = build_cache("spaq", table, spaq_root, out)
    sizes = [Image.open(out / p).size for p in cached["image"]]
    assert sizes == [(683, 512), (512, 1024), (512, 512)]
    assert list(cached["image"]) == ["TestImage/00001.png", "TestImage/00002.png",
                                     "TestImage/00003.png"]
    assert list(cached["mos"]) == list(table["mos"])
    assert read_table(out / "table.csv")["image"].tolist() == cached["image"].tolist()
    assert not list(out.rglob("*.tmp"))


def test_cache_skips_done_files_and_redoes_wrong_ones(koniq_root, tmp_path):
    table = read_dataset("koniq10k", koniq_root).head(3)
    out = tmp_path / "cache"
    cached = build_cache("koniq10k", table, koniq_root, out, fmt="jpg")
    assert all(Image.open(out / p).size == (512, 384) for p in cached["image"])
    first, second = (out / p for p in cached["image"][:2])
    os.utime(first, (1, 1))  # a stale mtime survives only if the file is skipped
    Image.new("RGB", (10, 10)).save(second, format="JPEG")  # wrong size: must be redone
    build_cache("koniq10k", table, koniq_root, out, fmt="jpg")
    assert first.stat().st_mtime == 1 and Image.open(second).size == (512, 384)


def test_cache_errors(kadid_root, spaq_root, tmp_path):
    with pytest.raises(DataError, match="no resize"):
        build_cache("kadid10k", read_dataset("kadid10k", kadid_root), kadid_root, tmp_path)
    (spaq_root / "TestImage" / "00002.jpg").unlink()
    with pytest.raises(DataError, match="1 image.*could not be cached.*00002.jpg"):
        build_cache("spaq", read_dataset("spaq", spaq_root), spaq_root, tmp_path / "c")


def test_cached_copies_and_table_are_world_readable(koniq_root, tmp_path):
    old = os.umask(0o022)
    try:
        table = read_dataset("koniq10k", koniq_root).head(2)
        cached = build_cache("koniq10k", table, koniq_root, tmp_path / "c")
    finally:
        os.umask(old)
    for f in [*(tmp_path / "c" / p for p in cached["image"]), tmp_path / "c" / "table.csv"]:
        assert f.stat().st_mode & 0o777 == 0o644, f


def _rotated_jpeg(path, size=(1024, 768)):
    """A JPEG stored landscape, left half dark, with EXIF orientation 6 (display: rotate 90°
    clockwise, i.e. portrait, the dark half on top)."""
    import numpy as np

    arr = np.full((size[1], size[0], 3), 230, np.uint8)
    arr[:, : size[0] // 2] = 20
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95, exif=exif)
    return path


def test_cache_applies_exif_orientation_as_predict_does(tmp_path):
    import numpy as np
    import pandas as pd

    from qfm.predict import decode, preprocessing_resize

    root = tmp_path / "spaq"
    _rotated_jpeg(root / "TestImage" / "00001.jpg")
    table = pd.DataFrame({"image": ["TestImage/00001.jpg"], "mos": [0.5]})
    cached = build_cache("spaq", table, root, tmp_path / "c")
    im = Image.open(tmp_path / "c" / cached["image"][0])
    assert im.size == (512, 683)  # portrait, as displayed (and as predict sees it)
    arr = np.asarray(im.convert("L"), np.float64)
    assert arr[:300].mean() < 60 and arr[-300:].mean() > 200  # dark half on top
    seen = np.asarray(decode(str(root / table["image"][0]), preprocessing_resize("spaq"))
                      .convert("L"), np.float64)
    assert seen.shape == arr.shape and np.abs(seen - arr).mean() < 3


def test_a_cache_made_before_exif_handling_is_rebuilt(tmp_path):
    import pandas as pd

    root = tmp_path / "koniq10k"
    _rotated_jpeg(root / "1024x768" / "1.jpg")
    table = pd.DataFrame({"image": ["1024x768/1.jpg"], "mos": [0.5]})
    out = tmp_path / "c"
    cached = build_cache("koniq10k", table, root, out)
    f = out / cached["image"][0]
    os.utime(f, (1, 1))
    build_cache("koniq10k", table, root, out)
    assert f.stat().st_mtime == 1  # up to date: skipped
    for marker in out.glob("cache*.json"):
        marker.unlink()  # as an older qfm left it: same size, pixels not rotated
    build_cache("koniq10k", table, root, out)
    assert f.stat().st_mtime != 1
