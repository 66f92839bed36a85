"""`qfm data check` finds every problem of a data-set folder in one run."""

from __future__ import annotations

import json

import pandas as pd

from qfm.data.check import check_dataset, data_check_main


def _errors(report):
    return [p for p in report["problems"] if p.startswith("error:")]


def _warnings(report):
    return [p for p in report["problems"] if p.startswith("warning:")]


def test_clean_tree_is_usable_with_count_warning(kadid_root):
    r = check_dataset("kadid10k", kadid_root)
    assert r["usable"] and r["images"] == r["rows"] == 40 and r["expected"] == 10125
    assert _errors(r) == []
    # the 10 references share images/ with the distorted images but are not "extra"
    assert _warnings(r) == [p for p in r["problems"] if "label rows" in p]
    assert len(_warnings(r)) == 1 and "10125" in _warnings(r)[0]


def test_all_problems_in_one_run(kadid_root, write_image):
    df = pd.read_csv(kadid_root / "dmos.csv")
    df["dmos"] = df["dmos"].astype(float)
    df.loc[5, "dmos"] = float("nan")  # NaN label
    df.to_csv(kadid_root / "dmos.csv", index=False)
    (kadid_root / "images" / df.loc[0, "dist_img"]).unlink()  # missing image
    (kadid_root / "images" / df.loc[1, "dist_img"]).write_bytes(b"not a png")  # corrupt
    write_image(kadid_root / "images" / "I77_01_01.png")  # extra image, no row

    r = check_dataset("kadid10k", kadid_root)
    errors, warnings = _errors(r), _warnings(r)
    assert any("missing image images/I01_01_01.png" in p for p in errors)
    assert any("unreadable image images/I01_01_02.png" in p for p in errors)
    assert any("NaN/inf label images/I02_01_02.png" in p for p in errors)
    assert len(errors) == 3 and r["errors"] == 3
    assert any("without a label row images/I77_01_01.png" in p for p in warnings)
    assert any("label rows" in p for p in warnings) and len(warnings) == 2
    assert r["images"] == 37 and r["rows"] == 40 and not r["usable"]
    assert r["counts"] == {"duplicate": 0, "missing": 1, "unreadable": 1, "bad_label": 1,
                           "out_of_range": 0, "extra": 1, "count_mismatch": 1}
    assert r["warnings"] == 2


def test_out_of_range_label_is_a_warning(koniq_root):
    df = pd.read_csv(koniq_root / "koniq10k_distributions_sets.csv")
    df.loc[2, "MOS"] = 140.0
    df.to_csv(koniq_root / "koniq10k_distributions_sets.csv", index=False)
    r = check_dataset("koniq10k", koniq_root)
    assert r["usable"] and _errors(r) == []
    assert any("out of range 512x384/1002.jpg" in p for p in _warnings(r))


def test_reference_copies_and_reference_folder_not_extra(live_root):
    r = check_dataset("live", live_root)
    extra = [p for p in r["problems"] if "without a label row" in p]
    assert extra == []  # jp2k/img1.bmp is an orgs copy, refimgs/ is not scanned
    assert r["rows"] == 779 and not any("label rows" in p for p in r["problems"])


def test_livec_training_images_not_extra(livec_root):
    r = check_dataset("livec", livec_root)
    assert r["usable"] and r["images"] == 5
    assert not any("without a label row" in p for p in r["problems"])


def test_long_lists_are_summed_up(kadid_root):
    for p in (kadid_root / "images").glob("I0[1-4]_*.png"):
        p.unlink()
    r = check_dataset("kadid10k", kadid_root, limit=5)
    missing = [p for p in r["problems"] if "missing image" in p]
    assert len(missing) == 6 and "and 11 more missing image (total 16)" in missing[-1]
    assert r["images"] == 24 and r["errors"] == r["counts"]["missing"] == 16


def test_missing_root_reported_not_raised(tmp_path):
    r = check_dataset("spaq", tmp_path / "nope")
    assert not r["usable"] and r["errors"] == 1 and "not found" in r["problems"][0]


def test_deep_check_catches_truncated_jpeg(spaq_root, write_image):
    path = spaq_root / "TestImage" / "00001.jpg"
    write_image(path, size=(64, 48))
    path.write_bytes(path.read_bytes()[:-200])
    assert check_dataset("spaq", spaq_root, deep=True)["errors"] == 1


def test_main_text_and_json(kadid_root, capsys):
    assert data_check_main("kadid10k", kadid_root, as_json=False) == 0
    out = capsys.readouterr().out
    assert "usable images 40 of 40 rows" in out and "usable: 0 error(s)" in out
    assert data_check_main("KADID-10k", kadid_root, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "kadid10k" and report["images"] == 40
    assert isinstance(report["problems"], list)
    (kadid_root / "images" / "I01_01_01.png").unlink()
    assert data_check_main("kadid10k", kadid_root, as_json=True) == 1
    assert json.loads(capsys.readouterr().out)["usable"] is False


def test_main_unknown_name(tmp_path, capsys):
    assert data_check_main("imagenet", tmp_path, as_json=True) == 1
    assert "unknown data set" in json.loads(capsys.readouterr().out)["problems"][0]


def test_duplicate_rows_do_not_hide_other_problems(kadid_root):
    df = pd.read_csv(kadid_root / "dmos.csv")
    pd.concat([df, df.iloc[[7]]]).to_csv(kadid_root / "dmos.csv", index=False)
    (kadid_root / "images" / df.loc[0, "dist_img"]).unlink()
    r = check_dataset("kadid10k", kadid_root)
    errors = _errors(r)
    assert any("several label rows images/I02_02_02.png" in p for p in errors)
    assert any("missing image images/I01_01_01.png" in p for p in errors)
    assert len(errors) == 2 and not r["usable"]
