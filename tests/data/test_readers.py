"""The readers turn each real distribution format into the canonical table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from qfm.data.readers import (FACTS, READERS, DataError, canonical_name, read_dataset)
from qfm.data.table import COLUMNS


def _canonical(df: pd.DataFrame, n: int):
    assert list(df.columns[:len(COLUMNS)]) == COLUMNS
    assert len(df) == n
    assert not df["image"].duplicated().any()
    assert all("\\" not in p and not p.startswith("/") for p in df["image"])


def test_facts_cover_the_eight_sets():
    assert set(FACTS) == set(READERS) == {"live", "csiq", "tid2013", "kadid10k", "livec",
                                          "koniq10k", "spaq", "flive"}
    assert {k: f.expected for k, f in FACTS.items()} == {
        "live": 779, "csiq": 866, "tid2013": 3000, "kadid10k": 10125, "livec": 1162,
        "koniq10k": 10073, "spaq": 11125, "flive": 39810}
    assert [k for k, f in FACTS.items() if f.synthetic] == ["live", "csiq", "tid2013",
                                                            "kadid10k"]


@pytest.mark.parametrize("alias,key", [("KonIQ-10k", "koniq10k"), ("CLIVE", "livec"),
                                       ("LIVE", "live"), ("kadid-10k", "kadid10k"),
                                       ("TID2013", "tid2013"), ("PaQ-2-PiQ", "flive")])
def test_canonical_name(alias, key):
    assert canonical_name(alias) == key


def test_unknown_name_is_one_line():
    with pytest.raises(DataError, match="unknown data set 'imagenet'") as e:
        canonical_name("imagenet")
    assert "\n" not in str(e.value)


def test_live_drops_reference_copies_and_flips_dmos(live_root):
    df = read_dataset("live", live_root)
    _canonical(df, 779)  # 982 rows minus the 203 flagged by orgs
    assert df.attrs["source"] == "dmos.mat"
    assert "jp2k/img1.bmp" not in set(df["image"])  # index 0 is flagged
    assert "jp2k/img1.bmp" in df.attrs["ignore"] and len(df.attrs["ignore"]) == 203
    assert df["image"].iloc[0] == "jp2k/img2.bmp"
    assert set(df["distortion"]) == {"jp2k", "jpeg", "wn", "gblur", "fastfading"}
    assert df["content"].nunique() == 29 and "parrots" in set(df["content"])
    # DMOS: lower = better, so the smallest DMOS gets the highest normalised score
    assert df["mos"].iloc[df["raw"].argmin()] == df["mos"].max()
    np.testing.assert_allclose(df["mos"], 1 - df["raw"] / 100)


def test_live_realigned_has_std(live_root):
    (live_root / "dmos.mat").unlink()
    n = 982
    orgs = np.zeros((1, n))
    orgs[0, :5] = 1
    savemat(live_root / "dmos_realigned.mat", {"dmos_new": np.full((1, n), 40.0),
                                               "dmos_std": np.full((1, n), 7.0), "orgs": orgs})
    df = read_dataset("live", live_root)
    assert len(df) == n - 5 and df.attrs["source"] == "dmos_realigned.mat"
    assert (df["std"] == 7.0).all()


def test_live_wrong_length_is_reported(live_root):
    savemat(live_root / "dmos.mat", {"dmos": np.zeros((1, 10)), "orgs": np.zeros((1, 10))})
    with pytest.raises(DataError, match="expected 982 entries, found 10"):
        read_dataset("live", live_root)


def test_csiq_workbook(csiq_root):
    df = read_dataset("CSIQ", csiq_root)
    _canonical(df, 18)
    assert "dst_imgs/awgn/1600.AWGN.1.png" in set(df["image"])
    assert "dst_imgs/jpeg2000/aerial_city.jpeg2000.2.png" in set(df["image"])
    assert set(df["content"]) == {"1600", "aerial_city", "boston"}
    assert set(df["distortion"]) == {"awgn", "jpeg2000", "blur"}
    assert (df["std"] == 0.05).all()
    np.testing.assert_allclose(df["mos"], 1 - df["raw"])  # DMOS on 0-1, flipped
    assert all((csiq_root / p).is_file() for p in df["image"])


def test_csiq_text_form(csiq_root):
    (csiq_root / "csiq.DMOS.xlsx").unlink()
    (csiq_root / "csiq_label.txt").write_text("1600.AWGN.1.png 0.061989\n"
                                              "1600.BLUR.2.png 0.5\n")
    df = read_dataset("csiq", csiq_root)
    assert list(df["image"]) == ["dst_imgs/awgn/1600.AWGN.1.png", "dst_imgs/blur/1600.BLUR.2.png"]
    assert list(df["level"]) == [1, 2] and list(df["content"]) == ["1600", "1600"]


def test_tid2013_crlf_and_mixed_case(tid_root):
    df = read_dataset("tid2013", tid_root)
    _canonical(df, 18)
    assert all((tid_root / p).is_file() for p in df["image"])  # resolved to disk names
    assert "distorted_images/i02_01_1.bmp" in set(df["image"])
    assert set(df["content"]) == {"I01", "I02", "I25"}
    assert not any(str(c).endswith("\r") for c in df["distortion"])
    np.testing.assert_allclose(df["raw"], 7.0 - df["level"])
    np.testing.assert_allclose(df["mos"], df["raw"] / 9)  # MOS 0-9, higher = better
    np.testing.assert_allclose(df["std"], 0.1 * df["level"])


def test_kadid_mos_not_flipped(kadid_root):
    df = read_dataset("kadid10k", kadid_root)
    _canonical(df, 40)
    np.testing.assert_allclose(df["mos"], (df["raw"] - 1) / 4)  # "dmos" column is MOS 1-5
    np.testing.assert_allclose(df["std"], 0.5)  # sqrt(var)
    assert df["content"].nunique() == 10 and "I01" in set(df["content"])
    assert "images/I01.png" in df.attrs["ignore"]
    assert set(df["level"]) == {1, 2}


def test_livec_drops_training_images(livec_root):
    df = read_dataset("livec", livec_root)
    _canonical(df, 5)
    assert not any("t1.bmp" in p for p in df["image"])
    assert "Images/12.JPG" in set(df["image"])
    assert list(df["raw"]) == [10.0, 30.0, 50.0, 70.0, 90.0]
    assert (df["content"] == df["image"]).all()
    assert (df["std"] == 12.5).all()


def test_koniq_official_split_and_folder_fallback(koniq_root):
    df = read_dataset("koniq", koniq_root)
    _canonical(df, 20)
    assert df["image"].str.startswith("512x384/").all()
    assert df["official"].value_counts().to_dict() == {"train": 14, "val": 2, "test": 4}
    np.testing.assert_allclose(df["mos"], df["raw"] / 100)  # the sets file is on 0-100


def test_koniq_scores_file_on_1_to_5(tmp_path, make_koniq):
    root = make_koniq(tmp_path / "k", sets=False)
    df = read_dataset("koniq10k", root)
    assert "official" not in df.columns
    assert df["image"].str.startswith("1024x768/").all()
    np.testing.assert_allclose(df["mos"], (df["raw"] - 1) / 4)
    assert df["mos"].between(0, 1).all()


def test_spaq_workbook(spaq_root):
    df = read_dataset("spaq", spaq_root)
    _canonical(df, 3)
    assert list(df["image"]) == ["TestImage/00001.jpg", "TestImage/00002.jpg",
                                 "TestImage/00003.png"]
    np.testing.assert_allclose(df["mos"], [0.2, 0.55, 0.9])


def test_flive_official_split(flive_root):
    df = read_dataset("flive", flive_root)
    _canonical(df, 10)
    assert df["image"].iloc[0] == "voc_emotic_ava/VOC2012__2011_000000.jpg"
    assert list(df["official"]) == ["train", "val", "train", "train", "val", "train", "train",
                                    "test", "test", "test"]


def test_pyiqa_fr_meta_with_prefix(kadid_meta_root):
    df = read_dataset("kadid10k", kadid_meta_root)
    _canonical(df, 12)
    assert df.attrs["source"] == "meta_info_KADID10kDataset.csv"
    assert df["image"].str.startswith("images/").all()  # names were relative to images/
    assert set(df["content"]) == {"I01", "I02", "I03"}
    np.testing.assert_allclose(df["mos"], (df["raw"] - 1) / 4)  # facts decide direction
    assert "images/I01.png" in df.attrs["ignore"]


def test_pyiqa_nr_meta_official(koniq_meta_root):
    df = read_dataset("koniq10k", koniq_meta_root)
    _canonical(df, 20)
    assert df["official"].value_counts().to_dict() == {"train": 14, "val": 2, "test": 4}
    assert all((koniq_meta_root / p).is_file() for p in df["image"])


def test_pyiqa_flive_meta_drops_patches(flive_root):
    labels = pd.read_csv(flive_root / "labels_image.csv")
    for f in ("labels_image.csv", "labels640.csv", "labels<=640_padded.csv"):
        (flive_root / f).unlink()
    patches = [n.replace(".jpg", ".jpg_patch_1.jpg") for n in labels["name"][:3]]
    meta = pd.DataFrame({"img_name/patch_name": list(labels["name"]) + patches,
                         "mos": list(labels["mos"]) + [1.0] * 3,
                         "split": [0] * 7 + [2] * 3 + [0] * 3})
    meta.to_csv(flive_root / "meta_info_FLIVEDataset.csv", index=False)
    df = read_dataset("flive", flive_root)
    _canonical(df, 10)
    assert df["official"].tolist() == ["train"] * 7 + ["test"] * 3


def test_synthetic_meta_without_ref_name_fails(tmp_path):
    root = tmp_path / "tid"
    root.mkdir()
    pd.DataFrame({"img_name": ["I01_01_1.bmp"], "mos": [5.0]}).to_csv(
        root / "meta_info_TID2013Dataset.csv", index=False)
    with pytest.raises(DataError, match="ref_name"):
        read_dataset("tid2013", root)


def test_original_files_win_over_meta(kadid_root):
    (kadid_root / "meta_info_KADID10kDataset.csv").write_text("ref_name,dist_name,dmos\n")
    assert read_dataset("kadid10k", kadid_root).attrs["source"] == "dmos.csv"


@pytest.mark.parametrize("name", sorted(FACTS))
def test_missing_root_and_label_file(name, tmp_path):
    with pytest.raises(DataError, match="not found") as e:
        read_dataset(name, tmp_path / "nowhere")
    assert "\n" not in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"expected {FACTS[name].label_files[0]}") as e:
        read_dataset(name, tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value) and "\n" not in str(e.value)


def test_livec_missing_second_mat_names_it(livec_root):
    (livec_root / "Data" / "AllImages_release.mat").unlink()
    with pytest.raises(DataError, match="expected Data/AllImages_release.mat in"):
        read_dataset("livec", livec_root)


def test_unparseable_label_becomes_nan(kadid_root):
    df = pd.read_csv(kadid_root / "dmos.csv")
    df["dmos"] = df["dmos"].astype(object)
    df.loc[3, "dmos"] = "n/a"
    df.to_csv(kadid_root / "dmos.csv", index=False)
    out = read_dataset("kadid10k", kadid_root)
    assert np.isnan(out["raw"].iloc[3]) and np.isfinite(out["raw"].drop(index=3)).all()


def test_livec_reads_the_release_names_and_a_lossless_png_copy(livec_root):
    # the release names BMPs; a copy may hold them as PNG (same pixels), and the other way round
    (livec_root / "Images" / "10.bmp").rename(livec_root / "Images" / "10.png")
    df = read_dataset("livec", livec_root)
    assert "Images/10.png" in set(df["image"]) and "Images/11.bmp" in set(df["image"])
    assert "Images/12.JPG" in set(df["image"]) and len(df) == 5
    assert all((livec_root / p).is_file() for p in df["image"])


SHARED_LIVEC = Path(__file__).resolve().parents[3] / "shared" / "data" / "livec"


@pytest.mark.skipif(not (SHARED_LIVEC / "Data").is_dir(),
                    reason="the CLIVE copy ../shared/data/livec is absent (never in the repo)")
def test_the_shared_clive_copy_reads_with_its_png_names():
    df = read_dataset("livec", SHARED_LIVEC)
    assert len(df) == 930  # 930 of the release's 1162 test images are in the copy
    assert df["raw"].between(0, 100).all() and df["mos"].between(0, 1).all()
    exts = {p.rsplit(".", 1)[1] for p in df["image"]}
    assert exts == {"png", "JPG"}
    assert all((SHARED_LIVEC / p).is_file() for p in df["image"].iloc[::93])
