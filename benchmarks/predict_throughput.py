"""``qfm predict`` throughput ÷ its bare model's on the same crops, on the model that ships.

Profiles:

* ``shipped`` — ``models/default.safetensors`` (``dvc repro default``) as a user runs it: its
  own preprocessing (short side 500 px, the whole centre crop), on synthetic JPEGs of CLIVE's
  size (500×500), on a CPU, in one run: on torch's fast path (NHWC weights,
  :func:`qfm.core.inference.load_model`), with its decoding workers and without, on the plain
  one (NCHW) and, where onnxruntime is installed (``pip install 'qfm[onnx]'``), on ONNX Runtime
  (``--runtime onnx``); against its bare backbone on the same crops in both layouts and, for
  ONNX Runtime, its bare ONNX model on the same crops and session
  (:func:`shipped.shipped_vs_backbone`); with this machine's dense-convolution rate and the
  backbone's GFLOPs per image (:func:`shipped.conv_roofline`), so the page can say how close
  predict comes to the machine. Targets, per runtime (:func:`verdicts`): :data:`TARGET_RATE`
  images/s (goal :data:`GOAL_RATE`) and predict ÷ its bare model (torch: the backbone) ≥
  :data:`TARGET`, both in one run.
* ``paper`` — the paper profile's model (``qfm.paper.PAPER_PROFILE``, random weights) at 224 px
  with 5 crops, on 512×384 photos (:func:`harness.predict_vs_backbone`).

    .venv/bin/python benchmarks/predict_throughput.py [--images N] [--repeats 3]
        [--profiles shipped paper] [--out FILE] [--quick] [--no-onnx] [--compile]

CPU, 2 cores: minutes for ``shipped`` (plus a few the first time ONNX Runtime is timed: the
export, cached in ``runs/onnx/``), half an hour for ``paper``. ``--quick`` proves the script
runs: 8 photos, one round, ``shipped`` only, printed and stored nowhere unless ``--out`` says.
A profile left out of ``--profiles`` keeps its entry of the previous result file, marked
``"carried_over": true`` with the date it was measured. The measured numbers live in
``benchmarks/results/predict_throughput.json`` and on the book's Performance page, not here.
"""

from __future__ import annotations

import qfm  # noqa: F401  first: it sets OMP_WAIT_POLICY before torch loads, as `qfm predict` does

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch

from harness import Record, add_out_argument, predict_vs_backbone, shipped_weights, synthetic_photos
from shipped import backbone_gflops, conv_roofline, shipped_vs_backbone
from qfm import paths
from qfm.config import RunConfig, override
from qfm.core.inference import load_model
from qfm.paper import profile_section
from qfm.predict import default_workers

PROFILES = {  # photos to score (start-up costs small), their size
    "shipped": (96, (500, 500)),  # CLIVE's photos are 500×500
    "paper": (24, (512, 384)),
}
TARGET = 0.9  # predict ÷ backbone, at least
TARGET_RATE, GOAL_RATE = 7.0, 10.0  # the shipped model's images/s on the reference machine
RUNTIMES = {  # runtime → (predict's images/s, predict ÷ its bare model on the same crops)
    "torch": ("predict_fast_images_per_s", "ratio_predict_over_backbone"),
    "onnx": ("predict_onnx_images_per_s", "ratio_predict_onnx_over_model_onnx"),
}


def paper_config() -> RunConfig:
    """The paper profile's model, random weights (timing needs the architecture only)."""
    return override(RunConfig(), {f"model.{k}": v for k, v in
                                  {**profile_section("model"), "weights": "none"}.items()})


def verdicts(res: dict) -> dict:
    """Which runtime meets the target and which the goal, in the shipped entry ``res``.

    Returns:
        ``meets_target_by_runtime`` and ``meets_goal_by_runtime``: runtime → whether its
        predict reaches :data:`TARGET_RATE` (:data:`GOAL_RATE`) images/s with predict ÷ its
        bare model ≥ :data:`TARGET`; a runtime not timed is left out.
    """
    timed = {name: (res[rate], res[ratio]) for name, (rate, ratio) in RUNTIMES.items()
             if rate in res and ratio in res}
    return {f"meets_{level}_by_runtime": {name: rate >= bar and ratio >= TARGET
                                          for name, (rate, ratio) in timed.items()}
            for level, bar in (("target", TARGET_RATE), ("goal", GOAL_RATE))}


def shipped(args, workers: int, cores: int) -> dict:
    """The shipped checkpoint's entry: throughput of every path, ratios, roofline, verdicts."""
    ckpt = paths.default_checkpoint()
    if not ckpt.is_file():
        raise SystemExit(f"predict_throughput: {ckpt} missing (run `dvc repro default`)")
    n, size = PROFILES["shipped"]
    with tempfile.TemporaryDirectory() as tmp:
        files = synthetic_photos(tmp, args.images or n, size)
        res = shipped_vs_backbone(ckpt, files, args.repeats, args.batch, workers,
                                  onnx=False if args.no_onnx else None,
                                  compiled=args.compile)
    model, _ = load_model(ckpt, "cpu", channels_last=False)
    gflops = backbone_gflops(model.backbone, res["img_size"])
    roof = conv_roofline(max(1, cores - workers))
    rate = res["predict_fast_images_per_s"]
    return {**res, "photo_size": list(size), "backbone_gflops_per_image": round(gflops, 2),
            "predict_gflop_per_s": round(gflops * rate, 1),
            "backbone_gflop_per_s": round(gflops * res["backbone_fast_images_per_s"], 1),
            "roofline": roof,
            "predict_share_of_conv_rate": round(gflops * rate / roof["conv3x3_gflop_per_s"], 3),
            "target_images_per_s": TARGET_RATE, "goal_images_per_s": GOAL_RATE,
            **verdicts(res)}


def carried_over(out: str | None, names: list[str]) -> dict:
    """The previous result file's entries of the profiles not measured in this run."""
    if out is None or out == "-" or not Path(out).is_file():
        return {}
    try:
        old = json.loads(Path(out).read_text())
    except (OSError, ValueError):
        return {}
    when = old.get("machine", {}).get("finished")
    return {k: {**v, "carried_over": True, "measured": v.get("measured", when)}
            for k, v in old.get("profiles", {}).items() if k in PROFILES and k not in names}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=0, help="photos to score (0: per profile, "
                   "96 shipped / 24 paper)")
    p.add_argument("--batch", type=int, default=16, help="images per forward pass")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (every side once "
                   "a round)")
    p.add_argument("--workers", type=int, default=None, help="predict's decoding workers "
                   "(default: predict's own, half the cores)")
    p.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    p.add_argument("--no-onnx", action="store_true", help="do not time ONNX Runtime (timed "
                   "by default where onnxruntime is installed)")
    p.add_argument("--compile", action="store_true", help="also time the whole torch model on "
                   "the decoded crops: eager and torch.compile'd (about a minute to compile on "
                   "2 cores); the ONNX model is timed whenever ONNX Runtime is")
    p.add_argument("--quick", action="store_true", help="smoke run: 8 photos, 1 round, "
                   "shipped only, not stored (unless --out is given)")
    add_out_argument(p, "predict_throughput")
    args = p.parse_args()
    if args.quick:
        args.images, args.repeats, args.profiles = args.images or 8, 1, ["shipped"]
        args.out = "-" if args.out == p.get_default("out") else args.out
    record = Record("predict_throughput")
    cores = len(os.sched_getaffinity(0))
    workers = default_workers("cpu", cores) if args.workers is None else args.workers
    out = {"batch": args.batch, "repeats": args.repeats, "target_ratio": TARGET,
           "goal": f"shipped, per runtime: >= {TARGET_RATE:g} images/s (goal {GOAL_RATE:g}), "
                   f"predict ÷ its bare model (torch: the backbone) >= {TARGET}",
           "profiles": {}}
    for name in args.profiles:
        if name == "shipped":
            out["profiles"][name] = shipped(args, workers, cores)
            continue
        cfg = paper_config()
        n, (w, h) = PROFILES[name]
        with tempfile.TemporaryDirectory() as tmp:
            files = synthetic_photos(tmp, args.images or n, (w, h))
            with shipped_weights(cfg, tmp):
                res = predict_vs_backbone(
                    cfg, files, tmp, torch.device("cpu"), batch=args.batch,
                    repeats=args.repeats, workers=workers,
                    backbone_threads=max(1, min(torch.get_num_threads(), cores - workers)))
        out["profiles"][name] = {"weights": cfg.model.weights, "tokens": cfg.model.tokens,
                                 "photo_size": [w, h], **res, "meets_goal":
                                 res["ratio_predict_over_backbone"] >= TARGET}
    out["profiles"].update(carried_over(args.out, args.profiles))
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
