"""The protocol's splits: seeded, by reference for synthetic sets, official ones reproduced."""

from __future__ import annotations

import pandas as pd
import pytest

from qfm import paths
from qfm.data.protocol_splits import (data_split_main, make_splits, official_split_file,
                                      split_seed, write_splits)
from qfm.data.readers import read_dataset
from qfm.data.splits import read_split


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Point the project's working root at a temporary folder (split files go there)."""
    monkeypatch.setenv("QFM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_deterministic_and_seed_dependent(kadid_root):
    table = read_dataset("kadid10k", kadid_root)
    a, b = make_splits("kadid10k", table), make_splits("kadid10k", table)
    assert list(a) == [str(k) for k in range(10)]
    assert all(a[k].equals(b[k]) for k in a)
    c = make_splits("kadid10k", table, seed=1)
    assert not all(a[k].equals(c[k]) for k in a)
    assert len({tuple(a[k]["split"]) for k in a}) > 1  # the 10 splits differ from each other
    assert split_seed(0, 3) == split_seed(0, 3) != split_seed(1, 3)


def test_row_order_does_not_matter(kadid_root):
    table = read_dataset("kadid10k", kadid_root)
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = make_splits("kadid10k", table, n=3)["2"].set_index("image")["split"]
    b = make_splits("kadid10k", shuffled, n=3)["2"].set_index("image")["split"]
    assert a.sort_index().equals(b.sort_index())


def test_synthetic_split_by_reference(tid_root, kadid_root):
    for name, root in (("tid2013", tid_root), ("kadid10k", kadid_root)):
        table = read_dataset(name, root)
        for split in make_splits(name, table).values():
            merged = table.merge(split, on="image")
            parts_per_content = merged.groupby("content")["split"].nunique()
            assert (parts_per_content == 1).all()  # no reference in two parts
    # 10 references -> 7 train, 1 val, 2 test references
    split = make_splits("kadid10k", read_dataset("kadid10k", kadid_root))["0"]
    counts = split["split"].value_counts().to_dict()
    assert counts == {"train": 28, "val": 4, "test": 8}


def test_authentic_split_by_image(koniq_root):
    table = read_dataset("koniq10k", koniq_root)
    table["content"] = "same"  # must be ignored: authentic sets split by image
    split = make_splits("koniq10k", table)["0"]
    assert split["split"].value_counts().to_dict() == {"train": 14, "test": 4, "val": 2}


def test_official_splits_reproduced(koniq_root, flive_root):
    koniq = read_dataset("koniq10k", koniq_root)
    off = make_splits("koniq10k", koniq)["official"]
    assert list(off["split"]) == list(koniq["official"])
    assert off["split"].value_counts().to_dict() == {"train": 14, "test": 4, "val": 2}
    flive = make_splits("flive", read_dataset("flive", flive_root))["official"]
    assert flive.set_index("image")["split"].to_dict() == {
        **{f"voc_emotic_ava/VOC2012__2011_{i:06d}.jpg": p
           for i, p in enumerate(["train", "val", "train", "train", "val", "train"])},
        "blur_dataset/motion0000.jpg": "train", "blur_dataset/motion0001.jpg": "test",
        "blur_dataset/motion0002.jpg": "test", "blur_dataset/motion0003.jpg": "test"}


def test_no_official_for_random_only_sets(livec_root):
    assert "official" not in make_splits("livec", read_dataset("livec", livec_root))


def test_write_and_read_back(koniq_root, home):
    table = read_dataset("KonIQ-10k", koniq_root)
    written = write_splits("KonIQ-10k", make_splits("koniq10k", table, n=2))
    assert written == [paths.split_file("koniq10k", 0), paths.split_file("koniq10k", 1),
                       official_split_file("koniq10k")]
    assert official_split_file("koniq10k") == home.resolve() / "splits/koniq10k" \
        / "split_official.csv"
    parts = read_split(official_split_file("koniq10k"), table)
    assert {k: len(v) for k, v in parts.items()} == {"train": 14, "val": 2, "test": 4}


def test_data_split_main(kadid_root, home, capsys):
    assert data_split_main("KADID-10k", kadid_root, n=3, seed=5) == 0
    files = sorted(p.name for p in (home / "splits" / "kadid10k").iterdir())
    assert files == ["split_0.csv", "split_1.csv", "split_2.csv"]
    first = (home / "splits" / "kadid10k" / "split_0.csv").read_bytes()
    assert data_split_main("kadid10k", kadid_root, n=3, seed=5) == 0
    assert (home / "splits" / "kadid10k" / "split_0.csv").read_bytes() == first
    assert len(capsys.readouterr().out.splitlines()) == 6
    df = pd.read_csv(home / "splits" / "kadid10k" / "split_0.csv")
    assert list(df.columns) == ["image", "split"] and len(df) == 40


def test_data_split_main_missing_labels(tmp_path, home, capsys):
    assert data_split_main("spaq", tmp_path / "nope") == 1
    assert "not found" in capsys.readouterr().err
