"""The head's architecture choices, each with the validation number that chose it.

The study fixes a few sizes in ``params.yaml`` that the tuner does not touch: the decoder
width (``model.dim``), the gate's hidden width (``model.gate_hidden``, a fraction of the token
width) and how many anchors per batch take QFM's term (``qfm.anchors``). This probe runs each
alternative on the tuner's own splits (the tuning seeds of ``study.tune``; validation = the
contents no reported seed tests on; test is never read), with each variant's tuned learning
rate and QFM values (``results/study/tune.json``), and records the mean validation SRCC, so the
Method page can show which value validation prefers and which one ``params.yaml`` uses.

    .venv/bin/python benchmarks/architecture_choices.py [--workers 2] [--out FILE]

CPU, cached tokens: a few minutes on two cores (16 head trainings per tuning seed).
"""

from __future__ import annotations

import argparse

import numpy as np
from harness import PARAMS, Record, add_out_argument

from qfm import paths
from qfm.config import read_params
from qfm.files import read_json
from qfm.study import runner as runs, stages, tune

# (params key, variant it is probed on, values tried)
PROBES = (("model.dim", "baseline", (16, 32, 64, 128)),
          ("model.gate_hidden", "gate", (0.0625, 0.25)),
          ("qfm.anchors", "gate_qfm", (8, 16, 0)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tuned", default="results/study/tune.json")
    add_out_argument(p, "architecture_choices")
    args = p.parse_args()
    record = Record("architecture_choices")
    raw = read_params(PARAMS)
    st = stages.study_params(raw)
    base = stages.base_config(PARAMS, st)  # the world study's settings (study.epochs, study.model)
    seeds = list(st["tune"]["seeds"])
    reported = stages.reported_seeds(st)
    tables = {s: tune.tuning_split(paths.world_dir(), reported, s, base.world.split[0])[0]
              for s in seeds}
    chosen = read_json(args.tuned)["chosen"]
    current = {"model.dim": base.model.dim, "model.gate_hidden": base.model.gate_hidden,
               "qfm.anchors": base.qfm.anchors}
    rows = []
    for key, variant, values in PROBES:
        for v in values:
            specs = runs.make_specs(raw, base, [variant], seeds, 0.0,
                                    per_variant={variant: {**chosen.get(variant, {}), key: v}},
                                    split_tables=tables, halve=bool(st.get("halve", False)))
            res = runs.run_specs(specs, stages.features_path(st), str(paths.world_dir()),
                                 args.workers, progress=False)
            rows.append({"key": key, "variant": variant, "value": v,
                         "val_srcc": float(np.mean([r["val_srcc"] for r in res])),
                         "in_params": v == current[key]})
            print(rows[-1], flush=True)
    for key, _, _ in PROBES:
        group = [r for r in rows if r["key"] == key]
        top = max(r["val_srcc"] for r in group)
        for r in group:  # a tie (e.g. anchors while λ_qfm = 0 switches QFM off) has no best
            r["best_on_validation"] = r["val_srcc"] >= top - 1e-12 and \
                sum(x["val_srcc"] >= top - 1e-12 for x in group) < len(group)
    record.finish({"seeds": seeds, "selected_on": "validation SRCC, mean over the tuning seeds",
                   "rows": rows}, args.out)


if __name__ == "__main__":
    main()
