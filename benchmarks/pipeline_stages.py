"""Wall time of each DVC stage of the embedded-default pipeline.

Three sources, one output format (``stages``: name, seconds, status):

* ``--run``: run ``dvc repro`` and time it. By default in a fresh copy of the working tree
  (tracked and untracked, not ignored files) in a temporary folder, so the checkout, its data
  and its DVC cache are untouched and every stage really runs; ``--smoke`` sets
  ``shared.smoke=true`` and ``world.contents_per_photo=2`` in the copy's ``params.yaml``
  (the smoke mode of params.yaml's header). Every output line is time-stamped as it arrives;
  ``--save-log`` keeps that log.
* ``--log FILE``: parse such a log — lines ``<unix seconds> <text>`` (``--save-log``, or
  ``dvc repro 2>&1 | ts '%.s'``) or ``<ISO time> <text>``.
* ``--notebooks DIR``: what the pipeline already wrote: papermill's duration of each executed
  notebook under ``DIR`` (``book/executed``), named by its stage (``train/<run>`` →
  ``train@<run>``) — from the notebook, or, where the stage took the clock out of it
  (``python -m qfm.files scrub-notebook``), from ``logs/timings.jsonl``. Covers the notebook
  stages only, without kernel start-up.

Bytes that reproduce: after ``--run``, ``git diff --exit-code dvc.lock`` in the copy (its
``dvc.lock`` staged before the run) says whether ``dvc repro`` left the committed lock as it
was; the result's ``dvc_lock`` records the answer and every stage output whose hash changed
(``changed_outs``; ``--smoke`` changes the parameters, so there the lock is bound to change).
Then ``dvc status`` in the copy says whether a second ``dvc repro`` would run anything
(``second_repro``: ``idle`` and the stages still out of date).

A stage runs from DVC's ``Running stage 'NAME':`` to the ``Updating lock file`` line that
follows (else the next stage's line, else the end of the log); skipped and restored stages
count zero seconds.

    .venv/bin/python benchmarks/pipeline_stages.py --run --smoke [--save-log run.log]
    .venv/bin/python benchmarks/pipeline_stages.py --log run.log
    .venv/bin/python benchmarks/pipeline_stages.py --notebooks book/executed

CPU, 2 cores: ``--run --smoke`` minutes; ``--run`` the full pipeline, several times longer
(far longer on busy cores). ``--log`` / ``--notebooks``: instant. ``--out FILE`` as every
benchmark (default ``benchmarks/results/pipeline_stages.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from harness import Record, add_out_argument

SMOKE = {("shared", "smoke"): True, ("world", "contents_per_photo"): 2}
_RUNNING = re.compile(r"Running (?:callback )?stage '([^']+)'")
_SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")
_CACHED = re.compile(r"Stage '([^']+)' is cached - skipping run")
_FAILED = re.compile(r"failed to reproduce '([^']+)'")
_LOCK = re.compile(r"Updating lock file")
_BAR = re.compile(r"\d+%\|")  # tqdm progress lines: not kept
_LOAD = re.compile(r"\bload ((?:\d+(?:\.\d+)?\s*){3})")  # "START load 3.75 3.88 3.98"
_STAMP = re.compile(r"^(\d{9,}(?:\.\d*)?|\d{4}-\d\d-\d\d[T ][\d:.]+)\s?(.*)$")


def parse_log(lines: list[str]) -> dict:
    """Per-stage wall times from a time-stamped ``dvc repro`` log.

    Args:
        lines: ``<timestamp> <text>`` lines (unix seconds or ISO time); others are ignored.
    Returns:
        ``{"stages": [{"stage", "seconds", "status"}], "total_seconds", "run"}`` in log order;
        ``run``: when the log starts and ends (ISO, UTC) and the first and last load averages
        it records (``load a b c`` lines; :func:`run_repro` writes them), the machine's
        state while the pipeline ran rather than when the log was parsed.
    """
    events = []
    for line in lines:
        m = _STAMP.match(line.strip())
        if not m:
            continue
        raw, text = m.groups()
        t = float(raw) if raw[0].isdigit() and "-" not in raw else \
            datetime.fromisoformat(raw).timestamp()
        events.append((t, text))
    if not events:
        return {"stages": [], "total_seconds": None}
    stages: list[dict] = []
    open_stage = None  # (index into stages, start time)

    def close(t: float) -> None:
        nonlocal open_stage
        if open_stage is not None:
            i, t0 = open_stage
            stages[i]["seconds"] = round(t - t0, 2)
            open_stage = None

    for t, text in events:
        if m := _RUNNING.search(text):
            close(t)
            stages.append({"stage": m.group(1), "seconds": None, "status": "ran"})
            open_stage = (len(stages) - 1, t)
        elif m := (_SKIPPED.search(text) or _CACHED.search(text)):
            close(t)
            status = "unchanged" if _SKIPPED.search(text) else "restored from cache"
            stages.append({"stage": m.group(1), "seconds": 0.0, "status": status})
        elif _LOCK.search(text):
            close(t)
        elif m := _FAILED.search(text):
            close(t)
            hit = [s for s in stages if s["stage"] == m.group(1)]
            if hit:
                hit[-1]["status"] = "failed"
            else:
                stages.append({"stage": m.group(1), "seconds": 0.0, "status": "failed"})
    close(events[-1][0])
    loads = [[float(x) for x in m.group(1).split()] for _, text in events
             if (m := _LOAD.search(text))]
    run = {"started": _iso(events[0][0]), "finished": _iso(events[-1][0]),
           "load_average_start": loads[0] if loads else None,
           "load_average_end": loads[-1] if loads else None}
    return {"stages": stages, "total_seconds": round(events[-1][0] - events[0][0], 2),
            "run": run}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def logged_notebooks(root: str | Path) -> dict[str, float]:
    """``{notebook path relative to root: seconds}`` from ``root/logs/timings.jsonl`` (the
    latest entry of each; ``qfm.files.scrub_notebook`` writes them)."""
    out: dict[str, float] = {}
    log = Path(root) / "logs" / "timings.jsonl"
    for text in log.read_text().splitlines() if log.is_file() else []:
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and entry.get("what") == "notebook" and entry.get("path"):
            out[entry["path"]] = float(entry["seconds"])
    return out


def from_notebooks(folder: str | Path, root: str | Path = ".") -> dict:
    """Per-stage times from papermill's record in the executed notebooks under ``folder``
    (unexecuted ones are left out; one that recorded an exception is "failed"); a notebook
    whose clock the stage took out is timed by ``root``'s log (:func:`logged_notebooks`)."""
    stages = []
    logged = logged_notebooks(root)
    for path in sorted(Path(folder).rglob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        duration = meta.get("duration")
        if duration is None and meta:
            try:
                duration = logged.get(path.resolve().relative_to(Path(root).resolve())
                                      .as_posix())
            except ValueError:
                duration = None
        if duration is not None:
            name = path.relative_to(folder).with_suffix("").as_posix()
            stages.append({"stage": name.replace("/", "@", 1),  # train/x → train@x
                           "seconds": round(float(duration), 2),
                           "status": "failed" if meta.get("exception") else "ran"})
    total = round(sum(s["seconds"] for s in stages), 2) if stages else None
    return {"stages": stages, "total_seconds": total}


def copy_tree(repo: Path, dest: Path) -> None:
    """Copy the working tree's tracked and untracked (not ignored) files to ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                           cwd=repo, check=True, capture_output=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = repo / os.fsdecode(f)
        if src.is_file():
            (dest / os.fsdecode(f)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / os.fsdecode(f))


def set_params(path: Path, values: dict) -> None:
    """Set ``{(section, key): value}`` in a copy's params.yaml (its comments are dropped)."""
    params = yaml.safe_load(path.read_text())
    for (sec, key), v in values.items():
        params.setdefault(sec, {})[key] = v
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stage_entries(text: str) -> dict[str, dict]:
    """``{stage: its whole lock entry}`` of a ``dvc.lock``'s text."""
    if not text.strip():
        return {}
    return (yaml.safe_load(text) or {}).get("stages") or {}


def lock_outs(text: str) -> dict[tuple[str, str], str | None]:
    """``{(stage, output path): hash}`` of a ``dvc.lock``'s text (metrics are outputs too)."""
    return {(name, o["path"]): o.get("md5") or o.get("etag") or o.get("checksum")
            for name, entry in stage_entries(text).items() for o in entry.get("outs") or []}


def stage_lock(workdir: Path) -> str | None:
    """Stage the copy's ``dvc.lock`` in its own git index (the committed lock to compare the
    run's against); None when there is none. Never called on the checkout itself."""
    if not (workdir / "dvc.lock").is_file():
        return None
    subprocess.run(["git", "add", "--", "dvc.lock"], cwd=workdir, check=True)
    return (workdir / "dvc.lock").read_text()


def check_lock(workdir: Path, before: str | None) -> dict:
    """Whether ``dvc repro`` left ``dvc.lock`` as committed: ``git diff --exit-code dvc.lock``
    against the index (the lock as it was before the run), and which outputs changed.

    Returns:
        ``{"unchanged", "git_diff_exit_code", "changed_outs": [{stage, out, before, after}],
        "changed_stages"}`` (a stage whose lock entry changed at all: outputs, deps, params).
    """
    if before is None:
        return {"unchanged": None, "git_diff_exit_code": None, "changed_outs": [],
                "changed_stages": [], "note": "no dvc.lock before the run: nothing to compare"}
    diff = subprocess.run(["git", "diff", "--quiet", "--exit-code", "--", "dvc.lock"],
                          cwd=workdir, capture_output=True, text=True, check=False)
    lock = workdir / "dvc.lock"
    after = lock.read_text() if lock.is_file() else ""
    a, b = lock_outs(before), lock_outs(after)
    changed = [{"stage": st, "out": out, "before": a.get((st, out)), "after": b.get((st, out))}
               for st, out in sorted(set(a) | set(b)) if a.get((st, out)) != b.get((st, out))]
    ea, eb = stage_entries(before), stage_entries(after)
    return {"unchanged": diff.returncode == 0, "git_diff_exit_code": diff.returncode,
            "changed_outs": changed,
            "changed_stages": sorted(st for st in set(ea) | set(eb) if ea.get(st) != eb.get(st))}


def dvc_env(workdir: Path, threads: int | None = None) -> tuple[str, dict]:
    """(this env's ``dvc``, the stages' environment: this env's dvc, qfm, papermill first on
    PATH, the copy importable)."""
    bindir = Path(sys.executable).parent  # dvc, qfm, papermill, jupyter-book of this env
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=str(workdir), TQDM_DISABLE="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return shutil.which("dvc", path=env["PATH"]) or "dvc", env


def check_idle(workdir: Path) -> dict:
    """Whether a second ``dvc repro`` would run nothing (``dvc status --json`` after the run):
    ``{"idle": bool, or None where the status failed, "out_of_date": [stage, ...]}``."""
    dvc, env = dvc_env(workdir)
    got = subprocess.run([dvc, "status", "--json"], cwd=workdir, env=env, capture_output=True,
                         text=True, check=False)
    try:
        stale = json.loads(got.stdout) if got.returncode == 0 else None
    except json.JSONDecodeError:
        stale = None
    if not isinstance(stale, dict):
        return {"idle": None, "out_of_date": [], "note": (got.stderr or "").strip()[-200:]}
    return {"idle": not stale, "out_of_date": sorted(stale)}


def run_repro(workdir: Path, dvc_args: list[str], threads: int | None,
              log_path: Path | None) -> tuple[list[str], int]:
    """Run ``dvc repro`` in ``workdir``, echo and time-stamp each output line.

    Returns:
        (time-stamped lines, exit status).
    """
    dvc, env = dvc_env(workdir, threads)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [f"{time.time():.3f} + dvc repro {' '.join(dvc_args)} (load {load})"]
    proc = subprocess.Popen([dvc, "repro", *dvc_args], cwd=workdir, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
    for line in proc.stdout:
        if _BAR.search(line):
            continue
        lines.append(f"{time.time():.3f} {line.rstrip()}")
        print(lines[-1], file=sys.stderr, flush=True)
    rc = proc.wait()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines.append(f"{time.time():.3f} dvc repro exited {rc} (load {load})")
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("\n".join(lines) + "\n")
    return lines, rc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", action="store_true", help="run dvc repro and time it")
    src.add_argument("--log", type=Path, help="parse a time-stamped dvc repro log")
    src.add_argument("--notebooks", type=Path, help="papermill durations under this folder")
    p.add_argument("--smoke", action="store_true", help="--run: the smoke parameters")
    p.add_argument("--in-place", action="store_true",
                   help="--run: in this checkout (writes its data, models, runs, dvc.lock)")
    p.add_argument("--threads", type=int, default=1,
                   help="--run: OMP_NUM_THREADS of the stages (0: leave as is; default 1, "
                   "as busy shared cores make more threads spin-wait)")
    p.add_argument("--save-log", type=Path, help="--run: write the time-stamped log here")
    p.add_argument("--keep", type=Path, help="--run: make the fresh copy here and keep it (its "
                   "outputs, DVC cache and dvc.lock can then be adopted by the checkout)")
    p.add_argument("--repo", type=Path, default=Path("."), help="the checkout (default .)")
    p.add_argument("dvc_args", nargs="*", help="after --: extra `dvc repro` arguments, "
                   "e.g. -- --keep-going world upstream")
    add_out_argument(p, "pipeline_stages")
    args = p.parse_args()
    record = Record("pipeline_stages")
    out: dict = {}
    if args.log:
        out.update(source=f"log {args.log}", **parse_log(args.log.read_text().splitlines()))
    elif args.notebooks:
        out.update(source=f"papermill durations under {args.notebooks}",
                   **from_notebooks(args.notebooks, args.repo))
    else:
        if args.smoke and args.in_place:
            p.error("--smoke edits params.yaml: only in a copy (drop --in-place)")
        repo = args.repo.resolve()
        if args.keep and args.keep.exists():
            p.error(f"--keep {args.keep}: exists (give a new folder)")
        with tempfile.TemporaryDirectory(prefix="qfm-pipeline-") as tmp:
            work = repo if args.in_place else (args.keep.resolve() if args.keep else Path(tmp))
            if not args.in_place:
                copy_tree(repo, work)
                subprocess.run(["git", "init", "-q"], cwd=work, check=True)
                if args.smoke:
                    set_params(work / "params.yaml", SMOKE)
                before = stage_lock(work)  # the committed lock, in the copy's own index
            else:  # the checkout's index holds the lock to compare against
                shown = subprocess.run(["git", "show", ":dvc.lock"], cwd=work,
                                       capture_output=True, text=True, check=False)
                before = shown.stdout if shown.returncode == 0 else None
            lines, rc = run_repro(work, args.dvc_args, args.threads or None, args.save_log)
            lock = check_lock(work, before)
            second = check_idle(work)  # a second repro: nothing left to run
        if args.smoke:
            lock["note"] = "--smoke changes params.yaml: the lock is bound to change"
        print(f"dvc.lock {'unchanged' if lock['unchanged'] else 'changed'}"
              + (f": {len(lock['changed_outs'])} output(s) of "
                 f"{', '.join(sorted({c['stage'] for c in lock['changed_outs']}))}"
                 if lock["changed_outs"] else ""), file=sys.stderr)
        out.update(source="dvc repro" + (" (in place)" if args.in_place else " (fresh copy)"),
                   smoke=args.smoke, omp_num_threads=args.threads or
                   os.environ.get("OMP_NUM_THREADS"), dvc_args=args.dvc_args, exit_code=rc,
                   dvc_lock=lock, second_repro=second, **parse_log(lines))
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
