"""The caches' frozen upstream, contiguous against channels-last, in one run.

The study's token cache (:func:`qfm.study.real.extract`: the whole LIVEC photo, short side
500 px, through the frozen Lite0) and the fine-tuning regime's tail cache
(:func:`qfm.models.tail.packed`: the frozen stages, up to the trainable last one, at 384 px)
hold the upstream as :func:`qfm.study.tokens.build_backbone` builds it, contiguous. This times
both caches' forward on the CPU default's upstream (ImageNet Lite0) contiguous and
channels-last, rounds alternating so machine load hits both alike, on random images of the
caches' sizes, and reports images/s, the speedup (median of per-round ratios) and the largest
difference between the two layouts' outputs (relative to the largest output). Why the caches
stay contiguous though channels-last is faster: ``benchmarks/tuning_stability.py``.

    .venv/bin/python benchmarks/cache_throughput.py [--images 32] [--rounds 3] [--out FILE]

CPU, 2 cores: minutes (its stored result says how long).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import torch
from harness import PARAMS, Record, add_out_argument, cpu_default, shipped_weights

from qfm.config import read_params
from qfm.models.tail import layout, packed
from qfm.study.tokens import build_backbone

BATCH = 8  # the caches' batch (real.extract, finetune.extract_real)


def caches() -> tuple[tuple[str, int], ...]:
    """(cache, side in px): the LIVEC recipes of params.yaml (``livec.resize``,
    ``finetune.livec.resize``)."""
    raw = read_params(PARAMS)
    return (("tokens", int(raw["livec"]["resize"])),
            ("tail", int(raw["finetune"]["livec"]["resize"])))


def rate(fn, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(images/s, outputs) of ``fn`` over ``x`` in batches of :data:`BATCH`."""
    t0, out = time.perf_counter(), []
    for i in range(0, len(x), BATCH):
        out.append(fn(x[i:i + BATCH]))
    return len(x) / (time.perf_counter() - t0), torch.cat(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=32, help="images per cache and round")
    ap.add_argument("--rounds", type=int, default=3)
    add_out_argument(ap, "cache_throughput")
    args = ap.parse_args(argv)
    record = Record("cache_throughput")
    cfg = cpu_default()
    with tempfile.TemporaryDirectory() as tmp, shipped_weights(cfg, tmp):
        plain = build_backbone(cfg.model)
    nets = {"contiguous": plain,
            "channels_last": copy.deepcopy(plain).to(memory_format=torch.channels_last)}
    result = {"backbone": cfg.model.backbone, "weights": cfg.model.weights, "batch": BATCH,
              "images": args.images, "rounds": args.rounds, "caches": {}}
    gen = torch.Generator().manual_seed(0)
    for cache, side in caches():
        x = torch.rand(args.images, 3, side, side, generator=gen)
        rates: dict[str, list[float]] = {k: [] for k in nets}
        outs = {}
        infos = {k: layout(bb, 1) for k, bb in nets.items()}
        with torch.inference_mode():
            for _ in range(args.rounds):
                for k, bb in nets.items():
                    fn = bb if cache == "tokens" else (
                        lambda b, bb=bb, k=k: packed(bb, b, infos[k]))
                    r, outs[k] = rate(fn, x)
                    rates[k].append(r)
        a, b = outs["contiguous"].float(), outs["channels_last"].float()
        ratios = [c / p for c, p in zip(rates["channels_last"], rates["contiguous"])]
        result["caches"][cache] = {
            "side": side,
            "images_per_s": {k: round(statistics.median(v), 2) for k, v in rates.items()},
            "speedup_channels_last": round(statistics.median(ratios), 3),
            "max_abs_diff_relative": float((a - b).abs().max() / a.abs().max())}
    return record.finish(result, args.out)


if __name__ == "__main__":
    main()
