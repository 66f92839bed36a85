"""``--runtime onnx`` (:mod:`qfm.onnx_runtime`): ONNX Runtime scores as the torch model does —
within 1e-5 on the normalised scale, 1e-3 on a 0-100 MOS scale (float rounding of other
kernels; measured ~1e-6 on a random tiny Lite0, ~1e-7 on the shipped model) — through
``qfm predict`` and ``qfm.load_scorer``; the export is cached by the weights and written
atomically; a bad runtime name and a missing onnxruntime are one-line errors.

The ONNX tests skip without the ``onnx`` extra (``pip install 'qfm[onnx]'``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import qfm
from qfm import paths
from qfm.cli import main
from qfm.config import to_dict
from qfm.core.checkpoint import save_tensors
from qfm.core.inference import infer, load_model
from qfm.models import build_model
from qfm.predict import score_files

ROOT = Path(__file__).resolve().parents[2]
ATOL = 1e-5  # normalised scores; × 100 on a 0-100 MOS scale
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def ort():
    """Skip without the extra's packages (the runtime, and the exporter's onnx + onnxscript)."""
    for name in ("onnx", "onnxscript"):
        pytest.importorskip(name, reason=f"{name} not installed (pip install 'qfm[onnx]')")
    return pytest.importorskip("onnxruntime",
                               reason="onnxruntime not installed (pip install 'qfm[onnx]')")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A project home for the module: exports are cached in its runs/onnx, not the checkout's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("QFM_HOME", str(tmp_path_factory.mktemp("home")))
    yield paths.home()
    mp.undo()


@pytest.fixture
def lite0(tmp_path, home, make_cfg):
    """A random-weight Lite0 with the shipped model's multiscale tokens at 100 px, whose maps
    (50, 25, 13, 7, 4 px) do not divide into the 3×3 grid (the pooling the TorchScript
    exporter refuses); label scale 10 + 80·score, 2 test crops. The same weights in every
    test, so the module's home exports them once."""
    cfg = make_cfg(model={"backbone": "tf_efficientnet_lite0", "weights": "none",
                             "img_size": 100, "tokens": "multiscale", "grid": 3, "dim": 32,
                             "backbone_kwargs": {}})
    torch.manual_seed(0)
    path = tmp_path / "lite0.safetensors"
    save_tensors(build_model(cfg.model).state_dict(), path,
                 {"config": to_dict(cfg), "dataset": "world",
                  "label_scale": {"offset": 10.0, "scale": 80.0}})
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(120, 110), (100, 140), (150, 100)]):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_onnx_scores_equal_torch_scores_on_any_batch_and_crops(ort, lite0):
    from qfm.onnx_runtime import onnx_model

    model, meta = load_model(lite0, "cpu")  # NHWC weights, as predict loads them
    twin = onnx_model(model, meta)
    torch.manual_seed(1)
    for shape in [(1, 3, 100, 100), (3, 3, 100, 100), (2, 2, 3, 100, 100)]:
        x = torch.rand(shape)
        a, b = infer(twin, x, CPU), infer(model, x, CPU)
        assert a.shape == b.shape == (shape[0],) and a.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL)


def test_the_optimised_graph_is_saved_once_per_machine_and_scores_the_same(ort, lite0, capfd):
    from qfm.onnx_runtime import OrtModel, export

    model, meta = load_model(lite0, "cpu")
    path = export(model, meta["config"]["model"])
    for old in path.parent.glob(f"{path.stem}.*.ort.onnx"):
        old.unlink()
    first = OrtModel(path)  # optimises and saves
    assert first.ready.is_file() and first.ready.name.startswith(path.stem + ".")
    stamp = first.ready.stat().st_mtime_ns
    second = OrtModel(path)  # loads the saved graph as it is
    assert second.ready == first.ready and first.ready.stat().st_mtime_ns == stamp
    assert not list(path.parent.glob("*.tmp"))
    x = torch.rand(2, 3, 100, 100)
    torch.testing.assert_close(second(x), first(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(second(x), infer(model, x, CPU), rtol=0, atol=ATOL)
    assert "hardware specific" not in capfd.readouterr().err  # the runtime's notes kept quiet


def test_the_export_is_cached_by_the_weights_and_written_atomically(ort, lite0, monkeypatch):
    from qfm import onnx_runtime

    model, meta = load_model(lite0, "cpu")
    plain, _ = load_model(lite0, "cpu", channels_last=False)
    config = meta["config"]["model"]
    first = onnx_runtime.export(model, config)
    assert first.parent == paths.runs_dir() / "onnx"
    assert onnx_runtime.cache_file(plain, config) == first  # the layout is no part of the key
    assert onnx_runtime.cache_file(plain, {**config, "heads": 2}) != first  # same weights
    assert not list(first.parent.glob("*.tmp"))

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    assert onnx_runtime.export(model, config) == first  # cached: no second export
    with torch.no_grad():
        list(plain.parameters())[-1].add_(1e-3)
    changed = onnx_runtime.cache_file(plain, config)
    assert changed != first and changed.parent == first.parent
    with pytest.raises(RuntimeError, match="ONNX export failed.*--runtime torch"):
        onnx_runtime.export(plain, config)  # a failing exporter: one line, pointing back
    assert not changed.exists()


def test_cli_runtime_onnx_gives_the_torch_numbers(ort, lite0, photos, capsys):
    assert main(["predict", str(photos), "--checkpoint", str(lite0), "--workers", "0",
                 "--runtime", "onnx"]) == 0
    out = capsys.readouterr().out  # the CSV on stdout: no exporter chatter mixed in
    got = pd.read_csv(io.StringIO(out))
    want = score_files([str(photos)], lite0, workers=0, progress=False)
    assert list(got["path"]) == list(want["path"])
    np.testing.assert_allclose(got["score_normalised"], want["score_normalised"], rtol=0,
                               atol=ATOL)
    np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=80 * ATOL)
    two = score_files([str(photos)], lite0, workers=2, batch_size=2, progress=False,
                      runtime="onnx")  # decoding workers beside the session's threads
    np.testing.assert_allclose(two["score"], got["score"], rtol=0, atol=1e-9)


def test_scorer_runtime_onnx_gives_the_torch_numbers(ort, lite0, photos):
    files = sorted(photos.glob("*.png"))
    a = qfm.load_scorer(lite0, runtime="onnx")
    b = qfm.load_scorer(lite0)
    np.testing.assert_allclose(a(files), b(files), rtol=0, atol=80 * ATOL)
    assert a(files[0]) == pytest.approx(b(files[0]), abs=80 * ATOL)


def test_a_bad_runtime_name_is_one_line(lite0, photos, capsys):
    assert main(["predict", str(photos), "--checkpoint", str(lite0), "--runtime", "tensorrt"]) \
        == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["qfm: error: --runtime: expected one of torch, onnx, got 'tensorrt'"]
    with pytest.raises(ValueError, match="--runtime"):
        qfm.load_scorer(lite0, runtime="openvino")


def test_without_onnxruntime_the_error_names_the_extra(lite0, photos, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert main(["predict", str(photos), "--checkpoint", str(lite0), "--runtime", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnxruntime" in err[0] and "pip install 'qfm[onnx]'" in err[0]


@pytest.mark.slow
def test_the_shipped_model_scores_the_same_on_onnx_runtime(ort, tmp_path, monkeypatch):
    """models/default.safetensors (Lite0 at 500 px, 1 crop) on photos of CLIVE's size: the
    export takes minutes on 2 cores."""
    ckpt = ROOT / "models" / "default.safetensors"
    monkeypatch.setenv("QFM_HOME", str(tmp_path))  # the export's cache: not the checkout's
    if not ckpt.is_file():
        pytest.skip(f"{ckpt} not built (dvc repro default)")
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for i in range(3):
        grain = rng.normal(0, 20 + 20 * i, (500, 500, 3))
        field = np.linspace(0, 255, 500)[None, :, None] * np.ones((500, 1, 3))
        Image.fromarray(np.clip(field + grain, 0, 255).astype(np.uint8)).save(
            tmp_path / "photos" / f"{i}.jpg", quality=60 + 15 * i)
    folder = str(tmp_path / "photos")
    want = score_files([folder], ckpt, workers=0, progress=False)
    got = score_files([folder], ckpt, workers=0, progress=False, runtime="onnx")
    assert (got["error"] == "").all() and np.isfinite(got["score"]).all()
    np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=100 * ATOL)
