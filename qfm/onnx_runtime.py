"""Scoring with ONNX Runtime, a runtime made for CPUs (``qfm predict --runtime onnx``,
``qfm.load_scorer(runtime="onnx")``); the torch model stays the default and the fallback.

A loaded model is exported once to ONNX by torch's dynamo exporter (the TorchScript exporter
cannot export the multiscale tokens' adaptive pooling of, e.g., a 63-px map into a 3×3 grid),
for a batch of any size of ``img_size``-square crops, and cached under ``runs/onnx/`` (ignored
by git): the file is named by a digest of the weights, the model config and the exporter's
versions, so a changed checkpoint or torch gets a new export, and it is written atomically.
Exporting the shipped model takes minutes on 2 cores; later loads read the cached file.

Optional: ``pip install 'qfm[onnx]'`` (onnxruntime, and onnx + onnxscript for the export).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from qfm import paths
from qfm.files import atomic_write

RUNTIMES = ("torch", "onnx")
OPSET = 18
INSTALL = "pip install 'qfm[onnx]'"
FORMAT = 1  # bump when the exported graph's inputs or outputs change


def check_runtime(name: str) -> str:
    """``name`` if it is a runtime qfm knows, else a one-line ValueError."""
    if name not in RUNTIMES:
        raise ValueError(f"--runtime: expected one of {', '.join(RUNTIMES)}, got {name!r}")
    return name


def _require(*modules: str) -> None:
    """Find ``modules`` (not imported: onnxscript alone takes most of a second) or raise a
    one-line error naming the extra that installs them."""
    import importlib.util

    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise RuntimeError(f"--runtime onnx needs the {name} package: {INSTALL}")


def cache_file(model: torch.nn.Module, config: dict, folder: str | Path | None = None) -> Path:
    """Where the export of ``model`` lives.

    Args:
        model: the loaded torch model.
        config: its ``model`` config section (the checkpoint's ``config.model``).
        folder: the cache folder (default ``runs/onnx`` under the project home).
    Returns:
        ``folder/<digest[:16]>.onnx``; the digest covers every weight (name, dtype, shape,
        bytes, whatever its memory layout), the config (heads, grid, tokens and the crop size
        change the graph, not the weights) and the torch, onnxscript and opset versions.
    """
    from importlib.metadata import version

    h = hashlib.sha256(json.dumps([FORMAT, config, OPSET, torch.__version__,
                                   version("onnxscript")], sort_keys=True,
                                  default=str).encode())
    for name, t in model.state_dict().items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    folder = Path(folder) if folder is not None else paths.runs_dir() / "onnx"
    return folder / f"{h.hexdigest()[:16]}.onnx"


def export(model: torch.nn.Module, config: dict, folder: str | Path | None = None) -> Path:
    """Export ``model`` to ONNX for its (B, 3, S, S) crops, unless its export is cached.

    Args:
        model: the loaded torch model, on the CPU (left as it is: a float32, NCHW copy is
            exported).
        config: its ``model`` config section; S is its ``img_size``.
        folder: the cache folder (see :func:`cache_file`).
    Returns:
        The ``.onnx`` file: input ``image`` (B, 3, S, S) float32 in [0, 1], output ``score``
        (B,) normalised.
    """
    _require("onnxruntime", "onnx", "onnxscript")
    if next(model.parameters()).device.type != "cpu":
        raise ValueError("--runtime onnx runs on the CPU: use --device cpu (or --runtime torch)")
    path = cache_file(model, config, folder)
    size = int(config["img_size"])
    if path.is_file():
        return path
    print(f"qfm: exporting the model to ONNX once (minutes for Lite0 at 500 px), to {path}",
          file=sys.stderr)
    net = copy.deepcopy(model).float().to(memory_format=torch.contiguous_format).eval()
    batch = torch.export.Dim("batch", min=1)
    log = logging.getLogger("onnxscript")
    level = log.level
    log.setLevel(logging.ERROR)  # its constant folder's notes would reach stdout (the CSV)
    try:
        with contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            program = torch.onnx.export(net, (torch.rand(2, 3, size, size),), dynamo=True,
                                        input_names=["image"], output_names=["score"],
                                        dynamic_shapes=({0: batch},), opset_version=OPSET,
                                        external_data=False, verbose=False)
    except Exception as err:  # noqa: BLE001  the exporter's error classes vary with torch
        msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise RuntimeError(f"ONNX export failed ({type(err).__name__}: {msg}); use "
                           f"--runtime torch") from None
    finally:
        log.setLevel(level)
    return atomic_write(path, lambda tmp: program.save(tmp))


def _machine() -> str:
    """What an optimised graph is specific to: ONNX Runtime's version and this CPU's ISA."""
    import platform

    import onnxruntime

    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        flags = platform.processor()
    key = f"{onnxruntime.__version__} {platform.machine()} {flags}"
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class OrtModel(torch.nn.Module):
    """An ONNX Runtime session called like the torch model: crops → normalised scores.

    The first session on a machine optimises the graph (fusions, the CPU's blocked NCHWc
    layout) and saves it beside the export (``<name>.<machine>.ort.onnx``: the layout is
    specific to the CPU and the runtime's version, both in the name); later sessions load it
    as it is, which takes a third of the start-up (measured on 2 cores).

    Args:
        path: an ``.onnx`` file from :func:`export`.
        threads: intra-op threads (default: ``torch.get_num_threads()`` now, so that the
            session uses the cores ``qfm predict`` leaves to the model).
        spin: let idle intra-op threads spin-wait (ONNX Runtime's default); off, they sleep,
            so decoding processes on the same cores run between the model's operators.
    """

    def __init__(self, path: str | Path, threads: int | None = None, spin: bool = True):
        super().__init__()
        _require("onnxruntime")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.ready = self.path.with_name(f"{self.path.stem}.{_machine()}.ort.onnx")
        if self.ready.is_file():
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self.session = ort.InferenceSession(str(self.ready), opts,
                                                providers=["CPUExecutionProvider"])
            return

        def build(tmp: str) -> None:
            opts.optimized_model_filepath = tmp
            self.session = ort.InferenceSession(str(path), opts,
                                                providers=["CPUExecutionProvider"])

        atomic_write(self.ready, build)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) → (B,); x (B, K, 3, S, S) → the mean over the K crops (B,)."""
        if x.ndim == 5:
            b, k = x.shape[:2]
            return self.forward(x.flatten(0, 1)).view(b, k).mean(1)
        arr = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(["score"], {"image": arr})[0])


def onnx_model(model: torch.nn.Module, meta: dict, folder: str | Path | None = None,
               threads: int | None = None) -> OrtModel:
    """The ONNX Runtime twin of a model from :func:`qfm.core.inference.load_model`.

    Args:
        model: the loaded torch model (on the CPU).
        meta: its checkpoint metadata (``config.model`` says what to export).
        folder: see :func:`export`; threads: see :class:`OrtModel`.
    Returns:
        An :class:`OrtModel` (exported on first use, then read from the cache).
    """
    return OrtModel(export(model, meta["config"]["model"], folder), threads)
