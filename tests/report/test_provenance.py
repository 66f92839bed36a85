"""The Reproducibility and LIVEC pages' provenance tables (qfm.report.provenance): software
versions, input hashes named without machine paths, a committed study's record."""

from __future__ import annotations

import hashlib
import json

from qfm.report import provenance


def test_env_and_hash_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.json").write_text("{}")
    env = provenance.env_table().frame.set_index("component")
    assert {"python", "numpy", "scipy", "pandas"} <= set(env.index)
    hashes = provenance.hash_table([tmp_path / "a.json", tmp_path / "absent.csv"]).frame
    assert hashes["file"].tolist() == ["a.json"]  # relative to the project; absent: left out
    assert hashes["sha256"].tolist() == [hashlib.sha256(b"{}").hexdigest()[:16]]


def test_measured_table_reads_the_committed_record(tmp_path):
    assert provenance.measured_table(tmp_path).frame["value"].tolist() == ["not measured yet"]
    (tmp_path / "provenance.json").write_text(json.dumps({
        "commit": "0123456789abcdef", "dirty": True, "command": "qfm livec", "seconds": 90,
        "machine": {"cores": 2, "platform": "linux"}, "data": {"images": 930}}))
    table = provenance.measured_table(tmp_path).frame.set_index("what")["value"]
    assert table["commit"] == "0123456789ab (dirty)" and table["wall time"] == "1.5 min"
    assert table["command"] == "qfm livec"
