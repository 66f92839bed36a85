"""The upstream: any timm model, wrapped so it returns tokens (B, 1+N, C) with the CLS first.

:func:`create_backbone` builds the timm model and nothing else: which weights it gets is the
caller's business (:func:`qfm.core.weights.pretrained_backbone` resolves ``model.weights`` to a
file and loads it). The normalisation a set of weights expects belongs to the weights, so the
constants live here, beside the wrapper that applies them: inputs arrive as RGB in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F

from qfm.config import ModelConfig

IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm backbones' default
LITE_NORM = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # EfficientNet-Lite's (TensorFlow's) inputs
# shipped ImageNet weights (qfm.core.weights.SOURCES) → the timm model they belong to
SHIPPED = {"efficientnet_lite0": "tf_efficientnet_lite0",
           "efficientnet_lite1": "tf_efficientnet_lite1",
           "efficientnet_lite2": "tf_efficientnet_lite2"}


class ModelError(ValueError):
    """A model cannot be built from its configuration or weights."""


def input_norm(cfg: ModelConfig) -> tuple[tuple, tuple]:
    """(mean, std) the backbone's weights expect: the shipped weights' own, else ImageNet's."""
    return LITE_NORM if cfg.weights in SHIPPED else IMAGENET_NORM


def create_backbone(cfg: ModelConfig, weights_file: str | Path | None = None) -> nn.Module:
    """A timm model without classifier (``num_classes=0``), randomly initialised.

    Args:
        cfg: model configuration (``backbone``, ``img_size``, ``backbone_kwargs``).
        weights_file: a timm-format weights file loaded by timm itself (its pretrained
            filters apply, e.g. a ViT's position embedding resized); None = no weights.
    Returns:
        The timm module.
    """
    kwargs = dict(cfg.backbone_kwargs)
    kwargs.setdefault("num_classes", 0)
    overlay = dict(file=str(weights_file)) if weights_file else None
    try:
        return _create(cfg, overlay, {"img_size": cfg.img_size, **kwargs})
    except TypeError:  # CNNs take no img_size
        return _create(cfg, overlay, kwargs)


def _create(cfg: ModelConfig, overlay: dict | None, kwargs: dict) -> nn.Module:
    try:
        return timm.create_model(cfg.backbone, pretrained=overlay is not None,
                                 pretrained_cfg_overlay=overlay, **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ModelError(f"model.backbone: unknown timm model {cfg.backbone!r}") from None
        raise


class Backbone(nn.Module):
    """Wrap any timm model so it returns tokens (B, 1+N, C) with the CLS token first.

    Args:
        net: the timm model.
        tokens: ``last`` — the last feature map (a ViT's tokens; a CNN's map flattened, its
            mean as CLS), as DEIQT; ``multiscale`` — every stage of ``forward_intermediates``
            pooled to a ``grid``×``grid`` map (mean and standard deviation per cell),
            concatenated along channels: low-level statistics that see blur and noise beside
            the semantic last stage; CLS = mean of the cells.
        grid: the token grid of ``multiscale``.
        norm: (mean, std) the weights expect (default ImageNet's); inputs arrive as RGB in
            [0, 1] and are normalised here, so the data pipeline knows no model statistics.
    """

    def __init__(self, net: nn.Module, tokens: str = "last", grid: int = 4,
                 norm: tuple[tuple, tuple] | None = None):
        super().__init__()
        if tokens not in ("last", "multiscale"):
            raise ModelError(f"model.tokens: expected 'last' or 'multiscale', got {tokens!r}")
        self.net, self.tokens, self.grid = net, tokens, grid
        self.prefix = int(getattr(net, "num_prefix_tokens", 0))
        if tokens == "multiscale":
            chans = [int(i["num_chs"]) for i in net.feature_info]
            self.width = 2 * sum(chans)
        else:
            self.width = int(net.num_features)
        m, sd = (torch.tensor(v) for v in (norm or IMAGENET_NORM))  # x_net = (x − m) / s
        self.register_buffer("in_scale", (1.0 / sd).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", (-m / sd).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) → tokens (B, 1+N, C)."""
        x = x * self.in_scale + self.in_shift
        if self.tokens == "multiscale":
            return self._multiscale(x)
        f = self.net.forward_features(x)
        if f.ndim == 4:  # CNN feature map (B, C, H, W): flatten, pooled vector as CLS
            tokens = f.flatten(2).transpose(1, 2)
            return torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
        if f.ndim != 3:
            raise ModelError(f"backbone returned features of shape {tuple(f.shape)}")
        if self.prefix == 0:  # no class token: the mean stands in for it
            return torch.cat([f.mean(1, keepdim=True), f], 1)
        return torch.cat([f[:, :1], f[:, self.prefix:]], 1)  # drop register tokens

    def _multiscale(self, x: torch.Tensor) -> torch.Tensor:
        g = self.grid
        maps = self.net.forward_intermediates(x, intermediates_only=True)
        cells = [s for m in maps for s in cell_stats(m, g)]
        tokens = torch.cat(cells, 1).flatten(2).transpose(1, 2)  # (B, g·g, C)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], 1)


def cell_stats(m: torch.Tensor, grid: int) -> list[torch.Tensor]:
    """A feature map (B, C, H, W) → [mean, sd] per cell of a ``grid``×``grid`` map."""
    m = m.float()
    mean = F.adaptive_avg_pool2d(m, grid)
    var = F.adaptive_avg_pool2d(m * m, grid) - mean * mean
    return [mean, var.clamp_min(0).add(1e-6).sqrt()]

