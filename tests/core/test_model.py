import pytest
import torch

from qfm.config import ModelConfig
from qfm.core.model import ModelError, build_model


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
    model = build_model(ModelConfig(backbone="deit3_small_patch16_224", img_size=224,
                                    heads=6, dim=0))
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
    model = build_model(ModelConfig(backbone="test_vit", img_size=160, heads=4,
                                    weights=str(path)))
    k = "pos_embed"
    torch.testing.assert_close(model.backbone.net.state_dict()["cls_token"],
                               src.state_dict()["cls_token"])
    assert k in model.backbone.net.state_dict()
    with pytest.raises(ModelError, match="file not found"):
        build_model(ModelConfig(backbone="test_vit", weights=str(tmp_path / "nope.pth")))
