"""Run the speed benchmarks, one process after the other, into ``benchmarks/results/``.

Each benchmark (``benchmarks/<name>.py``) runs as its own process, so they do not compete
with each other, and stores its JSON itself (``--out``, :class:`harness.Record`: the same
machine/load record in every file) in the folder the book's Performance page reads
(``params.yaml`` ``performance.bench_dir``); ``dvc repro`` notices new files and rebuilds the
page. This script only chooses the benchmarks, their arguments and the thread count.

    .venv/bin/python benchmarks/run_all.py                      # the CPU benchmarks
    .venv/bin/python benchmarks/run_all.py --only gpu_check     # on a GPU machine
    .venv/bin/python benchmarks/run_all.py --pipeline full      # time the full pipeline

Threads: ``--threads 1`` (default) exports OMP_NUM_THREADS=1 — on 2 cores shared with other
jobs, torch's default of one thread per core made a training step many times slower (the
threads spin-wait for each other). ``gpu_check`` without CUDA stores nothing (an earlier GPU
result is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from qfm import paths

HERE = Path(__file__).resolve().parent
CPU = ("step_cost", "step_cost_cached", "predict_throughput", "loader_throughput",
       "cache_throughput", "pipeline_stages")
OTHER = ("gpu_check", "analyze_memory")  # run with --only
SCRIPT = {"step_cost_cached": ("step_cost", ["--cached"])}  # a result of another script
PIPELINE = {"smoke": ["--run", "--smoke", "--", "--keep-going"],
            "full": ["--run", "--", "--keep-going"],
            "notebooks": ["--notebooks", "book/executed"]}


def run_one(name: str, extra: list[str], threads: int, out_dir: Path) -> bool:
    """Run ``benchmarks/<name>.py`` storing ``out_dir/<name>.json``; True when it succeeded."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    script, fixed = SCRIPT.get(name, (name, []))
    cmd = [sys.executable, str(HERE / f"{script}.py"), "--out", str(out_dir / f"{name}.json"),
           *fixed, *extra]
    print(f"+ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    code = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode
    if code != 0:
        print(f"{name}: exit {code}, nothing stored", file=sys.stderr)
    return code == 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", choices=[*CPU, *OTHER], help="these benchmarks")
    p.add_argument("--pipeline", choices=[*PIPELINE, "skip"], default="smoke",
                   help="pipeline_stages source: smoke / full dvc repro in a copy, or the "
                   "executed notebooks' durations")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS (0: as is)")
    p.add_argument("--log", type=Path, help="pipeline_stages --run: keep dvc repro's log here")
    p.add_argument("--out", type=Path, default=paths.bench_results_dir(),
                   help="folder of the JSON files (default: %(default)s)")
    args = p.parse_args()
    names = args.only or [n for n in CPU if not (n == "pipeline_stages" and
                                                  args.pipeline == "skip")]
    log = ["--save-log", str(args.log)] if args.log and args.pipeline in ("smoke", "full") \
        else []
    extra = {"pipeline_stages": log + PIPELINE.get(args.pipeline, PIPELINE["smoke"])}
    summary = {name: "ran" if run_one(name, extra.get(name, []), args.threads, args.out)
               else "failed" for name in names}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
