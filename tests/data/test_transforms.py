import numpy as np
import torch
from PIL import Image

from qfm.data.transforms import TestTransform, TrainTransform, load_rgb, eval_boxes


def test_test_transform_is_deterministic_and_covers_corners():
    im = Image.fromarray((np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    t = TestTransform(32, 5)
    a, b = t(im), t(im)
    assert a.shape == (5, 3, 32, 32) and torch.equal(a, b)
    boxes = eval_boxes(70, 50, 32, 5)
    assert boxes[0] == (19, 9) and (0, 0) in boxes and (38, 18) in boxes


def test_small_images_are_resized_up():
    im = Image.new("RGB", (10, 20))
    assert TrainTransform(32)(im).shape == (3, 32, 32)
    assert TestTransform(32, 3)(im).shape == (3, 3, 32, 32)


def test_load_rgb_modes(tmp_path):
    arr16 = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200)
    Image.fromarray(arr16).save(tmp_path / "g16.png")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "rgba.png")
    Image.new("P", (8, 8)).save(tmp_path / "p.png")
    Image.new("CMYK", (8, 8), (0, 255, 0, 0)).save(tmp_path / "cmyk.jpg")
    for name in ["g16.png", "rgba.png", "p.png", "cmyk.jpg"]:
        im = load_rgb(tmp_path / name)
        assert im.mode == "RGB", name
    assert load_rgb(tmp_path / "rgba.png").getpixel((0, 0)) == (255, 255, 255)  # on white
    assert np.asarray(load_rgb(tmp_path / "g16.png")).max() > 150  # scaled, not clipped to 255
