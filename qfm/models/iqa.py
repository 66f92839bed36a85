"""The IQA model: backbone → (gate) → attention-panel decoder → one quality score.

The model is split at the points QFM-IQM needs (METHOD.md):

* :meth:`IQAModel.features` — upstream tokens ``F`` (B, 1+N, C); token 0 is the CLS token
  (a ViT's class token, or a CNN's pooled feature map), tokens 1.. are patches;
* :meth:`IQAModel.select` — the adaptive feature selection ``F̃ = g ⊙ F`` (identity when the
  gate is off, so the baseline has exactly DEIQT's parameters); ``model.gate_kind`` swaps in
  the capacity controls (:mod:`qfm.models.gates`);
* :meth:`IQAModel.head` — the attention-panel decoder of DEIQT (:mod:`qfm.models.decoder`).

The head is cheap next to the backbone, which is why QFM's extra forward/backward passes run
through the head only. :func:`build_model` is the one factory; it loads no weights
(:func:`qfm.core.weights.pretrained_model` does, for ``model.weights``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from qfm.config import ModelConfig
from qfm.models.backbone import Backbone, ModelError, create_backbone, input_norm
from qfm.models.decoder import PanelDecoder
from qfm.models.gates import GATES, StaticGate


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


def build_model(cfg: ModelConfig, width: int | None = None,
                weights_file: str | Path | None = None) -> IQAModel:
    """Build the IQA model from its configuration (plain factory, no registry, no weights).

    Args:
        cfg: model configuration.
        width: build a head-only model for cached tokens of this width (no backbone:
            :meth:`IQAModel.features` passes its input through); ``None`` = the full model.
        weights_file: a timm-format file the backbone loads (timm's own loader); the project's
            weights (``model.weights``) are loaded by :func:`qfm.core.weights.pretrained_model`.
            The input normalisation ``model.weights`` implies is applied either way.
    Returns:
        An :class:`IQAModel`.
    """
    backbone = None
    if width is None:
        backbone = Backbone(create_backbone(cfg, weights_file), cfg.tokens, cfg.grid,
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
