"""Choose the baseline's full CPU budget on validation: candidate settings × seeds, val SRCC.

Each candidate is :data:`qfm.bench.FULL_BUDGET` plus its own ``KEY=VALUE`` settings,
trained on seeds (seed k = split k) with validation every epoch; the best validation SRCC per
seed is what candidates are compared on. Test SRCC is recorded beside it and never used to
choose. Runs are independent processes' worth of work: ``--jobs 2`` trains two at a time with
one OpenMP thread each (the fastest use of 2 cores; the seconds are then contended).

    .venv/bin/python benchmarks/baseline_select.py      # → benchmarks/results/baseline_selection.json
    .venv/bin/python benchmarks/baseline_select.py --candidate lr2 train.lr=0.002 --seeds 0 1 \
        --out -

The default candidates are those of benchmarks/results/baseline_selection.json. Needs
``qfm world`` and an upstream checkpoint (``--upstream``, default models/upstream.safetensors).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qfm.bench import FULL_BUDGET, Record, add_out_argument
from qfm.checkpoint import write_json

DEFAULT = {  # name → settings on top of FULL_BUDGET (batch 8 since this selection)
    "batch32": ["train.batch_size=32"],
    "batch32_nodecay": ["train.batch_size=32", "train.step_epochs=100"],
    "batch16": ["train.batch_size=16"],
    "batch16_lr5e-4": ["train.batch_size=16", "train.lr=0.0005"],
    "batch8": [],
}


def run_one(params: str, upstream: str, seed: int, sets: list[str], out: Path) -> dict:
    """One training run (called in a child process: ``--one``)."""
    from qfm.config import RunConfig, load_params, override, parse_sets
    from qfm.engine import fit

    cfg = load_params(params) if Path(params).is_file() else RunConfig()
    cfg = override(cfg, FULL_BUDGET)
    cfg = override(cfg, parse_sets(sets))
    cfg = override(cfg, {"qfm.enabled": False, "model.gate": False, "distill.enabled": False,
                         "model.weights": "upstream", "shared.seed": seed, "train.split": seed})
    m = fit(cfg, out, upstream=upstream, progress=False)
    return {"seed": seed, "val_srcc": m["val"]["srcc"], "best_epoch": m["best_epoch"],
            "val_curve": [h["val"]["srcc"] for h in m["history"] if "val" in h],
            "test_srcc": m["test"]["srcc"], "train_seconds": m["train_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--upstream", default="models/upstream.safetensors")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--candidate", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
                    help="a candidate: its name, then its settings (repeatable)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    add_out_argument(ap, "baseline_selection")
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # child: SEED OUT [SETTINGS]
    args = ap.parse_args()
    if args.one:
        seed, out, *sets = args.one
        row = run_one(args.params, args.upstream, int(seed), sets, Path(out))
        write_json(row, Path(out) / "row.json")
        return
    if not Path(args.upstream).is_file():
        raise SystemExit(f"{args.upstream}: no upstream checkpoint (run `qfm upstream`)")
    record = Record("baseline_selection")
    cands = {c[0]: c[1:] for c in args.candidate} if args.candidate else DEFAULT
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.jobs > 1 else dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        cmds = [[sys.executable, __file__, "--params", args.params, "--upstream", args.upstream,
                 "--one", str(seed), str(Path(tmp) / f"{name}_s{seed}"), *settings]
                for name, settings in cands.items() for seed in args.seeds]
        with ThreadPoolExecutor(args.jobs) as pool:  # at most --jobs children at a time
            codes = list(pool.map(lambda cmd: subprocess.run(cmd, env=env).returncode, cmds))
        if any(codes):
            raise SystemExit("a candidate run failed (see above)")
        result = {"budget": FULL_BUDGET, "seeds": args.seeds, "chosen_by": "mean val_srcc",
                  "candidates": []}
        for name, settings in cands.items():
            rows = [json.loads((Path(tmp) / f"{name}_s{s}" / "row.json").read_text())
                    for s in args.seeds]
            result["candidates"].append({
                "name": name, "settings": settings,
                "val_srcc_mean": statistics.mean(r["val_srcc"] for r in rows), "runs": rows})
    best = max(result["candidates"], key=lambda c: c["val_srcc_mean"])
    result["chosen"] = best["name"]
    print(json.dumps([(c["name"], round(c["val_srcc_mean"], 4))
                      for c in result["candidates"]]), f"chosen: {best['name']}", file=sys.stderr)
    record.finish(result, args.out)


if __name__ == "__main__":
    main()
