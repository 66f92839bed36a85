"""Backbone (timm) → adaptive feature gate → attention-panel decoder → one quality score.

The model is split at the points QFM-IQM needs (METHOD.md):

* :meth:`IQAModel.features` — upstream tokens ``F`` (B, 1+N, C); token 0 is the CLS token
  (a ViT's class token, or a CNN's pooled feature map), tokens 1.. are patches;
* :meth:`IQAModel.select` — the adaptive feature selection ``F̃ = g ⊙ F`` (identity when the
  gate is off, so the baseline has exactly DEIQT's parameters); ``model.gate_kind`` swaps in
  the capacity controls: a static per-channel scale, or the gate's parameters as a residual
  token MLP that does not select;
* :meth:`IQAModel.head` — the attention-panel decoder of DEIQT: learned queries plus the CLS
  token attend over the patch tokens; a bias-free linear per query; the mean over queries.

The head is cheap next to the backbone, which is why QFM's extra forward/backward passes run
through the head only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from qfm.config import ModelConfig


class ModelError(ValueError):
    """A model cannot be built from its configuration or weights."""


def create_backbone(cfg: ModelConfig, upstream: str | Path | None = None,
                    load: bool = True) -> nn.Module:
    """A timm model without classifier, weights per ``cfg.weights``.

    Args:
        cfg: model configuration; ``weights`` is ``none``, ``upstream``, the name of shipped
            ImageNet weights (``efficientnet_lite0``, see :mod:`qfm.core.weights`, stored by
            ``qfm weights`` under ``models/``) or a local weights file.
        upstream: the upstream checkpoint used when ``cfg.weights == "upstream"``.
        load: False = build only (a checkpoint's own weights are loaded afterwards).
    Returns:
        The timm module (``num_classes=0``).
    """
    import timm

    from qfm.core.weights import SOURCES

    kwargs = dict(cfg.backbone_kwargs)
    kwargs.setdefault("num_classes", 0)
    pretrained, overlay = False, None
    if cfg.weights in SOURCES:
        if cfg.backbone != SOURCES[cfg.weights][2]:
            raise ModelError(f"model.weights: {cfg.weights} are weights of "
                             f"{SOURCES[cfg.weights][2]}, not of model.backbone {cfg.backbone}")
    elif cfg.weights not in ("none", "upstream", "") and load:
        path = Path(cfg.weights).expanduser()
        if not path.is_file():
            raise ModelError(f"model.weights: {path}: file not found")
        pretrained, overlay = True, dict(file=str(path))
    try:
        net = _create(timm, cfg, pretrained, overlay, kwargs, with_size=True)
    except TypeError:  # CNNs take no img_size
        net = _create(timm, cfg, pretrained, overlay, kwargs, with_size=False)
    if load and (cfg.weights == "upstream" or cfg.weights in SOURCES):
        from qfm import paths
        from qfm.core.checkpoint import load_backbone_weights

        if cfg.weights in SOURCES:
            upstream = paths.imagenet_weights(cfg.weights)
            if not Path(upstream).is_file():
                raise ModelError(f"model.weights: {upstream} missing "
                                 f"(run `qfm weights {cfg.weights}`)")
        if upstream is None:
            raise ModelError("model.weights: 'upstream' needs the upstream checkpoint")
        load_backbone_weights(net, upstream)
    return net


def input_norm(cfg: ModelConfig) -> tuple[tuple, tuple]:
    """(mean, std) the backbone's weights expect: the shipped weights' own, else ImageNet's."""
    from qfm.core.weights import IMAGENET_NORM, NORM, SOURCES

    return NORM if cfg.weights in SOURCES else IMAGENET_NORM


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
        from qfm.core.weights import IMAGENET_NORM

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


class StaticGate(nn.Module):
    """Capacity control: a learned per-channel scale g = σ(w) ∈ (0, 1)^C, the same for every
    image (no input dependence), F̃ = g ⊙ F. ``w`` starts at the adaptive gate's initial logit,
    so both start from g ≈ 0.98; what the static gate lacks is selection *per image*.
    """

    def __init__(self, width: int, init_bias: float = 4.0):
        super().__init__()
        self.logit = nn.Parameter(torch.full((width,), float(init_bias)))

    def gate(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, C) → g (B, C), one row repeated (independent of the tokens)."""
        return torch.sigmoid(self.logit).expand(tokens.shape[0], -1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens * torch.sigmoid(self.logit)


class TokenAdapter(nn.Module):
    """Capacity control: the adaptive gate's parameters without selection.

    A residual MLP on every token, F̃_t = F_t + MLP(F_t), with the gate's MLP shapes
    (C → hidden → C, so exactly its parameter count) and its initialisation (the first layer
    draws the same numbers for the same seed; a zero last layer, so training starts from the
    baseline). It re-maps features additively; it cannot scale a channel per image.
    """

    def __init__(self, width: int, hidden: float = 0.25):
        super().__init__()
        h = max(1, int(round(width * hidden)))
        self.mlp = nn.Sequential(nn.Linear(width, h), nn.GELU(), nn.Linear(h, width))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, C) → (B, N, C)."""
        return tokens + self.mlp(tokens)


GATES = {"adaptive": FeatureGate, "static": StaticGate, "adapter": TokenAdapter}


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

    def panel(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 1+N, C) → the normalised query outputs (B, Q, D)."""
        t = self.proj(tokens)
        q = self.queries + t[:, :1]  # CLS added to every query  # (B, Q, D)
        return self.norm(self.layer(q, t[:, 1:]))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """What the score reads, pooled over queries: (B, D) (the semantic-noise analysis)."""
        return self.panel(tokens).mean(1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, 1+N, C) → score (B,)."""
        return self.score(self.panel(tokens)).squeeze(-1).mean(1)


class IQAModel(nn.Module):
    """The full model; see the module docstring for the three stages."""

    def __init__(self, backbone: Backbone, decoder: PanelDecoder, gate: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.gate = gate
        self.decoder = decoder

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Upstream tokens: x (B, 3, H, W) → F (B, 1+N, C); cached tokens pass through."""
        return x if self.backbone is None else self.backbone(x)

    def select(self, tokens: torch.Tensor) -> torch.Tensor:
        """Adaptive feature selection: F (B, 1+N, C) → F̃ (B, 1+N, C)."""
        return tokens if self.gate is None else self.gate(tokens)

    def head(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder: F̃ (B, 1+N, C) → score (B,)."""
        return self.decoder(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, H, W) → normalised quality (B,); x (B, K, 3, H, W) → mean over K crops."""
        multi = 4 if self.backbone is None else getattr(self.backbone, "multi_ndim", 5)
        if x.ndim == multi:  # several crops / views (of images, tokens or packed rows)
            b, k = x.shape[:2]
            return self.forward(x.flatten(0, 1)).view(b, k).mean(1)
        return self.head(self.select(self.features(x)))


def build_model(cfg: ModelConfig, upstream: str | Path | None = None,
                width: int | None = None, load: bool = True) -> IQAModel:
    """Build the IQA model from its configuration (plain factory, no registry).

    Args:
        cfg: model configuration.
        upstream: upstream checkpoint for ``cfg.weights == "upstream"``.
        width: build a head-only model for cached tokens of this width (no backbone:
            :meth:`IQAModel.features` passes its input through); ``None`` = the full model.
        load: False = do not load ``cfg.weights`` (a checkpoint is loaded afterwards; the
            input normalisation the weights expect is still applied).
    Returns:
        An :class:`IQAModel`.
    """
    backbone = None
    if width is None:
        backbone = Backbone(create_backbone(cfg, upstream, load), cfg.tokens, cfg.grid,
                            input_norm(cfg))
        width = backbone.width
    if cfg.gate_kind not in GATES:
        raise ModelError(f"model.gate_kind: expected one of {', '.join(GATES)}, "
                         f"got {cfg.gate_kind!r}")
    decoder = PanelDecoder(width, cfg.dim, cfg.heads, cfg.queries, cfg.mlp_ratio, cfg.dropout)
    # The gate (of any kind: adaptive, static, adapter) is drawn last, so switching it on
    # leaves the decoder's initialisation (and every earlier draw) as in the baseline:
    # ablations differ by the gate, not by the init.
    gate = None
    if cfg.gate:
        gate = StaticGate(width) if cfg.gate_kind == "static" else \
            GATES[cfg.gate_kind](width, cfg.gate_hidden)
    return IQAModel(backbone, decoder, gate)
