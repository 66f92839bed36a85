"""The model that ships, timed as a user runs it (``benchmarks/predict_throughput.py``, profile
``shipped``), and what its rates are read against.

* :func:`shipped_vs_backbone`: ``qfm predict`` on torch (NHWC and NCHW weights; with its
  decoding workers and without) and on ONNX Runtime, against the bare backbone and the bare
  ONNX model on the same pre-decoded crops, in one run, the sides interleaved.
* :func:`conv_roofline`, :func:`backbone_gflops`: this machine's dense-convolution rate and the
  backbone's cost per image, so that a rate can be read as a share of the machine.

The machine record, the photos and the other benchmarks' parts: :mod:`harness`. Nothing here
is measured on import.
"""

from __future__ import annotations

import qfm  # noqa: F401  first: it sets OMP_WAIT_POLICY before torch loads, as `qfm predict` does

import copy
import importlib.util
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

Side = Callable[[], float]  # one timed pass over every photo → seconds


def copy_channels_last(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with NHWC weights (the fast CPU path)."""
    return copy.deepcopy(module).to(memory_format=torch.channels_last)


def onnx_versions(**extra) -> dict:
    """The ONNX Runtime, onnx and onnxscript versions a result was measured with."""
    import onnx
    import onnxruntime
    import onnxscript

    return {"onnx": {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
                     "onnxscript": onnxscript.__version__, **extra}}


def interleave(sides: dict[str, Side], repeats: int) -> tuple[dict, dict]:
    """Each side once as a warm-up (workers, page cache, kernel choices, a compilation), then
    ``repeats`` rounds of every side in order, so that a change of load hits all of them.

    Returns:
        (warm-up seconds per side, the rounds' seconds per side).
    """
    warm = {name: side() for name, side in sides.items()}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, side in sides.items():
            times[name].append(side())
    return warm, times


def per_round(times: dict[str, list[float]], a: str, b: str) -> float:
    """Side ``a``'s rate ÷ side ``b``'s: the median over rounds of b's seconds ÷ a's."""
    return round(statistics.median(tb / ta for ta, tb in zip(times[a], times[b])), 3)


def shipped_vs_backbone(checkpoint: str | Path, files: list[str], repeats: int = 3,
                        batch: int = 16, workers: int | None = None,
                        onnx: bool | None = None, compiled: bool = False) -> dict:
    """The shipped checkpoint as a user runs it against its bare parts on the same crops.

    Predict (:func:`qfm.predict.score_files`, its own preprocessing, CPU) runs with NHWC
    weights (``predict_fast``, its default), NCHW weights (``predict_plain``), NHWC without
    decoding workers (``predict_fast_w0``: decoding in the main process, torch on all threads)
    and, with ``onnx`` (default: where onnxruntime is installed), on ONNX Runtime
    (``predict_onnx``, ``--runtime onnx``; exported once, before the timings). The references
    score the same crops, decoded once beforehand as predict lays them out (NHWC in memory):
    the bare backbone (``forward_intermediates``, what its tokens need) with NHWC
    (``backbone_fast``) or NCHW weights (``backbone_plain``) and all-NCHW (``backbone_nchw``:
    contiguous crops, as training and the token caches see), on the torch threads predict
    leaves its model; with ``onnx``, the whole model on the session predict builds
    (``model_onnx``: all of torch's threads, idle threads asleep while workers decode). With
    ``compiled``, also the whole torch model, eager NHWC (``model_fast``) and
    ``torch.compile``d (``model_compiled``; compiled in its warm-up, whose seconds are kept).

    Args:
        checkpoint: the ``.safetensors`` checkpoint (the shipped default).
        files: the photos to score.
        repeats: timed rounds (each side once a round, after one warm-up each).
        batch: images per forward pass, every side.
        workers: predict's decoding processes (None: its own default on a CPU).
        onnx: time ONNX Runtime (None: where it is installed).
        compiled: time the eager and the compiled torch model.
    Returns:
        ``<side>_images_per_s`` of every side, ``ratio_predict_over_backbone`` (torch: fast
        predict ÷ fast backbone), ``speedup_channels_last`` (fast ÷ plain predict),
        ``speedup_w0_over_workers`` (predict without workers ÷ with them) and
        ``faster_torch_workers``; with ``onnx`` ``ratio_predict_onnx_over_model_onnx``,
        ``speedup_onnx_over_channels_last``, ``speedup_onnx_over_plain``,
        ``speedup_onnx_over_torch_w0`` and the versions; with ``compiled``
        ``speedup_compile_model`` (and ``speedup_onnx_model``) over the eager model. Every
        ratio is the median of per-round ratios.
    """
    from qfm.core.inference import load_model
    from qfm.data.transforms import short_side
    from qfm.predict import ImageFiles, default_workers, score_files

    model, meta = load_model(checkpoint, "cpu", channels_last=False)
    cfg = meta["config"]
    size, k = int(cfg["model"]["img_size"]), int(cfg["train"]["test_crops"])
    pre = meta.get("preprocess") or {}
    resize = short_side(int(pre["short_side"])) if pre.get("short_side") else None
    threads = torch.get_num_threads()  # predict's, before it lowers torch's for its workers
    cores = len(os.sched_getaffinity(0))
    workers = default_workers("cpu", cores) if workers is None else workers
    model_threads = max(1, min(threads, cores - workers))  # the cores predict leaves torch
    if onnx is None:
        onnx = importlib.util.find_spec("onnxruntime") is not None
    ds = ImageFiles(files, size, k, resize)
    # (N·K, 3, S, S), laid out as predict decodes them: NHWC in memory (a permuted HWC array)
    crops = torch.stack([ds[i][1] for i in range(len(ds))]).flatten(0, 1)

    def on_crops(net: torch.nn.Module, n_threads: int, nchw: bool = False) -> Side:
        @torch.no_grad()
        def side() -> float:
            torch.set_num_threads(n_threads)
            t = time.perf_counter()
            for b in range(0, len(crops), batch):
                x = crops[b:b + batch]
                net(x.contiguous() if nchw else x)  # nchw: NCHW in and out
            torch.set_num_threads(threads)
            return time.perf_counter() - t
        return side

    def predict(n_workers: int, channels_last: bool = True, runtime: str = "torch") -> Side:
        def side() -> float:
            t = time.perf_counter()
            table = score_files(files, checkpoint, batch_size=batch, device="cpu",
                                workers=n_workers, progress=False,
                                channels_last=channels_last, runtime=runtime)
            assert (table["error"] == "").all() and len(table) == len(files)
            return time.perf_counter() - t
        return side

    # each ratio's two sides next to each other in a round
    backbone = model.backbone
    sides = {"predict_fast": predict(workers),
             "backbone_fast": on_crops(copy_channels_last(backbone), model_threads),
             "predict_plain": predict(workers, channels_last=False),
             "backbone_plain": on_crops(backbone, model_threads),
             "backbone_nchw": on_crops(backbone, model_threads, nchw=True),
             "predict_fast_w1": predict(1)}  # the other policy on 2 cores: one decoder
    if workers:
        sides["predict_fast_w0"] = predict(0)
    onnx_workers = default_workers("cpu", cores, "onnx")
    session = {"threads": threads, "spin": not onnx_workers}  # the session predict builds
    if onnx:
        from qfm.onnx_runtime import OrtModel, export

        ort = OrtModel(export(model, cfg["model"]), **session)
        sides |= {"predict_onnx": predict(onnx_workers, runtime="onnx"),
                  "model_onnx": on_crops(ort, threads)}
    if compiled:
        eager = copy_channels_last(model)
        sides |= {"model_fast": on_crops(eager, model_threads),
                  "model_compiled": on_crops(torch.compile(eager, dynamic=False),
                                             model_threads)}
    warm, times = interleave(sides, repeats)
    if not workers:  # predict's default is the no-decoder policy: one timing serves both
        times["predict_fast_w0"] = times["predict_fast"]
    n = len(files)

    def per(a: str, b: str) -> float:
        return per_round(times, a, b)

    out = {"checkpoint": Path(checkpoint).name, "backbone": cfg["model"]["backbone"],
           "img_size": size, "crops_per_image": k, "short_side": pre.get("short_side"),
           "images": n, "batch": batch, "predict_workers": workers,
           "model_threads": model_threads,
           **{f"{s}_images_per_s": round(n / statistics.median(v), 2) for s, v in times.items()},
           "ratio_predict_over_backbone": per("predict_fast", "backbone_fast"),
           "speedup_channels_last": per("predict_fast", "predict_plain"),
           "speedup_channels_last_backbone": per("backbone_fast", "backbone_plain"),
           "speedup_nhwc_over_nchw_backbone": per("backbone_fast", "backbone_nchw"),
           "speedup_w0_over_workers": per("predict_fast_w0", "predict_fast_w1"),
           "predict_onnx_workers": onnx_workers}
    out["faster_torch_workers"] = 0 if out["speedup_w0_over_workers"] > 1 else 1
    if onnx:
        out |= onnx_versions(session_threads=threads, spin=session["spin"]) | {
            "ratio_predict_onnx_over_model_onnx": per("predict_onnx", "model_onnx"),
            "speedup_onnx_over_channels_last": per("predict_onnx", "predict_fast"),
            "speedup_onnx_over_plain": per("predict_onnx", "predict_plain"),
            "speedup_onnx_over_torch_w0": per("predict_onnx", "predict_fast_w0")}
    else:
        out["onnx"] = "not timed"
    if compiled:  # each model on the threads predict gives it: ONNX all, torch the rest
        out |= {"model_compiled_first_call_s": round(warm["model_compiled"], 1),
                "speedup_compile_model": per("model_compiled", "model_fast")}
        if onnx:
            out["speedup_onnx_model"] = per("model_onnx", "model_fast")
    return out


def conv_roofline(threads: int, side: int = 56, channels: int = 64, repeats: int = 5) -> dict:
    """This machine's attained rate of a dense 3×3 convolution (NHWC, fp32, batch 16): the
    practical ceiling a convolutional backbone's GFLOP/s can be read against (Lite0's
    depthwise convolutions are memory-bound and sit below it).

    Args:
        threads: torch threads while it runs (restored after).
    Returns:
        ``conv3x3_gflop_per_s``, the threads and the input shape.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval() \
        .to(memory_format=torch.channels_last)
    x = torch.rand(16, channels, side, side).contiguous(memory_format=torch.channels_last)
    flops = 2 * 16 * channels * channels * 9 * side * side
    try:
        with torch.no_grad():
            conv(x)
            t = time.perf_counter()
            for _ in range(repeats):
                conv(x)
            sec = (time.perf_counter() - t) / repeats
    finally:
        torch.set_num_threads(before)
    return {"conv3x3_gflop_per_s": round(flops / sec / 1e9, 1), "threads": threads,
            "shape": [16, channels, side, side]}


def backbone_gflops(model: torch.nn.Module, size: int) -> float:
    """GFLOPs of one image through ``model`` at ``size``×``size`` (torch's flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 3, size, size))
    return counter.get_total_flops() / 1e9
