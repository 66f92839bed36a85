"""A real data set reaches training: canonical name, split files, the resize cache."""

from qfm.data.protocol_splits import data_split_main
from qfm.data.sources import load_parts


def test_koniq_parts_read_from_the_resize_cache(koniq_root, monkeypatch, tmp_path):
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    monkeypatch.setenv("QFM_DATA", str(koniq_root.parent))
    assert data_split_main("KonIQ-10k", koniq_root, n=2, seed=0) == 0
    root, parts = load_parts("KonIQ-10k", 0)
    assert root == koniq_root.parent / "cache" / "koniq10k"
    images = [im for part in parts.values() for im in part["image"]]
    assert images and all((root / im).is_file() for im in images)
    official_root, official = load_parts("koniq10k", -1, use_cache=False)
    assert official_root == koniq_root and sum(len(p) for p in official.values()) > 0
