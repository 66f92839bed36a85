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
