"""Backbone (timm) → adaptive feature gate → attention-panel decoder → one quality score.

The model is split at the points QFM-IQM needs (METHOD.md):

* :meth:`IQAModel.features` — upstream tokens ``F`` (B, 1+N, C); token 0 is the CLS token
  (a ViT's class token, or a CNN's pooled feature map), tokens 1.. are patches;
* :meth:`IQAModel.select` — the adaptive feature selection ``F̃ = g ⊙ F`` (identity when the
  gate is off, so the baseline has exactly DEIQT's parameters);
* :meth:`IQAModel.head` — the attention-panel decoder of DEIQT: learned queries plus the CLS
  token attend over the patch tokens; a bias-free linear per query; the mean over queries.

The head is cheap next to the backbone, which is why QFM's extra forward/backward passes run
through the head only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from qfm.config import ModelConfig


class ModelError(ValueError):
    """A model cannot be built from its configuration or weights."""


def create_backbone(cfg: ModelConfig, upstream: str | Path | None = None) -> nn.Module:
    """A timm model without classifier, weights per ``cfg.weights``.

    Args:
        cfg: model configuration; ``weights`` is ``none``, ``upstream`` or a local file.
        upstream: the upstream checkpoint used when ``cfg.weights == "upstream"``.
    Returns:
        The timm module (``num_classes=0``).
    """
    import timm

    kwargs = dict(cfg.backbone_kwargs)
    kwargs.setdefault("num_classes", 0)
    pretrained, overlay = False, None
    if cfg.weights not in ("none", "upstream", ""):
        path = Path(cfg.weights).expanduser()
        if not path.is_file():
            raise ModelError(f"model.weights: {path}: file not found")
        pretrained, overlay = True, dict(file=str(path))
    try:
        net = _create(timm, cfg, pretrained, overlay, kwargs, with_size=True)
    except TypeError:  # CNNs take no img_size
        net = _create(timm, cfg, pretrained, overlay, kwargs, with_size=False)
    if cfg.weights == "upstream":
        from qfm.checkpoint import load_backbone_weights

        if upstream is None:
            raise ModelError("model.weights: 'upstream' needs the upstream checkpoint")
        load_backbone_weights(net, upstream)
    return net


def _create(timm, cfg, pretrained, overlay, kwargs, with_size):
    extra = dict(img_size=cfg.img_size) if with_size else {}
    try:
        return timm.create_model(cfg.backbone, pretrained=pretrained,
                                 pretrained_cfg_overlay=overlay, **extra, **kwargs)
    except RuntimeError as err:
        if "Unknown model" in str(err):
            raise ModelError(f"model.backbone: unknown timm model {cfg.backbone!r}") from None
        raise


class Backbone(nn.Module):
    """Wrap any timm model so it returns tokens (B, 1+N, C) with the CLS token first."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.width = int(net.num_features)
        self.prefix = int(getattr(net, "num_prefix_tokens", 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) → tokens (B, 1+N, C)."""
        f = self.net.forward_features(x)
        if f.ndim == 4:  # CNN feature map (B, C, H, W): flatten, pooled vector as CLS
            tokens = f.flatten(2).transpose(1, 2)
            return torch.cat([tokens.mean(1, keepdim=True), tokens], 1)
        if f.ndim != 3:
            raise ModelError(f"backbone returned features of shape {tuple(f.shape)}")
        if self.prefix == 0:  # no class token: the mean stands in for it
            return torch.cat([f.mean(1, keepdim=True), f], 1)
        return torch.cat([f[:, :1], f[:, self.prefix:]], 1)  # drop register tokens


class FeatureGate(nn.Module):
    """Adaptive feature selection: g = σ(MLP(mean_tokens(F))) ∈ (0, 1)^C, F̃ = g ⊙ F.

    Initialised with a zero last layer and a bias of 4, so g ≈ 0.98 for every input: training
    starts from (almost) the baseline and learns which channels to damp.
    """

    def __init__(self, width: int, hidden: float = 0.25, init_bias: float = 4.0):
        super().__init__()
        h = max(1, int(round(width * hidden)))
        self.mlp = nn.Sequential(nn.Linear(width, h), nn.GELU(), nn.Linear(h, width))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.constant_(self.mlp[2].bias, init_bias)

    def gate(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, C) → g (B, C)."""
        return torch.sigmoid(self.mlp(tokens.mean(1)))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens * self.gate(tokens).unsqueeze(1)


class PanelDecoder(nn.Module):
    """DEIQT's attention-panel decoder: one pre-norm transformer decoder layer.

    Args:
        width: token width C of the backbone.
        dim: decoder width (0 = C, DEIQT; else a linear projection C → dim).
        heads, queries, mlp_ratio, dropout: decoder sizes.
    """

    def __init__(self, width: int, dim: int = 0, heads: int = 6, queries: int = 6,
                 mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        dim = dim or width
        if dim % heads:
            raise ModelError(f"model.heads: {heads} does not divide the decoder width {dim} "
                             f"(set model.dim or model.heads)")
        self.proj = nn.Identity() if dim == width else nn.Linear(width, dim)
        self.queries = nn.Parameter(torch.zeros(1, queries, dim))
        nn.init.trunc_normal_(self.queries, std=0.02)
        self.layer = nn.TransformerDecoderLayer(
            dim, heads, int(dim * mlp_ratio), dropout, activation="gelu", batch_first=True,
            norm_first=True)
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 1+N, C) → score (B,)."""
        t = self.proj(tokens)
        q = self.queries + t[:, :1]  # CLS added to every query  # (B, Q, D)
        q = self.layer(q, t[:, 1:])
        return self.score(self.norm(q)).squeeze(-1).mean(1)


class IQAModel(nn.Module):
    """The full model; see the module docstring for the three stages."""

    def __init__(self, backbone: Backbone, decoder: PanelDecoder, gate: FeatureGate | None):
        super().__init__()
        self.backbone = backbone
        self.gate = gate
        self.decoder = decoder

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Upstream tokens: x (B, 3, H, W) → F (B, 1+N, C)."""
        return self.backbone(x)

    def select(self, tokens: torch.Tensor) -> torch.Tensor:
        """Adaptive feature selection: F (B, 1+N, C) → F̃ (B, 1+N, C)."""
        return tokens if self.gate is None else self.gate(tokens)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder: F̃ (B, 1+N, C) → score (B,)."""
        return self.decoder(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) → normalised quality (B,); x (B, K, 3, H, W) → mean over K crops."""
        if x.ndim == 5:
            b, k = x.shape[:2]
            return self.forward(x.flatten(0, 1)).view(b, k).mean(1)
        return self.head(self.select(self.features(x)))


def build_model(cfg: ModelConfig, upstream: str | Path | None = None) -> IQAModel:
    """Build the IQA model from its configuration (plain factory, no registry).

    Args:
        cfg: model configuration.
        upstream: upstream checkpoint for ``cfg.weights == "upstream"``.
    Returns:
        An :class:`IQAModel`.
    """
    backbone = Backbone(create_backbone(cfg, upstream))
    width = backbone.width
    decoder = PanelDecoder(width, cfg.dim, cfg.heads, cfg.queries, cfg.mlp_ratio, cfg.dropout)
    # The gate is drawn last, so switching it on leaves the decoder's initialisation (and
    # every later draw) as in the baseline: ablations differ by the gate, not by the init.
    gate = FeatureGate(width, cfg.gate_hidden) if cfg.gate else None
    return IQAModel(backbone, decoder, gate)
