"""Quality-aware pair matching and adversarial semantic noise (QFM-IQM steps 2-4).

Pure functions plus one thin callable, :class:`QFMObjective`; no I/O, no torch.distributed,
so everything here runs and is tested on CPU.

For a batch with normalised labels ``y`` (B,):

1. :func:`match_pairs` — each anchor i takes the partner j* ≠ i with |y_i − y_j| ≤ τ whose
   pooled *upstream* features are the farthest in cosine distance (similar quality, different
   semantics); −1 when no label lies within τ.
2. :func:`semantic_noise` — the perturbation ε_i = ρ·s_i·d̂_i·‖pool(F̃_i)‖ along the semantic
   difference d_i = pool(F̃_{j*}) − pool(F̃_i), broadcast over tokens, with the sign s_i that
   raises the regression loss (its gradient is taken through the head only, on a detached copy
   of F̃: no second backbone pass). ``perturb="sam"`` scales d̂_i by the cosine between the SAM
   direction ∇L/‖∇L‖ and d̂_i instead (the SAM step projected on the semantic direction).
3. :func:`qfm_loss` — SmoothL1(h(F̃+ε), y) + λ_c·|h(F̃+ε) − h(F̃)| over anchors with a partner;
   ε is detached, F̃ is not, so the gradient reaches head, gate and backbone.

Pooling is the mean over all tokens (what the gate reads).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from qfm.config import QFMConfig

Head = Callable[[torch.Tensor], torch.Tensor]  # F̃ (B, 1+N, C) → score (B,)


def pool(tokens: torch.Tensor) -> torch.Tensor:
    """Mean over tokens: (B, 1+N, C) → (B, C)."""
    return tokens.mean(1)


def match_pairs(y: torch.Tensor, feats: torch.Tensor, tau: float) -> torch.Tensor:
    """Partner of each anchor: similar quality, most different pooled features.

    Args:
        y: normalised labels (B,).
        feats: pooled upstream features (B, C); detached here.
        tau: largest label gap of a candidate partner.
    Returns:
        Partner indices (B,) long; −1 where no other sample lies within ``tau``.
    """
    f = F.normalize(feats.detach().float(), dim=1)
    dist = 1.0 - f @ f.T  # cosine distance (B, B)
    y = y.detach().float()
    cand = (y[:, None] - y[None, :]).abs() <= tau
    cand.fill_diagonal_(False)
    best = dist.masked_fill(~cand, -float("inf")).argmax(1)
    return torch.where(cand.any(1), best, torch.full_like(best, -1))


def semantic_noise(head: Head, tilde: torch.Tensor, y: torch.Tensor, partner: torch.Tensor,
                   rho: float, perturb: str = "sign") -> torch.Tensor:
    """Adversarial semantic noise for the anchors that have a partner.

    Args:
        head: the model's head, F̃ → score.
        tilde: selected features F̃ (B, 1+N, C).
        y: normalised labels (B,).
        partner: output of :func:`match_pairs` (B,).
        rho: radius relative to ‖pool(F̃_i)‖.
        perturb: ``sign`` (the sign of ⟨∇L, d⟩) or ``sam`` (∇L/‖∇L‖ projected on d).
    Returns:
        ε (A, 1+N, C), detached, for the A anchors ``partner >= 0`` (in batch order).
    """
    if perturb not in ("sign", "sam"):
        raise ValueError(f"qfm.perturb: expected 'sign' or 'sam', got {perturb!r}")
    valid = partner >= 0
    t = tilde.detach()
    anchor = t[valid]  # (A, T, C)
    p_anchor = pool(anchor).float()
    d = pool(t[partner[valid]]).float() - p_anchor  # semantic-noise direction (A, C)
    d_hat = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    if rho == 0 or anchor.shape[0] == 0:
        return torch.zeros_like(anchor)
    # Gradient of the regression loss w.r.t. F̃ through the head only: one cheap head pass on
    # a detached copy. Summed, so each anchor's gradient is its own (the head mixes no samples).
    z = anchor.clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.smooth_l1_loss(head(z).float(), y[valid].float(), reduction="sum")
        (g,) = torch.autograd.grad(loss, z)
    g = g.float()
    along = (g.sum(1) * d_hat).sum(1)  # ⟨∇L, d̂ broadcast over tokens⟩ (A,)
    if perturb == "sign":
        coef = torch.sign(along)
    else:  # SAM step ∇L/‖∇L‖ projected on the unit direction d̂⊗1/√T, rescaled per token
        n_tok = anchor.shape[1]
        coef = along / (g.flatten(1).norm(dim=1).clamp_min(1e-12) * n_tok ** 0.5)
    eps = rho * (coef * p_anchor.norm(dim=1))[:, None] * d_hat  # (A, C)
    return eps[:, None, :].to(anchor.dtype).expand_as(anchor).contiguous()


def qfm_loss(head: Head, tilde: torch.Tensor, eps: torch.Tensor, y: torch.Tensor,
             clean: torch.Tensor, partner: torch.Tensor, lambda_c: float = 1.0
             ) -> torch.Tensor:
    """L_qfm: the perturbed prediction must stay right and stay where the clean one is.

    Args:
        head: the model's head.
        tilde: F̃ (B, 1+N, C), *not* detached (the gradient reaches gate and backbone).
        eps: ε (A, 1+N, C) from :func:`semantic_noise` (detached).
        y: normalised labels (B,).
        clean: clean predictions h(F̃) (B,).
        partner: partner indices (B,), −1 = no QFM term.
        lambda_c: weight of the consistency term.
    Returns:
        Scalar loss; exactly 0 (still attached to the graph) when no anchor has a partner.
    """
    valid = partner >= 0
    if not bool(valid.any()):
        return clean.sum() * 0.0
    pert = head(tilde[valid] + eps.detach()).float()
    ref = clean[valid].float()
    return (F.smooth_l1_loss(pert, y[valid].float())
            + lambda_c * (pert - ref).abs().mean())


def qfm_terms(model, images: torch.Tensor, y: torch.Tensor, cfg: QFMConfig
              ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One backbone forward → clean prediction, L_qfm and the share of anchors with a partner.

    Args:
        model: an :class:`qfm.model.IQAModel`.
        images: (B, 3, H, W).
        y: normalised labels or pseudo-labels (B,).
        cfg: τ, ρ, λ_c, perturbation kind.
    Returns:
        (clean prediction (B,), L_qfm scalar, partner rate).
    """
    tokens = model.features(images)  # F (B, 1+N, C)
    tilde = model.select(tokens)  # F̃ (B, 1+N, C)
    clean = model.head(tilde)  # (B,)
    partner = match_pairs(y, pool(tokens), cfg.tau)
    eps = semantic_noise(model.head, tilde, y, partner, cfg.rho, cfg.perturb)
    loss = qfm_loss(model.head, tilde, eps, y, clean, partner, cfg.lambda_c)
    return clean, loss, float((partner >= 0).float().mean())


class QFMObjective:
    """Training objective L = L_reg + λ_qfm·L_qfm (``objective(model, batch) → loss, logs``).

    Args:
        cfg: the ``qfm`` section.
    """

    def __init__(self, cfg: QFMConfig):
        self.cfg = cfg

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        y = batch["mos"]
        clean, l_qfm, rate = qfm_terms(model, batch["image"], y, self.cfg)
        reg = F.smooth_l1_loss(clean, y)
        loss = reg + self.cfg.lambda_qfm * l_qfm
        return loss, {"loss": float(loss.detach()), "reg": float(reg.detach()),
                      "qfm": float(l_qfm.detach()), "partner_rate": rate}
