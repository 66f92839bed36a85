"""ImageNet weights from a pip package: the mapping onto timm is right, or it fails loudly."""

import numpy as np
import pytest
import torch
from PIL import Image

from qfm.core.checkpoint import CheckpointError, load_tensors
from qfm.config import ModelConfig
from qfm.data.transforms import to_tensor
from qfm.data.world import load_photo
from qfm.core.weights import import_weights, map_state_dict, pretrained_model, source_file

EGYPTIAN_CAT, ESPRESSO = 285, 967  # ImageNet-1k class indices


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    home = tmp_path_factory.mktemp("weights")
    out = home / "models" / "efficientnet_lite0.safetensors"
    meta = import_weights("efficientnet_lite0", out)
    return home, out, meta


def test_sidecar_records_the_source_and_its_hash(lite0):
    _, out, meta = lite0
    tensors, side = load_tensors(out)
    assert side["source_sha256"] == meta["source_sha256"] and len(meta["source_sha256"]) == 64
    assert side["timm_model"] == "tf_efficientnet_lite0" and meta["tensors"] == 296
    assert side["mean"] == side["std"] == [0.5, 0.5, 0.5]
    assert "classifier.weight" in tensors


def test_imported_weights_do_not_depend_on_the_checkout(lite0, tmp_path, monkeypatch):
    """A clone's `qfm weights` must write the committed lock's bytes (world_finetune's rows
    are skipped only while its inputs reproduce): no commit or dirty flag in the file."""
    from qfm.core import checkpoint
    _, out, _ = lite0
    monkeypatch.setattr(checkpoint, "code_version", lambda: {"git": "f" * 40, "dirty": True})
    again = tmp_path / "efficientnet_lite0.safetensors"
    import_weights("efficientnet_lite0", again)
    assert again.read_bytes() == out.read_bytes()
    assert "code" not in load_tensors(again)[1]
    checkpoint.save_tensors({"x": torch.zeros(1)}, tmp_path / "x.safetensors",
                            code=True)  # `qfm train`'s checkpoints keep it
    assert load_tensors(tmp_path / "x.safetensors")[1]["code"]["git"] == "f" * 40


def test_mapped_model_names_the_right_imagenet_class(lite0, monkeypatch):
    """The classifier on top of the mapped backbone recognises shipped photos."""
    home, out, _ = lite0
    monkeypatch.setenv("QFM_HOME", str(home))
    tensors, _ = load_tensors(out)
    model = pretrained_model(ModelConfig(backbone="tf_efficientnet_lite0", img_size=224,
                                         weights="efficientnet_lite0")).eval()
    for name, label in (("chelsea", EGYPTIAN_CAT), ("coffee", ESPRESSO)):
        im = Image.fromarray(load_photo(name)).resize((224, 224), Image.BICUBIC)
        x = to_tensor(im)[None]  # ImageNet-normalised, as the data pipeline gives it
        with torch.no_grad():
            x = x * model.backbone.in_scale + model.backbone.in_shift  # → mean = std = 0.5
            feats = model.backbone.net.forward_head(model.backbone.net.forward_features(x),
                                                    pre_logits=True)
            logits = feats @ tensors["classifier.weight"].T + tensors["classifier.bias"]
        probs = logits.softmax(1)[0]
        assert int(probs.argmax()) == label, name
        assert float(probs[label]) > 0.5, name


def test_a_wrong_mapping_is_refused():
    import timm

    src = torch.load(source_file("efficientnet_lite0"), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    keys = list(src)
    swapped = dict(src)
    swapped[keys[0]], swapped[keys[5]] = src[keys[5]], src[keys[0]]  # out of order
    with pytest.raises(CheckpointError, match="does not fit"):
        map_state_dict({k: swapped[k] for k in keys}, target, "lite0.pth")
    with pytest.raises(CheckpointError, match="tensors, the timm model has"):
        map_state_dict(dict(list(src.items())[:-1]), target, "lite0.pth")


def test_unknown_weights_and_wrong_backbone_are_one_line_errors(tmp_path, monkeypatch):
    from qfm.models import ModelError

    with pytest.raises(CheckpointError, match="unknown weights 'lite9'"):
        source_file("lite9")
    with pytest.raises(ModelError, match="weights of tf_efficientnet_lite0"):
        pretrained_model(ModelConfig(backbone="resnet18", weights="efficientnet_lite0"))
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    with pytest.raises(ModelError, match="run `qfm weights efficientnet_lite0`"):
        pretrained_model(ModelConfig(backbone="tf_efficientnet_lite0",
                                     weights="efficientnet_lite0"))


def test_cached_tokens_equal_live_tokens(lite0, tmp_path, monkeypatch):
    """The study trains on cached tokens; `qfm predict` recomputes them: they must agree."""
    from qfm.config import WorldConfig
    from qfm.data.world import generate
    from qfm.study.tokens import FeatureBank, extract
    from qfm.data.transforms import load_rgb

    home, _, _ = lite0
    monkeypatch.setenv("QFM_HOME", str(home))
    world = generate(WorldConfig(photos=["chelsea", "rocket"], heldout_photos=[],
                                 contents_per_photo=1, distortions=["jpeg"], levels=2,
                                 unlabelled_per_content=1), tmp_path / "world", n_splits=1,
                     progress=False)
    cfg = ModelConfig(backbone="tf_efficientnet_lite0", img_size=128,
                      weights="efficientnet_lite0", tokens="multiscale", grid=3)
    extract(cfg, tmp_path / "f.safetensors", world=world, batch_size=3, progress=False)
    bank = FeatureBank(tmp_path / "f.safetensors")
    assert bank.tokens.shape[1:] == (10, 1024) and len(bank.index) == 2 * 2 + 2
    model = pretrained_model(cfg).eval()
    img = "images/chelsea_00_jpeg_2.png"
    with torch.no_grad():
        live = model.features(to_tensor(load_rgb(world / img))[None])[0]
    cached = bank.tokens[bank.rows([img])[0]].float()
    assert torch.allclose(live, cached, rtol=2e-3, atol=2e-3)
    with pytest.raises(CheckpointError, match="not in the cache"):
        bank.rows(["images/nope.png"])
    assert np.isfinite(bank.tokens.float().numpy()).all()
