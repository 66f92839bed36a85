"""DEIQT's attention-panel decoder: learned quality queries attend over the tokens."""

from __future__ import annotations

import torch
import torch.nn as nn

from qfm.models.backbone import ModelError


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

