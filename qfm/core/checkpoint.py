"""Checkpoints: safetensors weights + a JSON sidecar (config, label scale, metrics, sha256).

Saving weights (:func:`save_tensors`, :func:`export_checkpoint`) and resumable
training state (:func:`save_run_state`, :func:`load_run_state`) live here, below the engine,
so ``qfm predict`` loads a model without importing training code. Loading never unpickles
anything: weights come from safetensors, everything else from JSON. Every write goes through
:func:`qfm.files.atomic_write`, so a killed process never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from qfm import __version__, paths
from qfm.files import (
    FileError,
    atomic_copy,
    atomic_write,
    code_version,
    read_json,
    sha256,
    write_json,
)


class CheckpointError(FileError):
    """A checkpoint is missing, corrupt or does not fit the model."""


def sidecar(path: str | Path) -> Path:
    """The JSON metadata file beside a ``.safetensors`` file."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(".safetensors") + ".json")



HEADER_KEY = "qfm_meta"  # the metadata, as JSON, in the safetensors header


def save_tensors(tensors: dict[str, torch.Tensor], path: str | Path,
                 meta: dict[str, Any] | None = None, code: bool = False) -> dict[str, Any]:
    """Save tensors as safetensors (atomically) and ``meta`` + sha256 as the JSON sidecar.

    ``code=True`` adds the code's git commit and ``dirty`` flag (:func:`qfm.files.code_version`):
    for a checkpoint of ``qfm train``, outside the pipeline. By default they are left out, as
    from every file a DVC stage writes (weights, token caches, heads, the default model): the
    same inputs then give the same bytes, so a clone's ``dvc repro`` leaves ``dvc.lock`` as
    committed (a clone runs another commit than the one the outputs were made at, and the
    working tree is "dirty" while DVC rewrites ``dvc.lock``).

    The metadata also goes into the safetensors header, so the weights file alone is complete
    and its rename is the one that counts: a kill before the sidecar's rename leaves the new
    weights beside an old sidecar, which :func:`load_tensors` recognises and sets aside.

    Returns:
        The metadata written.
    """
    path = Path(path)
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = dict(meta or {})
    meta.update(qfm_version=__version__, weights=path.name)
    if code:
        meta["code"] = code_version()
    meta.pop("sha256", None)
    header = {HEADER_KEY: json.dumps(meta, sort_keys=True, default=str)}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=header))
    meta["sha256"] = sha256(path)
    write_json(meta, sidecar(path))
    return meta


def _header_meta(path: Path) -> dict | None:
    """The metadata :func:`save_tensors` put in the header (None: none, or unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            text = (fh.metadata() or {}).get(HEADER_KEY)
        meta = json.loads(text) if text else None
    except (SafetensorError, OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None



def save_state(tensors: dict[str, torch.Tensor], path: str | Path, meta: dict[str, Any]) -> None:
    """Save a resumable training state as **one** safetensors file, ``meta`` (JSON) in its
    header: a single atomic rename, so a kill at any moment leaves the previous state or the
    new one, never weights from one epoch beside metadata from another."""
    path = Path(path)
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    header = {"qfm_state": json.dumps(meta, sort_keys=True, default=str)}
    atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=header))


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a state written by :func:`save_state`.

    Returns:
        (tensors, metadata).
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("qfm_state", "null"))
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable training state ({err})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not a qfm training state (no metadata in its header)")
    return tensors, meta


def load_tensors(path: str | Path, verify: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """Load safetensors weights and their JSON sidecar.

    Args:
        path: the ``.safetensors`` file.
        verify: check the file's sha256 against the sidecar.
    Returns:
        (tensors, metadata).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    meta = read_json(sidecar(path)) if sidecar(path).is_file() else {}
    header = _header_meta(path)
    if verify and meta.get("sha256") and meta["sha256"] != (digest := sha256(path)):
        rest = {k: v for k, v in meta.items() if k != "sha256"}
        if header is None or rest == header:  # the same save: the weights changed since
            raise CheckpointError(f"{path}: sha256 does not match {sidecar(path).name} "
                                  f"(file changed or truncated)")
        meta = {**header, "sha256": digest}  # the sidecar of an earlier save (killed between)
    elif not meta and header is not None:  # no sidecar: the header has it all
        meta = {**header, "sha256": sha256(path)}
    try:
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def fit_state(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``module`` strictly; a mismatch is one line saying what differs."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}")
    if shapes:
        k = shapes[0]
        problems.append(f"{len(shapes)} shape mismatch(es), e.g. {k}: checkpoint "
                        f"{tuple(state[k].shape)} vs model {tuple(own[k].shape)}")
    if problems:
        raise CheckpointError(f"{where}: does not fit the model: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)


def load_backbone_weights(net: torch.nn.Module, path: str | Path) -> None:
    """Load an upstream (semantic pre-training) checkpoint into a bare timm backbone."""
    tensors, meta = load_tensors(path)
    prefix = meta.get("prefix", "")
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = net.state_dict()  # a classifier the bare backbone lacks (ImageNet weights) is dropped
    state = {k: v for k, v in state.items()
             if k in own or not k.startswith(("classifier.", "head.", "fc."))}
    fit_state(net, state, str(path))


def save_run_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   best_state: dict[str, torch.Tensor] | None, meta: dict[str, Any]) -> None:
    """Save what resuming a run needs — model, best-so-far weights, optimizer — in one file.

    Args:
        path: the state file (``paths.run_state(run_dir)``).
        best_state: the weights selected on validation so far (None before the first).
        meta: epoch, history, best, config hash (JSON); the optimizer's param groups are added.
    """
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v for k, v in (best_state or {}).items()})
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for k, v in st.items():
            tensors[f"opt.{pid}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    meta = dict(meta, param_groups=[{k: v for k, v in g.items() if k != "params"}
                                    for g in opt["param_groups"]])
    save_state(tensors, path, meta)  # one file, one atomic rename


def load_run_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   config_hash: str) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore ``model`` and ``optimizer`` from :func:`save_run_state`'s file.

    Args:
        config_hash: the resuming run's; a state saved under another configuration is refused.
    Returns:
        (metadata, best-so-far weights or None).
    """
    tensors, meta = load_state(path)
    if meta.get("config_hash") != config_hash:
        raise RuntimeError(f"{Path(path).parent}: holds the state of a run with another config "
                           f"(delete the folder or choose another run directory)")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")} or None
    opt = optimizer.state_dict()
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for g, saved in zip(opt["param_groups"], meta["param_groups"]):
        g.update({k: v for k, v in saved.items()})
    optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
    return meta, best



def export_checkpoint(run_dir: str | Path, dst: str | Path) -> Path:
    """Copy a run's ``model.safetensors`` (+ sidecar) to ``dst``, e.g. the default checkpoint.

    The sidecar keeps the run's config, label scale and metrics, names the new file and records
    the run it came from; the sha256 is re-checked on the copy.
    """
    src, dst = paths.run_model(run_dir), Path(dst)
    meta = read_json(sidecar(src))
    atomic_copy(src, dst)
    write_json({**meta, "weights": dst.name, "source_run": Path(run_dir).name}, sidecar(dst))
    load_tensors(dst)  # verifies the sha256 against the new sidecar
    return dst
