import json

import pytest

from qfm.protocol import cross_dataset, parse_splits, run_protocol


def test_parse_splits():
    assert parse_splits("0-3") == [0, 1, 2, 3]
    assert parse_splits("0,2, official") == [0, 2, -1]
    with pytest.raises(ValueError, match="no split"):
        parse_splits(" ")


def test_protocol_two_splits_and_cross(tiny_home, tmp_path, make_cfg):
    cfg = make_cfg(train={"epochs": 1})
    res = run_protocol(cfg, "world", [0, 1], tmp_path / "runs", progress=False)
    assert [r["split"] for r in res["splits"]] == [0, 1]
    srcc = [r["srcc"] for r in res["splits"]]
    s = res["summary"]["srcc"]
    assert s["n"] == 2 and s["median"] == pytest.approx(sum(srcc) / 2)
    assert set(res["summary"]) >= {"srcc", "plcc", "plcc_logistic", "krcc"}
    saved = json.loads((tmp_path / "runs" / "world" / "protocol.json").read_text())
    assert saved["summary"]["srcc"]["n"] == 2
    ck = tmp_path / "runs" / "world" / "split_0" / "model.safetensors"
    cross = cross_dataset(ck, "world", cfg)
    from qfm import paths
    from qfm.data.table import read_table

    assert cross["n"] == len(read_table(paths.world_table()))  # every image of B
    assert cross["test_dataset"] == "world"
