"""Baseline (DEIQT-style) on the embedded default: wall time and test SRCC/PLCC, on this CPU.

Trains the default configuration twice in one run — with the upstream semantic pre-training
and with it skipped (backbone from scratch) — and prints one JSON object.

    python benchmarks/baseline.py [--seeds 0 1 2] [--params params.yaml]

Expected on 2 CPU cores: about 4 minutes of training per run; target test SRCC >= 0.85 with
the upstream pre-training. Needs the embedded default (`qfm world`); makes the upstream
checkpoint if `models/upstream.safetensors` is missing.
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
from qfm.config import RunConfig, load_params, override
from qfm.engine import fit
from qfm.upstream import pretrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    import yaml

    cfg = load_params(args.params) if Path(args.params).is_file() else RunConfig()
    cfg = override(cfg, {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)})
    cfg = override(cfg, {"qfm.enabled": False, "model.gate": False, "distill.enabled": False})
    if not paths.world_table().is_file():
        raise SystemExit("no embedded default: run `qfm world` first")
    up = paths.upstream_checkpoint()
    up_seconds = None
    if not up.is_file():
        t0 = time.perf_counter()
        pretrain(cfg.model, cfg.upstream, up, seed=cfg.shared.seed, progress=False)
        up_seconds = time.perf_counter() - t0
    out = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "processor": platform.processor() or platform.machine()},
           "backbone": cfg.model.backbone, "img_size": cfg.model.img_size,
           "epochs": cfg.train.epochs, "upstream_seconds": up_seconds, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for weights in ("upstream", "none"):
                c = override(cfg, {"model.weights": weights, "shared.seed": seed,
                                   "train.split": seed})
                t0 = time.perf_counter()
                m = fit(c, Path(tmp) / f"{weights}_{seed}", progress=False)
                out["runs"].append({
                    "seed": seed, "upstream": weights == "upstream",
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                    "train_seconds": round(m["train_seconds"], 1),
                    "test_srcc": round(m["test"]["srcc"], 4),
                    "test_plcc": round(m["test"]["plcc"], 4),
                    "val_srcc": round(m["val"]["srcc"], 4), "best_epoch": m["best_epoch"]})
                print(json.dumps(out["runs"][-1]), flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
