"""The Paper-protocol page's DVC queue recipe, in smoke mode, on an authentic tree.

A copy of the project (smoke parameters as in ``tests/test_pipeline.py``) is committed to git;
a KonIQ-10k tree in the real layout (1024×768 JPEGs) sits outside it, reached through
``QFM_DATA``, as a queued experiment runs in a copy of the git commit. ``qfm data check`` and
``qfm data split`` run as the recipe says, then ``dvc exp run --queue`` with the recipe's data
flag (read from params.yaml's recipe; the smoke project trains its CPU model instead of the
GPU profile) and ``dvc queue start``. The experiment must run the protocol stage (baseline and
distilled QFM-IQM on every split) and every stage to the book.
A few minutes on 2 cores.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test_pipeline import ROOT, make_smoke_project, smoke_env

BIN = Path(sys.executable).parent


def recipe_flags() -> dict[str, str]:
    """The ``-S key=value`` flags of params.yaml's DVC queue recipe but the DeiT weights file
    (the smoke project trains with its own CPU model: ``protocol.profile: params``)."""
    text = (ROOT / "params.yaml").read_text()
    block = text[text.index("# Paper profile"):]
    flags = dict(re.findall(r"-S '?((?:protocol)\.[^=\s]+)=([^\s']+)", block))
    return {k: v for k, v in flags.items() if k != "protocol.weights"}


def run(root: Path, env: dict, *cmd: str, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(list(cmd), cwd=root, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.mark.slow
def test_dvc_queue_recipe_runs_to_the_book_on_an_authentic_tree(real_data, tmp_path):
    flags = recipe_flags()
    dataset = flags["protocol.dataset"]
    assert dataset != "world" and (real_data / dataset).is_dir(), dataset
    root = make_smoke_project(tmp_path / "project")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["protocol"].update(profile="params", splits="0-1")  # the CPU model, two splits
    params["distill"]["views"] = 1  # the paper profile's student sees extra views; so does this
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = smoke_env(root)
    env.pop("QFM_HOME")  # a queued experiment runs in its own copy: paths from its cwd
    env.update(QFM_DATA=str(real_data), GIT_AUTHOR_NAME="qfm test",
               GIT_AUTHOR_EMAIL="test@example.org", GIT_COMMITTER_NAME="qfm test",
               GIT_COMMITTER_EMAIL="test@example.org")
    qfm, dvc = str(BIN / "qfm"), str(BIN / "dvc")
    run(root, env, qfm, "data", "check", "--dataset", dataset, "--root",
        str(real_data / dataset))
    run(root, env, qfm, "data", "split", "--dataset", dataset, "--root",
        str(real_data / dataset), "--n", "2")  # the smoke runs use seeds = splits 0 and 1
    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-qm", "smoke project with the data set's splits")
    sets = [a for k, v in flags.items() for a in ("-S", f"{k}={v}")]
    run(root, env, dvc, "exp", "run", "--queue", "-n", dataset, *sets)
    run(root, env, dvc, "queue", "start", "-j", "1")
    deadline, status = time.time() + 1500, ""
    while time.time() < deadline:
        status = run(root, env, dvc, "queue", "status").stdout
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(10)
    else:
        subprocess.run([dvc, "queue", "kill", dataset], cwd=root, env=env)
        pytest.fail(f"queue still running after 25 min:\n{status}")
    logs = subprocess.run([dvc, "queue", "logs", dataset], cwd=root, env=env,
                          capture_output=True, text=True).stdout
    assert re.search(rf"{dataset}\s.*Success", status), f"{status}\n{logs[-4000:]}"
    run(root, env, dvc, "exp", "apply", dataset)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert "book" in lock and "protocol" in lock, sorted(lock)
    res = json.loads((root / "results" / "protocol" / "protocol.json").read_text())
    assert res["dataset"] == dataset and res["status"] == "run"
    assert set(res["variants"]) == {"baseline", "full"}  # full: teacher → student per split
    assert all(v["srcc"]["n"] == 2 for v in res["variants"].values())
