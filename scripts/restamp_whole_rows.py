"""Restamp the whole-upstream regime's rows after a code change that leaves their numbers as
they were (e.g. a default that params.yaml overrides, a new option whose default keeps the old
behaviour).

A row of ``measured/livec_whole`` is current when its ``code_fingerprint`` equals the hash of
the code it would run now and its parameters (:func:`qfm.study.whole_rows.code_hash`). After
such a change every row turns stale though its numbers would not move. This script proves,
row by row, that the stored fingerprint is the hash of the same run's parameters under the code
of ``--old-rev`` (so neither the parameters nor the data's role changed), then writes the hash
under the code of the working tree and appends ``{"from_rev", "why", "date"}`` to the row's
``restamped`` list. A row that was not current under the old code either (an older run, or
parameters changed since) is left as it is and named: it stays stale and reruns. Tuning rows
first, then the split rows (their knobs come from the tuning rows, current by then).

    python scripts/restamp_whole_rows.py --old-rev <commit> --why "<what changed, why it
        leaves the numbers as they were>"

Then ``qfm whole --survey`` (or ``dvc repro -s livec_whole``) rewrites the index; commit the
rows with the reason in the message.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import re
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from qfm import paths
from qfm.config import read_params
from qfm.files import read_json, write_json
from qfm.study.whole_rows import RunPlan, code_hash, read_row, section

PATTERNS = {"tune": re.compile(r"(.+)_p(\d+)_t(\d+)"), "rows": re.compile(r"(.+)_s(\d+)")}


def old_tree(rev: str, folder: Path) -> Path:
    """The ``qfm`` package as it was at ``rev``, extracted under ``folder``."""
    blob = subprocess.run(["git", "archive", rev, "qfm"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def old_code(folder: Path) -> tuple[str, ...]:
    """The fingerprint's file list (``whole_rows.CODE``) as it was in the extracted tree."""
    tree = ast.parse((folder / "qfm" / "study" / "whole_rows.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CODE"
                                                for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise SystemExit(f"{folder}: no CODE list in qfm/study/whole_rows.py")


def jobs(plan: RunPlan, kind: str, out: Path) -> list[tuple[Path, object]]:
    """(row file, its job) for every row of ``kind`` (``tune`` or ``rows``) under ``out``."""
    found = []
    for f in sorted((out / kind).glob("*.json")):
        m = PATTERNS[kind].fullmatch(f.stem)
        if not m:
            raise SystemExit(f"{f}: not a row name of the whole regime")
        if kind == "tune":
            job = plan.trial(m.group(1), int(m.group(2)), int(m.group(3)))
        else:
            job = plan.job(m.group(1), int(m.group(2)))
        if job is None:
            raise SystemExit(f"{f}: its run cannot be planned now (its tuning rows not current)")
        found.append((f, job))
    return found


def restamp(kind: str, args, old: Path) -> int:
    raw = read_params(args.params)
    frozen = read_json(paths.measured_dir("livec") / "tune.json")["chosen"]
    plan = RunPlan(raw, section(raw), frozen, args.out, None)
    todo, left, listed = [], [], old_code(old)
    for f, job in jobs(plan, kind, args.out):
        stored = read_row(f)["code_fingerprint"]
        if stored == job.code:
            continue  # current already
        (todo.append((f, job.code)) if stored == code_hash(job.params, old, listed)
         else left.append(f))
    if left:
        print(f"restamp: left stale (not current under {args.old_rev} either): "
              + ", ".join(f.name for f in left), file=sys.stderr)
    rev = subprocess.run(["git", "rev-parse", args.old_rev], check=True, capture_output=True,
                         text=True).stdout.strip()
    stamp = {"from_rev": rev, "why": args.why,
             "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    for f, code in todo:
        row = read_row(f)
        row["code_fingerprint"] = code
        row["restamped"] = [*row.get("restamped", []), stamp]
        write_json(row, f)
    print(f"restamp: {len(todo)} {kind} row(s) restamped in {args.out}")
    return len(todo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-rev", required=True, help="the commit whose code made the rows")
    ap.add_argument("--why", required=True, help="why the change leaves the numbers as they were")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", type=Path, default=Path("measured/livec_whole"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = old_tree(args.old_rev, Path(tmp))
        for kind in ("tune", "rows"):  # a split row's knobs come from current tuning rows
            restamp(kind, args, old)


if __name__ == "__main__":
    main()
