import pytest
import torch
import torch.nn.functional as F

from qfm.config import QFMConfig
from qfm.core.engine import make_objective, regression_objective
from qfm.losses.qfm import QFMObjective, match_pairs, pool, qfm_loss, qfm_terms, semantic_noise
from qfm.models import IMAGENET_NORM, build_model


def _model(make_cfg, gate=True, seed=0):
    torch.manual_seed(seed)
    return build_model(make_cfg(model={"gate": gate}).model)


def _batch(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    m, sd = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET_NORM)  # RGB in model units
    return {"image": torch.randn(b, 3, 32, 32, generator=g) * sd + m,
            "mos": torch.rand(b, generator=g), "index": torch.arange(b)}


def test_match_pairs_picks_farthest_within_tau():
    y = torch.tensor([0.50, 0.52, 0.53, 0.90, 0.10])
    f = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.2], [0.0, 1.0], [1.0, 1.0]])
    p = match_pairs(y, f, tau=0.05)
    # 0 → 2 (opposite direction), 1 → 2, 2 → 0 (farther from 2 than 1 is), 3 and 4 alone
    assert p.tolist() == [2, 2, 0, -1, -1]
    assert p.dtype == torch.long


def test_match_pairs_never_self_and_tau_respected():
    g = torch.Generator().manual_seed(1)
    y, f = torch.rand(64, generator=g), torch.randn(64, 8, generator=g)
    p = match_pairs(y, f, 0.05)
    ok = p >= 0
    assert (p[ok] != torch.arange(64)[ok]).all()
    assert ((y[ok] - y[p[ok]]).abs() <= 0.05).all()
    # exhaustively: the argmax is right and nobody with a candidate was left out
    fn = F.normalize(f, dim=1)
    for i in range(64):
        cand = [j for j in range(64) if j != i and abs(y[i] - y[j]) <= 0.05]
        if not cand:
            assert p[i] == -1
        else:
            dist = {j: float(1 - fn[i] @ fn[j]) for j in cand}
            assert dist[int(p[i])] == pytest.approx(max(dist.values()))


def test_match_pairs_batch_of_one():
    assert match_pairs(torch.tensor([0.3]), torch.randn(1, 4), 0.05).tolist() == [-1]


def _tokens(model, batch):
    with torch.no_grad():
        return model.features(batch["image"])


def test_perturbation_raises_the_loss_it_is_adversarial_to(make_cfg):
    model = _model(make_cfg).eval()
    batch = _batch(8)
    y = torch.full((8,), 0.5) + torch.linspace(0, 0.02, 8)
    tokens = _tokens(model, batch)
    with torch.no_grad():
        clean = model.head(model.select(tokens))
    partner = match_pairs(y, pool(tokens), 0.05)
    assert (partner >= 0).all()
    for kind in ("sign", "sam"):
        eps = semantic_noise(model, tokens, y, partner, rho=1e-3, perturb=kind)
        with torch.no_grad():
            pert = model.head(model.select(tokens + eps))
            back = model.head(model.select(tokens - eps))
        l0 = F.smooth_l1_loss(clean, y, reduction="none")
        l1 = F.smooth_l1_loss(pert, y, reduction="none")
        assert (l1 >= l0 - 1e-7).all(), kind  # per anchor: first-order ascent
        assert (l1 > l0).sum() >= 6, kind
        # the opposite step lowers it: the sign is not arbitrary
        assert (F.smooth_l1_loss(back, y, reduction="none") <= l0 + 1e-7).all(), kind


def test_noise_is_per_token_along_partner_difference_with_relative_radius(make_cfg):
    model = _model(make_cfg).eval()
    y = torch.tensor([0.2, 0.21, 0.8, 0.81])
    tokens = _tokens(model, _batch(4))
    partner = match_pairs(y, pool(tokens), 0.05)
    eps = semantic_noise(model, tokens, y, partner, rho=0.1)
    d = tokens[partner] - tokens  # token by token
    for i in range(4):
        e = eps[i]
        assert not torch.allclose(e, e[:1].expand_as(e))  # not one shift for every token
        cos = F.cosine_similarity(e.flatten(), d[i].flatten(), dim=0).abs()
        assert cos == pytest.approx(1.0, abs=1e-5)
        assert e.norm() == pytest.approx(0.1 * float(tokens[i].norm()), rel=1e-4)
    sam = semantic_noise(model, tokens, y, partner, rho=0.1, perturb="sam")
    assert torch.allclose(sam.flatten(1).norm(dim=1), eps.flatten(1).norm(dim=1), rtol=1e-4)
    assert not torch.allclose(sam, eps)  # same step length, another direction
    rnd = semantic_noise(model, tokens, y, partner, rho=0.1, direction="random",
                         generator=torch.Generator().manual_seed(0))
    assert torch.allclose(rnd.flatten(1).norm(dim=1), eps.flatten(1).norm(dim=1), rtol=1e-4)
    assert F.cosine_similarity(rnd.flatten(1), d.flatten(1)).abs().max() < 0.5


def test_rho_zero_perturbed_equals_clean(make_cfg):
    model = _model(make_cfg).eval()
    y = torch.full((6,), 0.4)
    tokens = _tokens(model, _batch(6))
    clean = model.head(model.select(tokens))
    partner = match_pairs(y, pool(tokens), 0.05)
    eps = semantic_noise(model, tokens, y, partner, rho=0.0)
    assert torch.equal(eps, torch.zeros_like(eps))
    loss, shift = qfm_loss(model, tokens, eps, y, clean, partner, lambda_c=1.0)
    assert loss.item() == pytest.approx(F.smooth_l1_loss(clean, y).item(), abs=1e-7)
    assert float(shift.max()) == 0.0


def _old_design_consistency(model, tokens, y, partner, rho):
    """The first build: ε after the gate, one vector broadcast over every token."""
    tilde = model.select(tokens)
    d = pool(tilde[partner]).detach() - pool(tilde).detach()
    eps = rho * pool(tilde).detach().norm(dim=1, keepdim=True) * F.normalize(d, dim=1)
    eps = eps[:, None, :].expand_as(tilde)
    return (model.head(tilde + eps) - model.head(tilde)).abs().mean()


def test_consistency_term_reaches_the_gate(make_cfg):
    """L_qfm's consistency term pushes the gate; placed after it, uniform ε barely did."""
    model = _model(make_cfg).train()
    with torch.no_grad():  # a gate that is not at its initial (uniform) state
        model.gate.mlp[2].weight.normal_(0, 0.5)
    y = torch.full((8,), 0.6) + torch.linspace(0, 0.03, 8)
    tokens = _tokens(model, _batch(8))
    partner = match_pairs(y, pool(tokens), 0.05)
    clean = model.head(model.select(tokens))
    eps = semantic_noise(model, tokens, y, partner, rho=0.2)
    new_grad = torch.autograd.grad(
        (model.head(model.select(tokens + eps)) - clean).abs().mean(), model.gate.mlp[2].weight)[0]
    old_grad = torch.autograd.grad(_old_design_consistency(model, tokens, y, partner, 0.2),
                                   model.gate.mlp[2].weight)[0]
    assert new_grad.abs().sum() > 0
    assert new_grad.abs().sum() > 4 * old_grad.abs().sum()


def test_perturbation_moves_the_decoders_attention(make_cfg):
    model = _model(make_cfg).eval()
    y = torch.full((6,), 0.5) + torch.linspace(0, 0.02, 6)
    tokens = _tokens(model, _batch(6))
    partner = match_pairs(y, pool(tokens), 0.05)
    eps = semantic_noise(model, tokens, y, partner, rho=0.2)
    attn = model.decoder.layer.multihead_attn

    def weights(t):
        x = model.decoder.proj(model.select(t))
        q = model.decoder.layer.norm2(model.decoder.queries + x[:, :1])
        return attn(q, x[:, 1:], x[:, 1:], need_weights=True)[1]

    with torch.no_grad():
        w0, w1 = weights(tokens), weights(tokens + eps)
        tilde = model.select(tokens)  # the first build's uniform shift after the gate
        d = pool(tilde[partner]) - pool(tilde)
        shift = (0.2 * pool(tilde).norm(dim=1, keepdim=True) * F.normalize(d, dim=1))[:, None]
        x0 = model.decoder.proj(tilde)
        x1 = model.decoder.proj(tilde + shift)
        q1 = model.decoder.layer.norm2(model.decoder.queries + x0[:, :1])
        old0 = attn(q1, x0[:, 1:], x0[:, 1:], need_weights=True)[1]
        old1 = attn(q1, x1[:, 1:], x1[:, 1:], need_weights=True)[1]
    assert (w1 - w0).abs().max() > 1e-3
    assert (old1 - old0).abs().max() < 1e-5  # a uniform shift of every key moves nothing


def test_qfm_gradient_reaches_head_gate_and_backbone(make_cfg):
    model = _model(make_cfg).train()
    batch = _batch(8)
    y = torch.full((8,), 0.6) + torch.linspace(0, 0.03, 8)
    _, l_qfm, logs = qfm_terms(model, batch["image"], y, QFMConfig(enabled=True, rho=0.2))
    assert logs["partner_rate"] == 1.0 and l_qfm > 0 and logs["candidates"] == 7.0
    assert logs["shift"] > 0 and logs["shift_rel"] > 0
    l_qfm.backward()
    for name, part in (("head", model.decoder), ("gate", model.gate),
                       ("backbone", model.backbone)):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name


def test_random_partner_ignores_quality_and_anchor_cap():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0.0, 0.3, 0.6, 0.9] * 4)
    p = match_pairs(y, torch.randn(16, 4), 0.05, partner="random", generator=g)
    assert (p >= 0).all() and (p != torch.arange(16)).all()
    assert ((y - y[p]).abs() > 0.05).any()  # quality is ignored


def test_no_partner_gives_zero_loss_with_graph(make_cfg):
    model = _model(make_cfg)
    batch = _batch(4)
    batch["mos"] = torch.tensor([0.0, 0.3, 0.6, 0.9])
    loss, logs = QFMObjective(QFMConfig(enabled=True))(model, batch)
    assert logs["partner_rate"] == 0.0 and logs["qfm"] == 0.0
    assert logs["loss"] == pytest.approx(logs["reg"])
    loss.backward()  # graph intact
    one = {k: v[:1] for k, v in batch.items()}
    loss1, logs1 = QFMObjective(QFMConfig(enabled=True))(model, one)
    assert logs1["partner_rate"] == 0.0
    loss1.backward()


def test_switches_off_equal_the_baseline_exactly(make_cfg):
    cfg = make_cfg()
    assert make_objective(cfg) is regression_objective
    base, gated_off = _model(make_cfg, gate=False), _model(make_cfg, gate=False)
    assert list(base.state_dict()) == list(gated_off.state_dict())
    assert not any(k.startswith("gate") for k in base.state_dict())
    batch = _batch(6)
    ref, _ = regression_objective(base, batch)
    # QFM objective with λ_qfm = 0 is the baseline loss, bit for bit
    loss, _ = QFMObjective(QFMConfig(enabled=True, lambda_qfm=0.0))(base, batch)
    assert torch.equal(loss, ref)
    gated = _model(make_cfg, gate=True)
    assert set(gated.state_dict()) - set(base.state_dict()) == {
        k for k in gated.state_dict() if k.startswith("gate.")}
    # same seed: switching the gate on leaves backbone and decoder initialisation unchanged
    own = gated.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in base.state_dict().items())


def test_qfm_objective_logs_and_sam(make_cfg):
    model = _model(make_cfg)
    batch = _batch(8)
    for kind in ("sign", "sam"):
        loss, logs = QFMObjective(QFMConfig(enabled=True, perturb=kind, tau=0.5))(model, batch)
        assert set(logs) == {"loss", "reg", "qfm", "partner_rate", "candidates", "shift",
                             "shift_rel"}
        assert logs["loss"] == pytest.approx(logs["reg"] + logs["qfm"], rel=1e-5)
    with pytest.raises(ValueError, match="perturb"):
        QFMObjective(QFMConfig(enabled=True, perturb="bad"))(model, batch)
