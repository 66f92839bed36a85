"""Baseline vs QFM-IQM on the embedded default: test SRCC/PLCC over seeds + semantic-noise share.

Each seed k uses split k and ``shared.seed = k``; every variant runs on the same seeds, so
variants are compared on identical splits. Finished runs are reused (rerun to resume). Prints
one JSON object (per-run numbers, mean ± std per variant) and stores it (``--out``, default
``benchmarks/results/qfm_experiment.json``).

    .venv/bin/python benchmarks/qfm_experiment.py [--seeds 0 1 2] [--variants baseline gate_qfm full]
        [--runs runs/qfm_experiment] [--set KEY=VALUE ...] [--out FILE]

The configuration is ``params.yaml``'s (the CPU profile: model, upstream, qfm, distill) at the
baseline's full CPU budget (:data:`qfm.bench.FULL_BUDGET`), then each variant's switches.
Needs ``qfm world`` and ``qfm upstream`` (``models/upstream.safetensors``). On 2 idle CPU
cores a run trains for minutes; ``full`` costs a teacher (reused: the ``gate_qfm`` run of the
same seed) plus a student that sees about twice the images per epoch (``distill.views=1`` +
the unlabelled images), so it also gets about twice the steps — a confound the book states
beside its number.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from qfm import paths
from qfm.analysis import analyze
from qfm.bench import FULL_BUDGET, Record, add_out_argument
from qfm.checkpoint import read_json
from qfm.config import RunConfig, load_params, override, parse_sets
from qfm.distill_run import run_distill, teacher_config
from qfm.engine import fit
from qfm.pipeline import reuse_teacher

# every variant: the CPU default + the upstream semantic pre-training, then its switches
VARIANTS = {
    "baseline": {},
    "gate": {"model.gate": True},
    "gate_qfm": {"model.gate": True, "qfm.enabled": True},
    "full": {"model.gate": True, "qfm.enabled": True, "distill.enabled": True,
             "distill.views": 1, "distill.unlabelled": "world"},
}


def run_one(name: str, seed: int, base: RunConfig, sets: dict, runs: Path) -> dict:
    """Train (or reuse) one run and analyse its checkpoint on the test split."""
    cfg = override(base, {**FULL_BUDGET, "model.weights": "upstream", **VARIANTS[name], **sets,
                          "train.split": seed, "shared.seed": seed})
    if not cfg.distill.enabled:  # the distill section at its defaults: the run *is* the
        cfg = teacher_config(cfg)  # teacher run of that config, reusable by `full`
    run_dir = runs / f"{name}_s{seed}"
    if not paths.run_metrics(run_dir).is_file():
        if cfg.distill.enabled:
            teacher = runs / f"gate_qfm_s{seed}"  # exactly the teacher's run
            if paths.run_metrics(teacher).is_file() and not paths.teacher_dir(run_dir).exists():
                reuse_teacher(teacher, run_dir)
            run_distill(cfg, run_dir)
        else:
            fit(cfg, run_dir)
    metrics = read_json(paths.run_metrics(run_dir))
    noise = analyze(cfg, run_dir / "analysis", checkpoint=paths.run_model(run_dir))
    return {"test": metrics["test"], "val_srcc": metrics["val"]["srcc"],
            "best_epoch": metrics["best_epoch"], "train_seconds": metrics["train_seconds"],
            "steps": sum(h.get("steps", 0) for h in metrics["history"]),
            "share": noise["share"], "base_rate": noise["base_rate"]}


def summarise(rows: list[dict]) -> dict:
    def ms(vals):
        return {"mean": statistics.mean(vals),
                "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}

    return {"test_srcc": ms([r["test"]["srcc"] for r in rows]),
            "test_plcc": ms([r["test"]["plcc"] for r in rows]),
            "val_srcc": ms([r["val_srcc"] for r in rows]),
            "share_selected": ms([r["share"].get("selected", r["share"]["upstream"])
                                  for r in rows]),
            "share_upstream": ms([r["share"]["upstream"] for r in rows])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=["baseline", "gate_qfm", "full"],
                   choices=VARIANTS)
    p.add_argument("--runs", default="runs/qfm_experiment")
    add_out_argument(p, "qfm_experiment")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    record = Record("qfm_experiment")
    base = load_params(args.params) if Path(args.params).is_file() else RunConfig()
    sets = parse_sets(args.set)
    runs = Path(args.runs)
    result = {"params": args.params, "budget": FULL_BUDGET, "settings": sets, "seeds": args.seeds,
              "variants": {v: VARIANTS[v] for v in args.variants}, "runs": {}, "summary": {}}
    for name in args.variants:
        rows = [run_one(name, s, base, sets, runs) for s in args.seeds]
        result["runs"][name] = rows
        result["summary"][name] = summarise(rows)
    record.finish(result, args.out)


if __name__ == "__main__":
    main()
