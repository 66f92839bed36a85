"""benchmarks/pipeline_stages.py: its log and notebook parsers, the check that a fresh copy's
``dvc repro`` left ``dvc.lock`` as committed, whether a second repro would run anything, and
when and under what load the run was. The timings themselves are not asserted."""

from __future__ import annotations

import json

import pytest
from test_benchmarks import load

LOG = """\
1700000100.0 + dvc repro
1700000101.0 Running stage 'world':
1700000101.1 > qfm world
1700000131.0 Updating lock file 'dvc.lock'
1700000131.5 Stage 'upstream' didn't change, skipping
1700000132.0 Running stage 'train@baseline-s0':
1700000150.0 Updating lock file 'dvc.lock'
1700000150.0 Running stage 'book':
1700000155.0 ERROR: failed to reproduce 'book': exit 1
1700000156.0 dvc repro exited 255
"""


def test_pipeline_stages_parses_a_timestamped_log():
    ps = load("pipeline_stages")
    out = ps.parse_log(LOG.splitlines() + ["no timestamp: ignored"])
    rows = {s["stage"]: s for s in out["stages"]}
    assert list(rows) == ["world", "upstream", "train@baseline-s0", "book"]
    assert rows["world"]["seconds"] == pytest.approx(30.0)
    assert rows["upstream"] == {"stage": "upstream", "seconds": 0.0, "status": "unchanged"}
    assert rows["train@baseline-s0"]["seconds"] == pytest.approx(18.0)
    assert rows["book"]["status"] == "failed" and rows["book"]["seconds"] == pytest.approx(5.0)
    assert out["total_seconds"] == pytest.approx(56.0)
    iso = ps.parse_log(["2024-01-01T00:00:00 Running stage 'a':",
                        "2024-01-01T00:01:30 Updating lock file 'dvc.lock'"])
    assert iso["stages"][0]["seconds"] == pytest.approx(90.0)


def test_pipeline_stages_reads_papermill_durations(tmp_path):
    ps = load("pipeline_stages")
    (tmp_path / "train").mkdir()
    for rel, dur in (("train/baseline-s0.ipynb", 12.5), ("figures.ipynb", 3.0)):
        (tmp_path / rel).write_text(json.dumps({"metadata": {"papermill": {"duration": dur}}}))
    (tmp_path / "unexecuted.ipynb").write_text(json.dumps({"metadata": {}}))
    out = ps.from_notebooks(tmp_path)
    assert {s["stage"]: s["seconds"] for s in out["stages"]} == {"figures": 3.0,
                                                                "train@baseline-s0": 12.5}
    assert out["total_seconds"] == pytest.approx(15.5)


def test_pipeline_stages_times_scrubbed_notebooks_from_the_log(tmp_path):
    """A stage that took papermill's clock out of its notebook logged the duration instead."""
    ps = load("pipeline_stages")
    nbs = tmp_path / "book" / "executed"
    nbs.mkdir(parents=True)
    (nbs / "tune.ipynb").write_text(json.dumps({"metadata": {"papermill": {"exception": None}}}))
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "timings.jsonl").write_text("".join(
        json.dumps({"what": "notebook", "path": "book/executed/tune.ipynb", "seconds": s}) + "\n"
        for s in (9.0, 7.25)) + "not json\n")
    out = ps.from_notebooks(nbs, tmp_path)
    assert out["stages"] == [{"stage": "tune", "seconds": 7.25, "status": "ran"}]


LOCK = """schema: '2.0'
stages:
  world:
    cmd: qfm world
    outs:
    - path: data/world
      hash: md5
      md5: {world}
  features:
    cmd: qfm features
    outs:
    - path: data/features/x.json
      hash: md5
      md5: {side}
"""


def test_pipeline_stages_checks_that_the_run_left_dvc_lock_as_committed(tmp_path):
    import subprocess

    ps = load("pipeline_stages")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert ps.stage_lock(tmp_path) is None  # no lock: nothing to compare
    assert ps.check_lock(tmp_path, None)["unchanged"] is None
    lock = tmp_path / "dvc.lock"
    lock.write_text(LOCK.format(world="a.dir", side="b"))
    before = ps.stage_lock(tmp_path)
    same = ps.check_lock(tmp_path, before)
    assert same["unchanged"] is True and same["git_diff_exit_code"] == 0
    assert same["changed_outs"] == [] and same["changed_stages"] == []
    lock.write_text(LOCK.format(world="a.dir", side="c"))  # a sidecar with a time stamp
    moved = ps.check_lock(tmp_path, before)
    assert moved["unchanged"] is False and moved["git_diff_exit_code"] == 1
    assert moved["changed_outs"] == [{"stage": "features", "out": "data/features/x.json",
                                      "before": "b", "after": "c"}]
    assert moved["changed_stages"] == ["features"]


def test_pipeline_stages_asks_whether_a_second_repro_would_run_anything(tmp_path, monkeypatch):
    import subprocess

    ps = load("pipeline_stages")
    said = {}

    def status(out: str, rc: int = 0):
        def run(cmd, **kw):
            said["cmd"] = cmd[1:]
            return subprocess.CompletedProcess(cmd, rc, out, "ERROR: no dvc here")
        return run

    monkeypatch.setattr(ps.subprocess, "run", status("{}"))
    assert ps.check_idle(tmp_path) == {"idle": True, "out_of_date": []}
    assert said["cmd"] == ["status", "--json"]
    monkeypatch.setattr(ps.subprocess, "run", status('{"figures": [], "book": []}'))
    assert ps.check_idle(tmp_path) == {"idle": False, "out_of_date": ["book", "figures"]}
    monkeypatch.setattr(ps.subprocess, "run", status("", 1))
    assert ps.check_idle(tmp_path)["idle"] is None


def test_pipeline_stages_keeps_when_the_run_was_and_its_load():
    ps = load("pipeline_stages")
    lines = ["1700000000.0 START load 3.75 3.88 3.98"] + LOG.splitlines() + \
        ["1700000200.0 END load 1.30 1.08 1.80"]
    run = ps.parse_log(lines)["run"]
    assert run["started"] == "2023-11-14T22:13:20+00:00"
    assert run["finished"] == "2023-11-14T22:16:40+00:00"
    assert run["load_average_start"] == [3.75, 3.88, 3.98]
    assert run["load_average_end"] == [1.3, 1.08, 1.8]
    assert ps.parse_log(LOG.splitlines())["run"]["load_average_start"] is None
