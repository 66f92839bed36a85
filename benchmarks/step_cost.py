"""QFM-IQM training-step cost ÷ baseline training-step cost, in one run.

Both steps see the same batch and the same backbone (same initial weights); a step is
:func:`harness.train_step` (objective → backward → clip → AdamW). Steps alternate (baseline,
QFM, baseline, …) so machine load hits both alike; the reported ratio is the median of the
per-pair ratios. Targets: ≤ 1.5 for the image step (QFM adds head passes only, never a second
backbone pass); ≤ 3 on cached tokens (``--cached``), where there is no backbone and QFM's own
passes — forward, backward for the adversarial direction, perturbed forward, backward — are
its design's floor, about three head passes to the baseline's one (not fused here).

    .venv/bin/python benchmarks/step_cost.py [--cached [WIDTH]] [--batch N] [--repeats 20]
        [--set KEY=VALUE ...] [--out FILE]

The model is the CPU default — ``params.yaml`` as it stands (:func:`harness.cpu_default`):
the Lite0 upstream (``tf_efficientnet_lite0``) with its shipped ImageNet weights at the
study's crop size, its token recipe and head; the batch is ``train.batch_size``. Two regimes,
two result files:

* default (``step_cost.json``): the image model, the backbone inside the step (what
  ``qfm train`` on images pays; QFM's extra passes are a small part of it).
* ``--cached [WIDTH]`` (``step_cost_cached.json``): the study's regime — head-only models on
  the upstream's cached tokens (a ``model.grid``² grid + CLS, width = the upstream's token
  width unless given), where the head is the whole step: the ratio the study pays.

CPU, 2 cores, one thread: about two minutes (image model), seconds (cached).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from harness import (Record, add_out_argument, cpu_default, shipped_weights, synchronize,
                     train_step)
from qfm.config import override, parse_sets
from qfm.core.engine import param_groups, regression_objective
from qfm.core.inference import resolve_device
from qfm.losses.qfm import QFMObjective
from qfm.core.weights import pretrained_model
from qfm.models import build_model

TARGET = 1.5  # QFM-IQM step ÷ baseline step, at most: the image step
TARGET_CACHED = 3.0  # on cached tokens: the design's own passes (~3 head passes), no backbone


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=0, help="0: params.yaml train.batch_size")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--cached", type=int, nargs="?", const=-1, default=0, metavar="WIDTH",
                   help="head-only models on cached tokens (the study); WIDTH: the "
                   "upstream's token width unless given")
    add_out_argument(p, "step_cost")
    args = p.parse_args()
    name = "step_cost_cached" if args.cached else "step_cost"
    if args.cached and args.out == p.get_default("out"):
        args.out = args.out.replace("step_cost.json", "step_cost_cached.json")
    record = Record(name)
    sets = parse_sets(args.set)
    cfg = override(cpu_default(), sets)
    args.batch = args.batch or cfg.train.batch_size
    dev = resolve_device(cfg.train.device)
    with tempfile.TemporaryDirectory() as tmp, shipped_weights(cfg, tmp):
        upstream = build_model(cfg.model) if args.cached else pretrained_model(cfg.model)
        width = (args.cached if args.cached > 0 else upstream.backbone.width) \
            if args.cached else None
        backbone_m = sum(p.numel() for p in upstream.backbone.parameters()) / 1e6
        torch.manual_seed(0)
        base = build_model(override(cfg, {"model.gate": False}).model,
                           width=width).to(dev).train()
        torch.manual_seed(0)
        qfm = build_model(override(cfg, {"model.gate": True}).model,
                          width=width).to(dev).train()
    del upstream
    if width is None:
        qfm.backbone.load_state_dict(base.backbone.state_dict())
    qfm.decoder.load_state_dict(base.decoder.state_dict())
    objective = QFMObjective(override(cfg, {"qfm.enabled": True}).qfm)
    opts = {m: torch.optim.AdamW(param_groups(m, 0.05), lr=1e-4) for m in (base, qfm)}
    g = torch.Generator().manual_seed(0)
    size = cfg.model.img_size
    shape = (1 + cfg.model.grid ** 2, width) if width else (3, size, size)
    batch = {"image": torch.randn(args.batch, *shape, generator=g).to(dev),
             "mos": torch.rand(args.batch, generator=g).to(dev),
             "index": torch.arange(args.batch)}
    times: dict[str, list[float]] = {"baseline": [], "qfm": []}
    rate = []
    for r in range(args.warmup + args.repeats):
        for name, model, obj in (("baseline", base, regression_objective),
                                 ("qfm", qfm, objective)):
            synchronize(dev)
            t0 = time.perf_counter()
            logs = train_step(model, opts[model], obj, batch, cfg.train.clip_grad)
            synchronize(dev)
            if r >= args.warmup:
                times[name].append(time.perf_counter() - t0)
                if name == "qfm":
                    rate.append(logs["partner_rate"])
    ratios = [q / b for q, b in zip(times["qfm"], times["baseline"])]
    record.finish({
        "ratio_median": statistics.median(ratios),
        "ratio_of_medians": statistics.median(times["qfm"]) / statistics.median(
            times["baseline"]),
        "baseline_step_s": statistics.median(times["baseline"]),
        "qfm_step_s": statistics.median(times["qfm"]),
        "partner_rate": statistics.mean(rate),
        "target": TARGET_CACHED if args.cached else TARGET,
        "regime": "cached tokens (head only)" if width else "image model (backbone in the step)",
        "backbone": cfg.model.backbone, "weights": cfg.model.weights, "img_size": size,
        "tokens": cfg.model.tokens, "grid": cfg.model.grid, "backbone_params_m":
        round(backbone_m, 2), "batch": args.batch, "cached_width": width,
        "repeats": args.repeats, "device": str(dev), "settings": sets}, args.out)


if __name__ == "__main__":
    main()
