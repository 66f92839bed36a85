"""Baseline (DEIQT-style) on the embedded default: wall time and test SRCC/PLCC, on this CPU.

Trains the CPU profile of ``params.yaml`` (model, upstream) at the full training budget
(``BUDGET`` below: 15 epochs, where the DVC pipeline affords only a few) twice in one run —
with the upstream semantic pre-training and with it skipped (backbone from scratch) — and
prints one JSON object with the machine's load, so contended numbers can be told apart.

    python benchmarks/baseline.py [--seeds 0 1 2] [--weights upstream none] [--params params.yaml]
        [--set k=v ...]

Target: test SRCC >= 0.85 with the upstream pre-training, in <= 4 minutes of training on 2
cores. Measured on 2 idle cores, seed 0 (benchmarks/results/baseline.json): 194 s of training,
test SRCC 0.8895 with the upstream pre-training (54 s, once), 0.797 without. Needs the embedded
default (`qfm world`); pre-trains its own upstream checkpoint (timed) in a temporary folder. On a shared, busy machine run it with
OMP_NUM_THREADS=1: two spinning OpenMP threads per process slow every step ten-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from qfm import paths
from qfm.checkpoint import write_json
from qfm.config import RunConfig, load_params, override, parse_sets
from qfm.engine import fit
from qfm.upstream import pretrain


# The baseline's full CPU budget (qfm.config defaults). Batch 8 and validation every epoch were
# chosen on validation SRCC over seeds 0-2 (results/baseline_selection.json): batch 32 → 16 → 8
# gave 0.821 → 0.844 → 0.865 at a near-equal cost per image on the CPU.
BUDGET = {"train.epochs": 15, "train.warmup_epochs": 2.0, "train.step_epochs": 10,
          "train.batch_size": 8, "train.eval_every": 1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--weights", nargs="+", default=["upstream", "none"],
                    choices=["upstream", "none"], help="with / without the upstream pre-training")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    args = ap.parse_args()
    cfg = load_params(args.params) if Path(args.params).is_file() else RunConfig()
    cfg = override(cfg, BUDGET)
    cfg = override(cfg, parse_sets(args.set))
    cfg = override(cfg, {"qfm.enabled": False, "model.gate": False, "distill.enabled": False})
    if not paths.world_table().is_file():
        raise SystemExit("no embedded default: run `qfm world` first")
    out = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "loadavg_start": os.getloadavg(),
                       "processor": platform.processor() or platform.machine()},
           "backbone": cfg.model.backbone, "img_size": cfg.model.img_size,
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
                print(json.dumps(out["runs"][-1]), flush=True)
    out["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, indent=2))
    if args.out:
        write_json(out, Path(args.out))


if __name__ == "__main__":
    main()
