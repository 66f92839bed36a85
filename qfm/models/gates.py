"""Adaptive feature selection (QFM-IQM step 1) and its two capacity controls.

Each module maps upstream tokens F (B, 1+N, C) to tokens of the same shape:

* :class:`FeatureGate` — the method: a per-image channel gate g = σ(MLP(mean_t F)), F̃ = g ⊙ F;
* :class:`StaticGate` — control: one learned scale per channel, the same for every image;
* :class:`TokenAdapter` — control: the gate's parameters as a residual token MLP (no selection).

:data:`GATES` names them for ``model.gate_kind``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


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
