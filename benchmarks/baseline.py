"""Baseline (DEIQT-style) on the embedded default: wall time and test SRCC/PLCC, on this CPU.

Trains the CPU profile of ``params.yaml`` (model, upstream) at the full training budget
(:data:`qfm.bench.FULL_BUDGET`: qfm.config's defaults, where the DVC pipeline affords only a
few epochs) twice in one run — with the upstream semantic pre-training and with it skipped
(backbone from scratch) — and stores one JSON object with the machine's load, so contended
numbers can be told apart.

    python benchmarks/baseline.py [--seeds 0 1 2] [--weights upstream none] [--params params.yaml]
        [--set k=v ...] [--out FILE]

Target: test SRCC ≥ 0.85 with the upstream pre-training, in minutes of training on 2 cores.
The measured numbers are in ``benchmarks/results/baseline.json`` and on the book's Results
page, not here. Needs the embedded default (`qfm world`); pre-trains its own upstream
checkpoint (timed) in a temporary folder. On a shared, busy machine run it with
OMP_NUM_THREADS=1: two spinning OpenMP threads per process slow every step ten-fold.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from qfm import paths
from qfm.bench import FULL_BUDGET, Record, add_out_argument
from qfm.config import RunConfig, load_params, override, parse_sets
from qfm.engine import fit
from qfm.upstream import pretrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--weights", nargs="+", default=["upstream", "none"],
                    choices=["upstream", "none"], help="with / without the upstream pre-training")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    add_out_argument(ap, "baseline")
    args = ap.parse_args()
    record = Record("baseline")
    cfg = load_params(args.params) if Path(args.params).is_file() else RunConfig()
    cfg = override(cfg, FULL_BUDGET)
    cfg = override(cfg, parse_sets(args.set))
    cfg = override(cfg, {"qfm.enabled": False, "model.gate": False, "distill.enabled": False})
    if not paths.world_table().is_file():
        raise SystemExit("no embedded default: run `qfm world` first")
    out = {"backbone": cfg.model.backbone, "img_size": cfg.model.img_size,
           "epochs": cfg.train.epochs, "settings": args.set, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        # its own upstream checkpoint: one in models/ may belong to another backbone
        up = Path(tmp) / "upstream.safetensors"
        t0 = time.perf_counter()
        meta = pretrain(cfg.model, cfg.upstream, up, seed=cfg.shared.seed, progress=False)
        out["upstream_seconds"] = round(time.perf_counter() - t0, 1)
        out["upstream_accuracy"] = round(meta["heldout_accuracy"], 3)
        for seed in args.seeds:
            for weights in args.weights:
                c = override(cfg, {"model.weights": weights, "shared.seed": seed,
                                   "train.split": seed})
                t0 = time.perf_counter()
                m = fit(c, Path(tmp) / f"{weights}_{seed}", upstream=up, progress=False)
                out["runs"].append({
                    "seed": seed, "upstream": weights == "upstream",
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                    "train_seconds": round(m["train_seconds"], 1),
                    "test_srcc": round(m["test"]["srcc"], 4),
                    "test_plcc": round(m["test"]["plcc"], 4),
                    "val_srcc": round(m["val"]["srcc"], 4), "best_epoch": m["best_epoch"]})
                print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
