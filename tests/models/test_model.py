import pytest
import torch

from qfm.config import ModelConfig
from qfm.paper import profile_section
from qfm.core.weights import pretrained_model
from qfm.models import ModelError, build_model


@pytest.mark.parametrize("backbone,kwargs", [
    ("test_vit", {"patch_size": 8}),        # ViT tokens
    ("test_convnext", {}),                  # CNN feature map → tokens
])
def test_output_shapes(backbone, kwargs):
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=backbone, img_size=32, heads=4, dim=32,
                                    backbone_kwargs=kwargs))
    x = torch.randn(3, 3, 32, 32)
    tokens = model.features(x)
    assert tokens.ndim == 3 and tokens.shape[0] == 3 and tokens.shape[1] >= 2
    assert model(x).shape == (3,)
    assert model(torch.randn(2, 4, 3, 32, 32)).shape == (2,)  # multi-crop averaging


def test_paper_profile_constructs_and_runs():
    model = build_model(ModelConfig(**profile_section("model") | {"weights": "none"}))
    tokens = model.features(torch.randn(1, 3, 224, 224))
    assert tokens.shape == (1, 197, 384)  # CLS + 196 patches, width 384
    assert model.head(tokens).shape == (1,)
    assert model.decoder.queries.shape == (1, 6, 384)


def test_gate_starts_near_one_and_is_absent_when_off():
    cfg = ModelConfig(backbone="test_vit", img_size=32, heads=4, dim=32,
                      backbone_kwargs={"patch_size": 8}, gate=True)
    model = build_model(cfg)
    g = model.gate.gate(torch.randn(2, 5, model.backbone.width))
    assert torch.all(g > 0.97) and torch.all(g < 1)
    off = build_model(ModelConfig(backbone="test_vit", img_size=32, heads=4, dim=32,
                                  backbone_kwargs={"patch_size": 8}))
    assert off.gate is None and not any(k.startswith("gate") for k in off.state_dict())


def test_bad_heads_and_unknown_backbone():
    with pytest.raises(ModelError, match="model.heads"):
        build_model(ModelConfig(backbone="test_vit", img_size=32, heads=5,
                                backbone_kwargs={"patch_size": 8}))
    with pytest.raises(ModelError, match="unknown timm model"):
        build_model(ModelConfig(backbone="no_such_net"))


def test_local_weights_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    src = timm.create_model("test_vit", pretrained=False, num_classes=0)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    model = pretrained_model(ModelConfig(backbone="test_vit", img_size=160, heads=4,
                                         weights=str(path)))
    k = "pos_embed"
    torch.testing.assert_close(model.backbone.net.state_dict()["cls_token"],
                               src.state_dict()["cls_token"])
    assert k in model.backbone.net.state_dict()
    with pytest.raises(ModelError, match="file not found"):
        pretrained_model(ModelConfig(backbone="test_vit", weights=str(tmp_path / "nope.pth")))


def _head(kind=None, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(backbone="test_vit", dim=16, heads=2, gate=kind is not None,
                      gate_kind=kind or "adaptive", gate_hidden=0.25)
    return build_model(cfg, width=64)


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_capacity_controls_parameter_counts():
    base, gate = _count(_head()), _count(_head("adaptive"))
    adapter, static = _count(_head("adapter")), _count(_head("static"))
    assert gate > base
    assert abs((adapter - base) - (gate - base)) <= 0.05 * (gate - base)  # the gate's extra
    assert static - base == 64  # one scale per channel


def test_static_gate_ignores_its_input_and_starts_like_the_adaptive_gate():
    static, adaptive = _head("static").gate, _head("adaptive").gate
    a, b = torch.randn(2, 5, 64), 10 * torch.randn(3, 5, 64)
    torch.testing.assert_close(static.gate(a)[0], static.gate(b)[1])
    torch.testing.assert_close(static.gate(a), adaptive.gate(a), atol=1e-6, rtol=0)
    with torch.no_grad():
        static.logit.normal_()  # trained: still one scale for every image
    torch.testing.assert_close(static(a) / a, static(b[:2]) / b[:2])


def test_adapter_starts_as_identity_and_does_not_scale_per_image():
    adapter = _head("adapter").gate
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(adapter(x), x)
    assert not hasattr(adapter, "gate")


def test_gate_kinds_share_the_baselines_decoder_init():
    ref = _head().decoder.state_dict()
    for kind in ("adaptive", "static", "adapter"):
        model = _head(kind)
        for k, v in model.decoder.state_dict().items():
            torch.testing.assert_close(v, ref[k], msg=f"{kind}: {k}")
    torch.testing.assert_close(_head("adapter").gate.mlp[0].weight,
                               _head("adaptive").gate.mlp[0].weight)  # the same draws


def test_unknown_gate_kind_is_named():
    with pytest.raises(ModelError, match="model.gate_kind"):
        _head("nope")
