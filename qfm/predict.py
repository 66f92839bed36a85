"""Score images with a trained checkpoint (the ``qfm predict`` command).

Inputs are files, folders (searched recursively for image files) and glob patterns. Each image
is decoded in a DataLoader worker with :func:`qfm.data.transforms.load_rgb` (any mode PIL
reads, EXIF rotation applied), resized the way the checkpoint's training set was (SPAQ,
KonIQ-10k; JPEGs are first reduced by the decoder when that is cheap), cut into the same
deterministic crops as at test time and scored; the crops' scores are averaged.

A file that cannot be scored (missing, empty, truncated, corrupt, not an image) gets one line
on stderr and a row with an empty score and the reason in ``error``; the others are scored.
Scores are reported on the training set's MOS scale (``label_scale`` in the checkpoint's
sidecar: ``score = offset + scale · score_normalised``) and normalised to [0, 1].
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from qfm import paths
from qfm.core.inference import infer, load_model
from qfm.data.cache import needs_cache, target_size
from qfm.data.facts import canonical_name
from qfm.data.table import write_csv_atomic
from qfm.data.transforms import Resize, decode, ensure_min_size, eval_boxes, short_side
from qfm.onnx_runtime import OrtModel, check_runtime, export

COLUMNS = ["path", "score", "score_normalised", "error"]
IMAGE_SUFFIXES = frozenset(Image.registered_extensions())  # .jpg, .png, .tif, .webp, ...
# first bytes of JPEG, PNG, GIF, TIFF (both byte orders), BMP: a file that starts like an
# image but does not parse is corrupt, not "not an image"
_MAGIC = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*", b"BM")



def find_images(inputs: list[str]) -> list[str]:
    """Expand files, folders (recursive) and glob patterns into a list of files.

    Files named explicitly are kept whatever their suffix (and even when missing, so that
    they get a row saying so); folders contribute the files whose suffix PIL knows, hidden
    ones skipped. Order: as given, folders sorted; duplicates dropped.

    Args:
        inputs: paths and patterns as typed on the command line.
    Returns:
        File paths as strings.
    """
    out: list[str] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.is_file()
                          and f.suffix.lower() in IMAGE_SUFFIXES
                          and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif not p.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(str(p), recursive=True))
            out += [m for m in matches if Path(m).is_file()] or [item]
        else:
            out.append(str(p))
    return list(dict.fromkeys(out))


def preprocessing_resize(dataset: str | None) -> Resize | None:
    """The resize a real data set's protocol applies before training (None for others)."""
    try:
        key = canonical_name(dataset or "")
    except ValueError:  # the embedded default, or unknown: images are used as they are
        return None
    return (lambda w, h: target_size(key, w, h)) if needs_cache(key) else None


def why(err: BaseException, path: str) -> str:
    """One-line reason an image could not be decoded."""
    if isinstance(err, FileNotFoundError):
        return "file not found"
    if isinstance(err, IsADirectoryError):
        return "is a folder"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, UnidentifiedImageError):
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError:
            head = b""
        if not head:
            return "empty file"
        if head.startswith(_MAGIC) or head[8:12] == b"WEBP":
            return "corrupt image (header not readable)"
        return "not an image (format not recognised)"
    if isinstance(err, Image.DecompressionBombError):
        return f"image too large ({err})"
    if isinstance(err, MemoryError):
        return "image too large to decode in memory"
    msg = (str(err).splitlines() or [""])[0].strip() or type(err).__name__
    if "truncated" in msg.lower():
        return f"truncated image ({msg})"
    return f"corrupt image ({type(err).__name__}: {msg})"


def crops(im: Image.Image, size: int, n: int) -> torch.Tensor:
    """The ``n`` deterministic test crops of :class:`~qfm.data.transforms.TestTransform`,
    cut before the tensor conversion (a 6000×4000 photo never becomes a float tensor).

    Returns:
        (n, 3, size, size).
    """
    im = ensure_min_size(im, size)
    w, h = im.size
    pixels = np.asarray(im, dtype=np.uint8)  # (H, W, 3): the one copy out of PIL
    arr = np.stack([pixels[y:y + size, x:x + size]
                    for x, y in eval_boxes(w, h, size, n)])  # (n, S, S, 3)
    # the operations of to_tensor, once for all crops (bit-identical), the division in place
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(255.0)


class ImageFiles(Dataset):
    """Image files → (index, crops (n, 3, size, size) or None, error message or "")."""

    def __init__(self, files: list[str], size: int, n_crops: int,
                 resize: Resize | None = None):
        self.files, self.size, self.n, self.resize = files, size, n_crops, resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            return i, crops(decode(self.files[i], self.resize), self.size, self.n), ""
        except Exception as err:  # any failure is this file's, reported in its row
            return i, None, why(err, self.files[i])


def collate(items) -> dict:
    """Stack the decoded images of a batch; keep the failures apart."""
    ok = [(i, x) for i, x, e in items if not e]
    return {"index": [i for i, _ in ok],
            "image": torch.stack([x for _, x in ok]) if ok else None,  # (B, n, 3, S, S)
            "failed": [(i, e) for i, _, e in items if e]}


def default_workers(device_type: str, cores: int, runtime: str = "torch") -> int:
    """Decoding processes ``qfm predict`` starts by default. A GPU needs many decoders; on a
    CPU they share the model's cores. torch on 2 cores: none (decoding between batches, the
    model on both cores: 11.2 against 7.2 images/s with one decoder and one model thread);
    ONNX Runtime, whose idle threads sleep, keeps one decoder beside its session (27.4 images/s
    with it). Else half the cores, at most 4. Shipped model, ``benchmarks/predict_throughput.py``."""
    if device_type == "cuda":
        return min(8, cores - 1)
    return 0 if cores <= 2 and runtime == "torch" else min(4, max(1, cores // 2))


def score_files(inputs: list[str], checkpoint: str | Path | None = None, *,
                batch_size: int = 32, device: str = "auto", crops_per_image: int | None = None,
                workers: int | None = None, amp: bool = True,
                progress: bool | None = None, channels_last: bool | None = None,
                runtime: str = "torch") -> pd.DataFrame:
    """Score image files with a checkpoint.

    Args:
        inputs: files, folders and glob patterns (see :func:`find_images`).
        checkpoint: a ``.safetensors`` checkpoint (default ``models/default.safetensors``).
        batch_size: images per forward pass.
        device: ``auto`` | ``cpu`` | ``cuda``.
        crops_per_image: deterministic crops averaged per image (default: the checkpoint's
            ``train.test_crops``).
        workers: decoding processes (default: on CPU half the cores, at most 4, the model
            using the rest; on GPU up to 8; never more than there are batches).
        amp: bf16 autocast on GPU.
        progress: progress bar on stderr (default: when stderr is a terminal).
        channels_last: NHWC weights (default: on a CPU, where Lite0 runs ~2× faster; see
            :func:`qfm.core.inference.load_model`).
        runtime: ``torch`` | ``onnx`` (ONNX Runtime on the CPU, :mod:`qfm.onnx_runtime`).
    Returns:
        One row per file, columns :data:`COLUMNS`; failed files have NaN scores.
    """
    if checkpoint is None:
        checkpoint = paths.default_checkpoint()
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no default checkpoint (build it with "
                                    f"`dvc repro` or pass --checkpoint)")
    files = find_images(inputs)
    if not files:
        raise ValueError(f"no image files found in {' '.join(inputs)}")
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected >= 1, got {batch_size}")
    if crops_per_image is not None and crops_per_image < 1:
        raise ValueError(f"--crops: expected >= 1, got {crops_per_image}")
    onnx = check_runtime(runtime) == "onnx"
    if onnx and device == "auto":
        device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: no CUDA device available (use cpu or auto)")
    model, meta = load_model(checkpoint, device, channels_last)
    dev = next(model.parameters()).device
    cfg = meta["config"]
    if onnx:  # export (or find the cached export) before the progress bar starts
        onnx_file = export(model, cfg["model"])
    n = crops_per_image or int(cfg.get("train", {}).get("test_crops", 1))
    scale = meta.get("label_scale") or {"offset": 0.0, "scale": 1.0}
    pre = meta.get("preprocess") or {}
    resize = short_side(int(pre["short_side"])) if pre.get("short_side") else \
        preprocessing_resize(meta.get("dataset"))
    ds = ImageFiles(files, int(cfg["model"]["img_size"]), n, resize)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    if workers is None:
        workers = default_workers(dev.type, cores, "onnx" if onnx else "torch")
    workers = max(0, min(workers, math.ceil(len(files) / batch_size)))
    loader = DataLoader(ds, batch_size=batch_size, collate_fn=collate, num_workers=workers,
                        pin_memory=dev.type == "cuda")
    norm = np.full(len(files), np.nan)
    errors = [""] * len(files)
    bar = tqdm(total=len(files), unit="img", desc="predict", file=sys.stderr,
               disable=None if progress is None else not progress, dynamic_ncols=True)
    threads = torch.get_num_threads()
    if dev.type == "cpu" and workers:
        # the decoding workers take cores from the model; more model threads than free cores
        # only spin-wait (on 2 busy cores two threads ran a backbone 30× slower than one)
        torch.set_num_threads(max(1, min(threads, cores - workers)))
    with bar, _restore_threads(threads):
        batches = iter(loader)  # the workers start decoding while a session is built
        if onnx:  # all the model's threads, idle ones asleep: decoders run between operators
            model = OrtModel(onnx_file, threads=threads, spin=not workers)  # 1.6x (Performance)
        for batch in batches:
            for i, e in batch["failed"]:
                errors[i] = e
                bar.write(f"qfm: cannot score {files[i]}: {e}", file=sys.stderr)
            if batch["image"] is not None:
                norm[batch["index"]] = infer(model, batch["image"], dev, amp).double().numpy()
            bar.update(len(batch["index"]) + len(batch["failed"]))
    return pd.DataFrame({"path": files, "score": scale["offset"] + scale["scale"] * norm,
                         "score_normalised": norm, "error": errors}, columns=COLUMNS)


@contextlib.contextmanager
def _restore_threads(n: int):
    try:
        yield
    finally:
        torch.set_num_threads(n)


def write_scores(table: pd.DataFrame, out: str | Path | None) -> None:
    """Write the scores as CSV: atomically to ``out``, or to stdout when ``out`` is None/-."""
    if out is None or str(out) == "-":
        table.to_csv(sys.stdout, index=False)
        return

    write_csv_atomic(table, out)
