"""The trainable upstream tail on cached inputs (the fine-tuning regime)."""

import pytest
import torch

from qfm.config import ModelConfig
from qfm.models import Backbone, ModelError, build_model, create_backbone
from qfm.core.weights import tail_source
from qfm.models.tail import attach, layout, make_tail, packed, scaled_groups

LITE = ModelConfig(backbone="tf_efficientnet_lite0", weights="none", img_size=64,
                   tokens="multiscale", grid=2, dim=16, heads=2)


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    bb = Backbone(create_backbone(LITE), "multiscale", 2)
    return bb.eval().requires_grad_(False)


def test_the_tail_at_init_gives_exactly_the_frozen_tokens(backbone):
    info = layout(backbone, 1)
    x = torch.rand(2, 3, 64, 64)
    rows = packed(backbone, x, info)
    assert info["map"] == [192, 2, 2] and info["width"] == backbone.width
    tail = make_tail(backbone.net, info)
    with torch.no_grad():
        assert torch.allclose(tail(rows), backbone(x), atol=1e-5)
        assert (tail(rows.half()) - backbone(x)).abs().max() < 0.05  # the float16 cache


def test_two_stages_train_and_the_split_moves(backbone):
    info = layout(backbone, 2)
    assert info["split"] == len(backbone.net.blocks) - 2
    rows = packed(backbone, torch.rand(1, 3, 64, 64), info)
    tail = make_tail(backbone.net, info)
    assert len(tail.blocks) == 2
    with torch.no_grad():
        assert tail(rows).shape == (1, 5, backbone.width)


def test_flip_mirrors_cells_and_map_and_twice_is_identity(backbone):
    info = layout(backbone, 1)
    rows = packed(backbone, torch.rand(3, 3, 64, 64), info)
    tail = make_tail(backbone.net, info)
    assert torch.equal(tail.flip(tail.flip(rows)), rows)
    frozen, m = tail.unpack(rows)
    f2, m2 = tail.unpack(tail.flip(rows))
    assert torch.equal(m2, m.flip(3))
    assert torch.equal(f2.view(3, 2, 2, -1), frozen.view(3, 2, 2, -1).flip(2))


def test_rows_of_another_side_and_non_efficientnets_are_refused(backbone):
    info = layout(backbone, 1)
    packed(backbone, torch.rand(1, 3, 64, 64), info)
    with pytest.raises(ModelError, match="same side"):
        packed(backbone, torch.rand(1, 3, 96, 96), info)
    vit = Backbone(create_backbone(ModelConfig(backbone="test_vit", weights="none",
                                               img_size=32, tokens="multiscale",
                                               backbone_kwargs={"patch_size": 8})),
                   "multiscale", 2)
    with pytest.raises(ModelError, match="EfficientNet-style"):
        layout(vit, 1)
    with pytest.raises(ModelError, match="finetune.stages"):
        layout(backbone, 0)


def test_attach_leaves_the_random_state_and_bn_statistics_alone(backbone):
    info = layout(backbone, 1)
    packed(backbone, torch.rand(1, 3, 64, 64), info)
    torch.manual_seed(3)
    model = build_model(LITE, width=backbone.width)
    state = torch.get_rng_state()
    attach(model, info, tail_source(LITE))
    assert torch.equal(torch.get_rng_state(), state)  # pairing by seed holds
    model.train()
    assert not model.backbone.blocks.training  # batch-norm statistics stay ImageNet's
    groups = scaled_groups(model, [{"params": list(model.parameters()), "weight_decay": 0.0}])
    scales = {g["lr_scale"]: sum(p.numel() for p in g["params"]) for g in groups}
    tail_params = sum(p.numel() for p in model.backbone.parameters())
    assert scales[0.1] == tail_params and scales[1.0] > 0
    head_only = build_model(LITE, width=backbone.width)
    assert {g["lr_scale"] for g in scaled_groups(
        head_only, [{"params": list(head_only.parameters())}])} == {1.0}


def test_a_tail_model_scores_packed_rows_and_their_views(backbone):
    info = layout(backbone, 1)
    rows = packed(backbone, torch.rand(4, 3, 64, 64), info)
    model = attach(build_model(LITE, width=backbone.width), info, tail_source(LITE)).eval()
    with torch.no_grad():
        one = model(rows)
        two = model(torch.stack([rows, rows], 1))  # (B, K, D): K views averaged
    assert one.shape == (4,) and torch.allclose(one, two, atol=1e-6)
