"""``qfm predict``: folders, globs, unusual but valid images, bad files, scale, atomic CSV."""

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from qfm.core.checkpoint import save_tensors
from qfm.cli import main
from qfm.config import to_dict
from qfm.data.transforms import TestTransform, load_rgb
from qfm.models import build_model
from qfm.predict import crops, decode, find_images, preprocessing_resize, score_files


@pytest.fixture
def checkpoint(tmp_path_factory, make_cfg):
    """A tiny random-weight model saved the way ``fit`` saves one (scale 10 + 80·mos)."""
    cfg = make_cfg()
    torch.manual_seed(0)
    model = build_model(cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_tensors(model.state_dict(), path, {"config": to_dict(cfg), "dataset": "world",
                                            "label_scale": {"offset": 10.0, "scale": 80.0}})
    return path


def _noise(w, h, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def make_unusual(folder):
    """Valid images in every mode PIL users meet; returns {name: note}."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(_noise(60, 40))
    rgb.convert("L").save(folder / "grey.png")
    rgb.convert("LA").save(folder / "grey_alpha.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(folder / "rgba.png")
    rgb.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    rgb.convert("P").save(folder / "palette.gif")
    rgb.convert("1").save(folder / "bilevel.png")
    Image.fromarray((np.arange(60 * 40, dtype=np.uint16).reshape(40, 60) * 27)).save(
        folder / "grey16.png")
    Image.fromarray(np.linspace(0, 1, 60 * 40, dtype=np.float32).reshape(40, 60)).save(
        folder / "float.tif")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    rgb.save(folder / "exif_rotated.jpg", exif=exif)
    Image.fromarray(_noise(7, 5)).save(folder / "tiny.png")  # smaller than a crop
    rgb.save(folder / "photo.webp")
    rgb.save(folder / "photo.bmp")
    ramp = Image.linear_gradient("L")
    big = Image.merge("RGB", [ramp.resize((6000, 4000)), ramp.rotate(90).resize((6000, 4000)),
                              Image.radial_gradient("L").resize((6000, 4000))])
    big.save(folder / "large_6000x4000.jpg", quality=90)
    return folder


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    return make_unusual(tmp_path_factory.mktemp("odd"))


def make_bad(folder):
    """Files that cannot be scored; returns {name: expected words in the error}."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(_noise(64, 48)).save(buf, "JPEG")
    jpg = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(_noise(64, 48)).save(buf, "PNG")
    png = buf.getvalue()
    (folder / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    corrupt = bytearray(png)
    corrupt[100:400] = bytes(300)
    (folder / "corrupt.png").write_bytes(bytes(corrupt))
    bad_header = bytearray(jpg)
    bad_header[20:400] = bytes(380)
    (folder / "bad_header.jpg").write_bytes(bytes(bad_header))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is text, not an image\n")
    return {"truncated.jpg": "truncated", "truncated.png": "truncated",
            "corrupt.png": "corrupt", "bad_header.jpg": "corrupt", "empty.jpg": "empty file",
            "notes.jpg": "not an image"}


def test_find_images_files_folders_globs(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["a/1.jpg", "a/b/2.PNG", "a/readme.txt", "a/.hidden.jpg", "c.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    found = find_images([str(tmp_path / "a"), str(tmp_path / "*.jpg"), str(tmp_path / "c.jpg"),
                         str(tmp_path / "missing.png")])
    rel = [str(p).replace(str(tmp_path) + "/", "") for p in found]
    assert rel == ["a/1.jpg", "a/b/2.PNG", "c.jpg", "missing.png"]


def test_crops_equal_the_test_transform():
    im = Image.fromarray(_noise(70, 50))
    assert torch.equal(crops(im, 32, 5), TestTransform(32, 5)(im))


def test_folder_with_good_and_bad_files(checkpoint, tmp_path, capsys):
    folder = tmp_path / "imgs"
    expected = make_bad(folder)
    for i in range(3):
        Image.fromarray(_noise(50 + i, 45, seed=i)).save(folder / f"good{i}.jpg")
    (folder / "readme.txt").write_text("skipped: not an image suffix")
    out = tmp_path / "scores.csv"
    code = main(["predict", str(folder), "--checkpoint", str(checkpoint), "--out", str(out),
                 "--batch-size", "4", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 1
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns[:4]) == ["path", "score", "score_normalised", "error"]
    assert len(df) == 3 + len(expected)
    rows = {p.rsplit("/", 1)[-1]: r for p, r in zip(df["path"], df.to_dict("records"))}
    for name, words in expected.items():
        assert rows[name]["score"] == "" and words in rows[name]["error"], (name, rows[name])
        line = [ln for ln in err.splitlines() if name in ln]
        assert len(line) == 1 and words in line[0]
    for i in range(3):
        r = rows[f"good{i}.jpg"]
        assert r["error"] == "" and np.isfinite(float(r["score"]))
        assert float(r["score"]) == pytest.approx(10.0 + 80.0 * float(r["score_normalised"]))
    assert not list(tmp_path.glob(".scores.csv*"))  # no temp file left behind


def test_unusual_valid_images_are_scored(checkpoint, odd_folder):
    df = score_files([str(odd_folder)], checkpoint, batch_size=8, workers=0, progress=False)
    assert len(df) == 14
    assert (df["error"] == "").all(), df[df["error"] != ""].to_dict("records")
    assert np.isfinite(df["score"]).all()


def test_exif_rotation_and_modes_decode_as_rgb(odd_folder):
    assert load_rgb(odd_folder / "exif_rotated.jpg").size == (40, 60)  # displayed upright
    for f in odd_folder.iterdir():
        if "large" not in f.name:
            assert decode(str(f)).mode == "RGB", f.name


def test_same_scores_whatever_batch_size_and_workers(checkpoint, tmp_path):
    for i in range(5):
        Image.fromarray(_noise(40 + 3 * i, 36, seed=i)).save(tmp_path / f"{i}.png")
    a = score_files([str(tmp_path)], checkpoint, batch_size=2, workers=0, progress=False)
    b = score_files([str(tmp_path / "*.png")], checkpoint, batch_size=5, workers=2,
                    progress=False)
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-5)


def test_protocol_resize_uses_jpeg_draft_and_stays_close(tmp_path):
    big = Image.merge("RGB", [Image.linear_gradient("L").resize((3000, 2000))] * 3)
    big.save(tmp_path / "big.jpg", quality=95)
    resize = preprocessing_resize("spaq")  # short side 512
    assert preprocessing_resize("world") is None and resize(3000, 2000) == (768, 512)
    fast = decode(str(tmp_path / "big.jpg"), resize)
    ref = load_rgb(tmp_path / "big.jpg").resize((768, 512), Image.Resampling.BICUBIC)
    assert fast.size == (768, 512)
    diff = np.abs(np.asarray(fast, float) - np.asarray(ref, float))
    assert diff.mean() < 1.0  # grey levels of 255


def test_missing_default_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QFM_HOME", str(tmp_path))
    Image.fromarray(_noise(40, 40)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "default.safetensors" in err[0] and "--checkpoint" in err[0]


def test_no_images_found_is_one_line(checkpoint, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--checkpoint", str(checkpoint)]) == 2
    assert capsys.readouterr().err.strip().startswith("qfm: error: no image files found")


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the CPU-only message")
def test_cuda_requested_without_cuda_is_one_line(checkpoint, tmp_path, capsys):
    Image.fromarray(_noise(40, 40)).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path), "--checkpoint", str(checkpoint),
                 "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_scores_match_evaluation_of_a_trained_checkpoint(tiny_home, tmp_path, make_cfg):
    """predict on the test images = the model's test predictions, on the MOS scale."""
    from qfm.data.dataset import IQADataset
    from qfm.data.sources import load_parts
    from torch.utils.data import DataLoader

    from qfm.core.inference import load_model
    from qfm.runs.train import fit
    from qfm.core.inference import predict

    cfg = make_cfg(train={"epochs": 1})
    fit(cfg, tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "model.safetensors"
    root, parts = load_parts("world", cfg.train.split)
    test = IQADataset(parts["test"], root, TestTransform(32, cfg.train.test_crops))
    model, _ = load_model(ckpt, "cpu")
    want, mos = predict(model, DataLoader(test, batch_size=7), torch.device("cpu"))
    df = score_files([str(root / p) for p in parts["test"]["image"]], ckpt, workers=0,
                     progress=False)
    np.testing.assert_allclose(df["score_normalised"], want, rtol=0, atol=1e-5)
    raw = parts["test"]["raw"].to_numpy(float)
    np.testing.assert_allclose(df["score"], 100 * df["score_normalised"], atol=1e-3)
    np.testing.assert_allclose(raw, 100 * mos, atol=1e-3)  # world: raw = 100 · mos


def test_predict_never_imports_training_code(checkpoint, tmp_path):
    """``qfm predict`` loads and runs a model without importing :mod:`qfm.core.engine`."""
    Image.fromarray(_noise(40, 40)).save(tmp_path / "a.png")
    script = ("import sys\n"
              "from qfm.cli import main\n"
              f"code = main(['predict', {str(tmp_path / 'a.png')!r}, '--checkpoint', "
              f"{str(checkpoint)!r}, '--out', {str(tmp_path / 's.csv')!r}, '--workers', '0'])\n"
              "training = sorted(m for m in sys.modules if m in ('qfm.core.engine', 'qfm.core.distributed',"
              " 'qfm.losses.qfm', 'qfm.losses.distill'))\n"
              "print(code, training)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    assert out == "0 []"
    assert len(pd.read_csv(tmp_path / "s.csv")) == 1


@pytest.mark.parametrize("tokens", ["multiscale", "last"])
def test_the_channels_last_path_scores_as_the_plain_path(make_cfg, tmp_path, tokens):
    """On a CPU, load_model holds the weights in NHWC (the fast path); the scores of the shipped
    architecture (Lite0, multiscale tokens) equal the plain NCHW path's within 1e-4 (float
    rounding of other kernels, nothing more)."""
    from qfm.core.inference import infer, load_model

    cfg = make_cfg(model={"backbone": "tf_efficientnet_lite0", "weights": "none", "img_size": 96,
                          "tokens": tokens, "grid": 3, "dim": 32, "backbone_kwargs": {}})
    torch.manual_seed(0)
    path = tmp_path / "lite0.safetensors"
    save_tensors(build_model(cfg.model).state_dict(), path, {"config": to_dict(cfg)})
    fast, _ = load_model(path, "cpu")
    plain, _ = load_model(path, "cpu", channels_last=False)
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert next(m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)).weight \
        .is_contiguous()
    x = torch.rand(3, 2, 3, 96, 96)  # (B, K crops, 3, S, S)
    a, b = infer(fast, x, torch.device("cpu")), infer(plain, x, torch.device("cpu"))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
