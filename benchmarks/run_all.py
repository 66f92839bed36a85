"""Run the benchmarks and store their JSON in ``benchmarks/results/<name>.json``.

Each benchmark runs as its own process (``benchmarks/<name>.py``), one after the other, so
they do not compete with each other; what it prints is stored with a ``_run`` record: the
command, start and end time, load average before and after, CPU cores and OMP_NUM_THREADS.
The book's Performance page (DVC stage ``performance``) reads these files; ``dvc repro``
notices new ones and rebuilds the page.

    .venv/bin/python benchmarks/run_all.py                      # the four CPU benchmarks
    .venv/bin/python benchmarks/run_all.py --only gpu_check     # on a GPU machine
    .venv/bin/python benchmarks/run_all.py --pipeline full      # time the full pipeline

Threads: ``--threads 1`` (default) exports OMP_NUM_THREADS=1 — on 2 cores shared with other
jobs, torch's default of 2 intra-op threads made a training step 10-100× slower (the
threads spin-wait for each other). CPU, 2 busy cores: about 15 minutes with ``--pipeline
smoke``. ``gpu_check`` without CUDA writes nothing (an earlier GPU result is kept). A run
whose 1-minute load average (before or after) exceeds the CPU cores is stored with
``_run.loaded = true`` and a warning: the Performance page flags it and does not quote its
absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from qfm import paths
from qfm.performance import is_loaded, machine_load

HERE = Path(__file__).resolve().parent
CPU = ("step_cost", "predict_throughput", "loader_throughput", "pipeline_stages")
OTHER = ("gpu_check", "analyze_memory")  # run with --only
PIPELINE = {"smoke": ["--run", "--smoke", "--", "--keep-going"],
            "full": ["--run", "--", "--keep-going"],
            "notebooks": ["--notebooks", "book/executed"]}


def run_one(name: str, extra: list[str], threads: int, out_dir: Path) -> dict | None:
    """Run ``benchmarks/<name>.py``; store and return its JSON (None if it failed)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, str(HERE / f"{name}.py"), *extra]
    run = {"command": " ".join([Path(cmd[0]).name, *cmd[1:]]),
           "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "load_average_before": [round(x, 2) for x in os.getloadavg()],
           "cpu_cores": len(os.sched_getaffinity(0)),
           "omp_num_threads": env.get("OMP_NUM_THREADS")}
    print(f"+ {run['command']}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    run.update(seconds=round(time.perf_counter() - t0, 1),
               finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
               load_average_after=[round(x, 2) for x in os.getloadavg()])
    if proc.returncode != 0:
        print(f"{name}: exit {proc.returncode}, nothing stored", file=sys.stderr)
        return None
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    # other jobs took CPU time from it: the Performance page flags it and withholds its rates
    run["loaded"] = is_loaded({"_run": run})
    if run["loaded"]:
        load, cores = machine_load({"_run": run})
        print(f"{name}: measured on a loaded machine (load {load:.1f} on {cores} cores): "
              f"stored with loaded=true; the Performance page will not quote its rates",
              file=sys.stderr)
    if result.get("status", "").startswith("no CUDA") and (out_dir / f"{name}.json").exists():
        print(f"{name}: {result['status']} (kept the earlier result)", file=sys.stderr)
        return result
    result["_run"] = run
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".{name}.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out_dir / f"{name}.json")
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=[*CPU, *OTHER], help="these benchmarks")
    p.add_argument("--pipeline", choices=[*PIPELINE, "skip"], default="smoke",
                   help="pipeline_stages source: smoke / full dvc repro in a copy, or the "
                   "executed notebooks' durations")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS (0: as is)")
    p.add_argument("--out", type=Path, default=paths.results_dir() / "benchmarks")
    args = p.parse_args()
    names = args.only or [n for n in CPU if not (n == "pipeline_stages" and
                                                  args.pipeline == "skip")]
    log = ["--save-log", str(args.out / "pipeline_stages.log")] \
        if args.pipeline in ("smoke", "full") else []
    extra = {"pipeline_stages": log + PIPELINE.get(args.pipeline, PIPELINE["smoke"])}
    summary = {}
    for name in names:
        r = run_one(name, extra.get(name, []), args.threads, args.out)
        summary[name] = "failed" if r is None else r.get("status", "stored")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
