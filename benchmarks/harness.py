"""What the benchmarks (``benchmarks/*.py``) share, so that each is written once.

* :class:`Record`: the one machine/load record every result carries (``result["machine"]``:
  cores, threads, load average before and after, times, command) and the one way a result is
  stored — atomically, by default in ``benchmarks/results/<name>.json``, the folder the book's
  Performance page reads (:mod:`qfm.report.performance`).
* :func:`synthetic_photos`, :func:`train_step`, :func:`predict_vs_backbone`: the photos, the
  training step and the ``qfm predict`` ÷ backbone timing that several benchmarks use.

The model that ships, timed as a user runs it (torch and ONNX Runtime), is :mod:`shipped`'s.

Nothing here is measured on import; the benchmarks decide what to time.
"""

from __future__ import annotations

import qfm  # noqa: F401  first: it sets OMP_WAIT_POLICY before torch loads, as every qfm command does

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from qfm import paths
from qfm.config import RunConfig, load_params, read_params
from qfm.files import write_json

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"  # the CPU default


def cpu_default() -> RunConfig:
    """The CPU default every benchmark that claims it times: ``params.yaml`` as it stands
    (its ``model`` section: the Lite0 upstream with ImageNet weights, at the study's size).
    The run sections are read strictly; pipeline sections are the stages' business."""
    return load_params(PARAMS, sections=read_params(PARAMS))


@contextlib.contextmanager
def shipped_weights(cfg: RunConfig, folder: str | Path):
    """``QFM_HOME`` = ``folder`` with the model's shipped ImageNet weights mapped into it
    (``qfm weights NAME``), while the model is built; nothing when it has none."""
    from qfm.core.weights import SOURCES, import_weights

    if cfg.model.weights not in SOURCES:
        yield
        return
    old = os.environ.get("QFM_HOME")
    os.environ["QFM_HOME"] = str(folder)
    try:
        import_weights(cfg.model.weights, paths.imagenet_weights(cfg.model.weights))
        yield
    finally:
        if old is None:
            os.environ.pop("QFM_HOME", None)
        else:
            os.environ["QFM_HOME"] = old


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def add_out_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out``: where the result is stored (default ``benchmarks/results/<name>.json``;
    ``-`` prints it only)."""
    parser.add_argument("--out", default=str(paths.bench_results_dir() / f"{name}.json"),
                        help="JSON file, written atomically (default: %(default)s; "
                        "'-': print only)")


class Record:
    """The machine and its load around one benchmark run; stores the result.

    Create it before measuring and call :meth:`finish` with the result: the result gains
    ``benchmark`` (the name) and ``machine`` (the schema :mod:`qfm.report.performance` reads).
    """

    def __init__(self, name: str):
        self.name, self.t0 = name, time.perf_counter()
        self.machine: dict[str, Any] = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]).replace(
                f"{PARAMS.parent}/", ""),  # no machine path: relative to the checkout
            "started": _now(), "cpu_cores": len(os.sched_getaffinity(0)),
            "cpu": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average_before": _load()}

    def finish(self, result: dict, out: str | Path | None) -> dict:
        """Add the machine record, print the result as JSON, store it at ``out``.

        Args:
            result: the benchmark's own numbers.
            out: the JSON file (None or ``-``: printed only).
        Returns:
            The result as stored.
        """
        self.machine.update(finished=_now(), seconds=round(time.perf_counter() - self.t0, 1),
                            load_average_after=_load())
        result = {"benchmark": self.name, **result, "machine": self.machine}
        print(json.dumps(result, indent=2), flush=True)
        if out is not None and str(out) != "-":
            write_json(result, out)
        return result


def _photo(job: tuple[str, int, int, int]) -> None:
    """One synthetic photo: smooth random colour field + grain, JPEG of random quality."""
    path, w, h, seed = job
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    arr = np.asarray(low.resize((w, h), Image.Resampling.BICUBIC), dtype=np.int16)
    arr = arr + rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
        path, quality=int(rng.integers(60, 96)))


def synthetic_photos(folder: str | Path, n: int, size: tuple[int, int],
                     procs: int = 1) -> list[str]:
    """Write ``n`` JPEG photos of ``size`` (w, h) to ``folder``, seeded by their index.

    Args:
        procs: processes writing them (a large set: all cores).
    Returns:
        Their paths (``im_00000.jpg``, ...), in index order.
    """
    jobs = [(str(Path(folder) / f"im_{i:05d}.jpg"), *size, i) for i in range(n)]
    if procs > 1:
        with ProcessPoolExecutor(procs) as pool:
            list(pool.map(_photo, jobs, chunksize=64))
    else:
        for job in jobs:
            _photo(job)
    return [j[0] for j in jobs]


def train_step(model: torch.nn.Module, optimizer, objective, batch: dict,
               clip: float) -> dict:
    """One training step as the engine takes it: objective → backward → clip → optimizer."""
    loss, logs = objective(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return logs


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (timing); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def predict_vs_backbone(cfg: RunConfig, files: list[str], folder: str | Path,
                        device: torch.device, *, batch: int, repeats: int,
                        workers: int | None = None,
                        backbone_threads: int | None = None) -> dict:
    """``qfm predict`` throughput ÷ the bare backbone's on the very same crops.

    A random-weight checkpoint of ``cfg.model`` is saved in ``folder``. Predict
    (:func:`qfm.predict.score_files`) scores ``files`` — decoding in its workers, multi-crop
    averaging, the score table; the reference is the backbone alone (``forward_features``,
    bf16 on a GPU) on the same crops, decoded once beforehand in this process (timed). Runs
    alternate (predict, backbone, …) after one warm-up each; the ratio is the median of the
    per-pair ratios.

    Args:
        batch: images per forward pass, both sides.
        repeats: timed (predict, backbone) pairs.
        workers: predict's decoding processes (None: its own default).
        backbone_threads: torch threads of the backbone side (None: as they are); on a CPU,
            the cores predict leaves its model.
    Returns:
        Images/s of each side and of decoding alone, and ``ratio_predict_over_backbone``.
    """
    from qfm.config import to_dict
    from qfm.core.checkpoint import save_tensors
    from qfm.core.inference import autocast
    from qfm.models import build_model
    from qfm.predict import ImageFiles, score_files

    torch.manual_seed(0)
    model = build_model(cfg.model).eval()
    ckpt = Path(folder) / "bench_model.safetensors"
    save_tensors(model.state_dict(), ckpt, {"config": to_dict(cfg), "dataset": "world",
                                            "label_scale": {"offset": 0.0, "scale": 1.0}})
    size, k = cfg.model.img_size, cfg.train.test_crops
    threads = torch.get_num_threads()
    ds = ImageFiles(files, size, k)
    torch.set_num_threads(1)  # as in a decoding worker
    t = time.perf_counter()
    crops = torch.stack([ds[i][1] for i in range(len(ds))])  # (N, K, 3, S, S)
    decode_s = time.perf_counter() - t
    torch.set_num_threads(threads)
    net = model.backbone.net.to(device)

    @torch.no_grad()
    def backbone() -> float:
        torch.set_num_threads(backbone_threads or threads)
        synchronize(device)
        t = time.perf_counter()
        with autocast(device, amp=True):
            for b in range(0, len(crops), batch):
                net.forward_features(crops[b:b + batch].flatten(0, 1).to(device))
        synchronize(device)
        torch.set_num_threads(threads)
        return time.perf_counter() - t

    def predict() -> float:
        t = time.perf_counter()
        table = score_files(files, ckpt, batch_size=batch, device=device.type,
                            workers=workers, progress=False)
        assert (table["error"] == "").all() and len(table) == len(files)
        return time.perf_counter() - t

    predict(), backbone()  # warm-up: workers, page cache, kernel choices
    pred_s, back_s = [], []
    for _ in range(repeats):
        pred_s.append(predict())
        back_s.append(backbone())
    n = len(files)
    return {"backbone": cfg.model.backbone, "img_size": size, "crops_per_image": k,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "images": n, "batch": batch, "predict_workers": workers,
            "backbone_threads": backbone_threads or threads,
            "predict_images_per_s": round(n / statistics.median(pred_s), 2),
            "backbone_images_per_s": round(n / statistics.median(back_s), 2),
            "decode_crop_images_per_s_one_process": round(n / decode_s, 1),
            "ratio_predict_over_backbone": round(statistics.median(
                b / p for p, b in zip(pred_s, back_s)), 3)}
