"""Quality-aware pair matching and adversarial semantic noise (QFM-IQM steps 2-4).

Pure functions plus one thin callable, :class:`QFMObjective`; no I/O, no torch.distributed,
so everything here runs and is tested on CPU. The design (the book's Method page says why):

1. :func:`match_pairs` — each anchor i takes the partner j* ≠ i with |y_i − y_j| ≤ τ whose
   pooled *upstream* features are the farthest in cosine distance (similar quality, different
   semantics); −1 when no label lies within τ. Control ``partner="random"``: any j ≠ i.
2. :func:`semantic_noise` — ε_i lives on the **upstream tokens F, before the gate, per
   token**: ε_i = ρ·s_i·‖F_i‖·d̂_i with d_i = F_{j*} − F_i token by token (partner minus
   anchor, both detached) and d̂_i = d_i/‖d_i‖ (Frobenius norm over tokens and channels). The
   sign s_i raises the regression loss; its gradient is taken through gate and head only, on
   a detached copy of F (no second backbone pass). ``perturb="sam"`` keeps, token by token,
   the SAM gradient's component along d̂_{i,t} and rescales the result to the same length, so
   ``sign`` and ``sam`` differ in direction only. Control ``direction="random"``: a Gaussian
   direction of the same length instead of d_i.
   Why here: added after the gate and uniformly over tokens (the first build), ε could not be
   closed by the gate, and the decoder, which does not normalise its memory, turned a uniform
   shift of every key into a constant offset — attention did not move and L_qfm was nearly a
   copy of L_reg. Per-token ε before the gate changes the keys differently per token (the
   attention pattern moves) and passes through g ⊙ ·, so closing a channel shrinks it.
3. :func:`qfm_loss` — SmoothL1(h(g(F+ε)), y) + λ_c·|h(g(F+ε)) − h(g(F))| over anchors with a
   partner; ε is detached, F is not, so the gradient reaches head, gate (and a trainable
   backbone).

Pooling is the mean over all tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qfm.config import QFMConfig


def pool(tokens: torch.Tensor) -> torch.Tensor:
    """Mean over tokens: (B, 1+N, C) → (B, C)."""
    return tokens.mean(1)


def candidates(y: torch.Tensor, tau: float) -> torch.Tensor:
    """Candidate mask (B, B): |y_i − y_j| ≤ τ, j ≠ i."""
    y = y.detach().float()
    cand = (y[:, None] - y[None, :]).abs() <= tau
    cand.fill_diagonal_(False)
    return cand


def match_pairs(y: torch.Tensor, feats: torch.Tensor, tau: float, partner: str = "quality",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Partner of each anchor: similar quality, most different pooled features.

    Args:
        y: normalised labels (B,).
        feats: pooled upstream features (B, C); detached here.
        tau: largest label gap of a candidate partner.
        partner: ``quality`` (the method) or ``random`` (control: any other sample).
        generator: for ``random``.
    Returns:
        Partner indices (B,) long; −1 where no candidate exists.
    """
    b = y.shape[0]
    if partner == "random":
        if b < 2:
            return torch.full((b,), -1, dtype=torch.long, device=y.device)
        r = torch.randint(0, b - 1, (b,), generator=generator).to(y.device)
        idx = torch.arange(b, device=y.device)
        return r + (r >= idx).long()  # uniform over j ≠ i
    if partner != "quality":
        raise ValueError(f"qfm.partner: expected 'quality' or 'random', got {partner!r}")
    f = F.normalize(feats.detach().float(), dim=1)
    dist = 1.0 - f @ f.T  # cosine distance (B, B)
    cand = candidates(y, tau)
    best = dist.masked_fill(~cand, -float("inf")).argmax(1)
    return torch.where(cand.any(1), best, torch.full_like(best, -1))


def _unit(d: torch.Tensor) -> torch.Tensor:
    return d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (d.ndim - 1)))


def semantic_noise(model, tokens: torch.Tensor, y: torch.Tensor, partner: torch.Tensor,
                   rho: float, perturb: str = "sign", direction: str = "semantic",
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Adversarial semantic noise on the upstream tokens of the anchors that have a partner.

    Args:
        model: an :class:`qfm.models.IQAModel` (its ``select`` and ``head`` are used).
        tokens: upstream tokens F (B, 1+N, C).
        y: normalised labels (B,).
        partner: output of :func:`match_pairs` (B,).
        rho: radius relative to ‖F_i‖ (Frobenius).
        perturb: ``sign`` or ``sam`` (see the module docstring).
        direction: ``semantic`` (partner − anchor) or ``random`` (control).
        generator: for ``random``.
    Returns:
        ε (A, 1+N, C), detached, for the A anchors ``partner >= 0`` (in batch order).
    """
    if perturb not in ("sign", "sam"):
        raise ValueError(f"qfm.perturb: expected 'sign' or 'sam', got {perturb!r}")
    if direction not in ("semantic", "random"):
        raise ValueError(f"qfm.direction: expected 'semantic' or 'random', got {direction!r}")
    valid = partner >= 0
    t = tokens.detach().float()
    anchor = t[valid]  # (A, T, C)
    if rho == 0 or anchor.shape[0] == 0:
        return torch.zeros_like(anchor).to(tokens.dtype)
    if direction == "semantic":
        d = t[partner[valid]] - anchor  # per-token semantic difference (A, T, C)
    else:
        d = torch.randn(anchor.shape, generator=generator).to(anchor.device)
    d_hat = _unit(d)
    z = anchor.clone().requires_grad_(True)
    with torch.enable_grad():  # through gate and head only: cheap
        loss = F.smooth_l1_loss(model.head(model.select(z)).float(), y[valid].float(),
                                reduction="sum")
        (g,) = torch.autograd.grad(loss, z)
    if perturb == "sign":
        step = torch.sign((g * d_hat).flatten(1).sum(1)).view(-1, 1, 1) * d_hat
    else:  # SAM gradient's per-token component along d̂_t, rescaled to unit length
        coef = (g * d_hat).sum(-1, keepdim=True) / (d_hat * d_hat).sum(-1, keepdim=True) \
            .clamp_min(1e-24)
        step = _unit(coef * d_hat)
    norm = anchor.flatten(1).norm(dim=1).view(-1, 1, 1)
    return (rho * norm * step).detach().to(tokens.dtype)


def qfm_loss(model, tokens: torch.Tensor, eps: torch.Tensor, y: torch.Tensor,
             clean: torch.Tensor, partner: torch.Tensor, lambda_c: float = 1.0
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """L_qfm: the perturbed prediction must stay right and stay where the clean one is.

    Args:
        model: the IQA model (``select`` and ``head``).
        tokens: F (B, 1+N, C), *not* detached.
        eps: ε (A, 1+N, C) from :func:`semantic_noise` (detached).
        y: normalised labels (B,).
        clean: clean predictions h(g(F)) (B,).
        partner: partner indices (B,), −1 = no QFM term.
        lambda_c: weight of the consistency term.
    Returns:
        (scalar loss — exactly 0, still attached, when no anchor has a partner;
        |h(perturbed) − h(clean)| per anchor (A,), detached).
    """
    valid = partner >= 0
    if not bool(valid.any()):
        return clean.sum() * 0.0, clean.new_zeros(0)
    pert = model.head(model.select(tokens[valid] + eps.detach())).float()
    ref = clean[valid].float()
    shift = (pert - ref).abs()
    return F.smooth_l1_loss(pert, y[valid].float()) + lambda_c * shift.mean(), shift.detach()


def qfm_terms(model, images: torch.Tensor, y: torch.Tensor, cfg: QFMConfig,
              generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One backbone forward → clean prediction, L_qfm and its diagnostics.

    Args:
        model: an :class:`qfm.models.IQAModel`.
        images: (B, 3, H, W), or cached tokens (B, 1+N, C) for a head-only model.
        y: normalised labels or pseudo-labels (B,).
        cfg: τ, ρ, λ_c, perturbation kind, controls.
        generator: for the random controls.
    Returns:
        (clean prediction (B,), L_qfm scalar, logs): ``partner_rate`` (share of anchors with a
        partner), ``candidates`` (mean candidates per anchor within τ), ``shift`` (mean
        |h(perturbed) − h(clean)|) and ``shift_rel`` (that over the batch's label std).
    """
    tokens = model.features(images)  # F (B, 1+N, C)
    clean = model.head(model.select(tokens))  # (B,)
    partner = match_pairs(y, pool(tokens), cfg.tau, cfg.partner, generator)
    rate = float((partner >= 0).float().mean())
    if 0 < cfg.anchors < int((partner >= 0).sum()):  # keep a random subset of the anchors
        keep = torch.zeros_like(partner, dtype=torch.bool)
        pick = torch.randperm(len(partner), generator=generator).to(partner.device)
        pick = pick[(partner >= 0)[pick]][: cfg.anchors]
        keep[pick] = True
        partner = torch.where(keep, partner, torch.full_like(partner, -1))
    eps = semantic_noise(model, tokens, y, partner, cfg.rho, cfg.perturb, cfg.direction,
                         generator)
    loss, shift = qfm_loss(model, tokens, eps, y, clean, partner, cfg.lambda_c)
    spread = float(y.float().std()) if y.numel() > 1 else 0.0
    s = float(shift.mean()) if shift.numel() else 0.0
    logs = {"partner_rate": rate,
            "candidates": float(candidates(y, cfg.tau).sum(1).float().mean()),
            "shift": s, "shift_rel": s / spread if spread > 0 else 0.0}
    return clean, loss, logs


class QFMObjective:
    """Training objective L = L_reg + λ_qfm·L_qfm (``objective(model, batch) → loss, logs``).

    Args:
        cfg: the ``qfm`` section.
        seed: seeds the random controls (partner/direction).
    """

    def __init__(self, cfg: QFMConfig, seed: int = 0):
        self.cfg = cfg
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        y = batch["mos"]
        clean, l_qfm, logs = qfm_terms(model, batch["image"], y, self.cfg, self.gen)
        reg = F.smooth_l1_loss(clean, y)
        loss = reg + self.cfg.lambda_qfm * l_qfm
        return loss, {"loss": float(loss.detach()), "reg": float(reg.detach()),
                      "qfm": float(l_qfm.detach()), **logs}
