"""Shared fixtures: a device fixture, and a tiny embedded-default world in a temp home."""

from __future__ import annotations

import os

import pytest
import torch

from qfm.config import RunConfig, WorldConfig

# Tests run tiny models: one intra-op thread is faster, and on shared, busy cores a second
# thread only spin-waits (a 3-epoch tiny fit: 1.6 s with one thread, 27 s with two under
# load). Subprocesses the tests start inherit the setting through OMP_NUM_THREADS.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY_WORLD = dict(photos=["astronaut", "coffee", "chelsea", "rocket"], heldout_photos=["coffee"],
                  contents_per_photo=3,
                  distortions=["gaussian_blur", "gaussian_noise", "jpeg"], levels=3,
                  unlabelled_per_content=1, split=[0.5, 0.25, 0.25])


@pytest.fixture
def device():
    """CPU always; tests marked ``gpu`` use CUDA and skip without it."""
    return torch.device("cpu")


@pytest.fixture(scope="session")
def tiny_world_home(tmp_path_factory):
    """A project home with a tiny generated world and a smoke upstream checkpoint."""
    from qfm import paths
    from qfm.data.world import generate

    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("QFM_HOME", str(home))
    generate(WorldConfig(**TINY_WORLD), paths.world_dir(), n_splits=2, progress=False)
    yield home
    mp.undo()


@pytest.fixture
def tiny_home(tiny_world_home, monkeypatch):
    """Use the tiny world's home for this test."""
    monkeypatch.setenv("QFM_HOME", str(tiny_world_home))
    return tiny_world_home


@pytest.fixture
def make_cfg():
    """``make_cfg(train={...}, model={...})`` → a tiny RunConfig (see :func:`tiny_config`)."""
    return tiny_config


def tiny_config(**sections) -> RunConfig:
    """A RunConfig small enough for a test: tiny ViT (no weights), 32-px crops, two epochs
    (the defaults are params.yaml's pipeline model; a test names what it needs)."""
    from qfm.config import override

    base = {"world": TINY_WORLD,
            "model": {"backbone": "test_vit", "img_size": 32, "heads": 4, "dim": 32,
                      "backbone_kwargs": {"patch_size": 8}, "weights": "none",
                      "tokens": "last", "grid": 4, "gate_hidden": 0.25},
            "train": {"epochs": 2, "batch_size": 8, "eval_every": 1, "warmup_epochs": 0.5,
                      "test_crops": 2, "step_epochs": 10, "patience": 0},
            "qfm": {"anchors": 0}, "distill": {"views": 2, "unlabelled": ""}}
    cfg = RunConfig()
    dotted = {}
    for sec in set(base) | set(sections):
        for k, v in {**base.get(sec, {}), **sections.get(sec, {})}.items():
            dotted[f"{sec}.{k}"] = v
    return override(cfg, dotted)


# --- real-format trees with synthetic pixels (the e2e, cross and cache tests) -------------

def _photo(path, seed: int, size: tuple[int, int], quality: int = 90) -> None:
    """A smooth random colour field with grain, saved by its suffix (JPEG at ``quality``)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
    arr = np.asarray(low.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    arr = arr + rng.integers(-20, 21, (size[1], size[0], 1), dtype=np.int16)
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=quality) if path.suffix.lower() == ".jpg" else im.save(path)


def build_koniq_photos(root, n: int = 24, size: tuple[int, int] = (1024, 768)):
    """KonIQ-10k as distributed: ``koniq10k_distributions_sets.csv`` (vote counts, MOS 0-100,
    SD, official ``set``) and ``1024x768/<id>.jpg`` photos (the protocol resizes to 512x384)."""
    import numpy as np
    import pandas as pd

    names = [f"{826373 + 7 * i}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        _photo(root / "1024x768" / name, i, size, quality=40 + (55 * i) // max(n - 1, 1))
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 40, (n, 5))
    sets = (["training"] * n)[: n - n // 5 - n // 10] + ["validation"] * (n // 10) \
        + ["test"] * (n // 5)
    pd.DataFrame({"image_name": names, **{f"c{k + 1}": counts[:, k] for k in range(5)},
                  "c_total": counts.sum(1), "MOS": np.linspace(8.0, 88.0, n),
                  "SD": 10.0, "set": sets}).to_csv(root / "koniq10k_distributions_sets.csv",
                                                    index=False)
    return root


def build_kadid_tree(root, refs: int = 8, types: int = 2, levels: int = 3,
                     size: tuple[int, int] = (48, 36)):
    """KADID-10k as distributed: ``dmos.csv`` (``dist_img,ref_img,dmos,var``) and ``images/``
    holding references ``I01.png`` and distorted ``I01_01_01.png`` together."""
    import pandas as pd

    rows = []
    for r in range(1, refs + 1):
        _photo(root / "images" / f"I{r:02d}.png", r, size)
        for t in range(1, types + 1):
            for lev in range(1, levels + 1):
                name = f"I{r:02d}_{t:02d}_{lev:02d}.png"
                _photo(root / "images" / name, 1000 * r + 10 * t + lev, size)
                rows.append({"dist_img": name, "ref_img": f"I{r:02d}.png",
                             "dmos": 4.5 - lev + 0.1 * t, "var": 0.3})
    pd.DataFrame(rows).to_csv(root / "dmos.csv", index=False)
    return root


@pytest.fixture
def real_data(tmp_path, monkeypatch):
    """A data root (``QFM_DATA``) with ``koniq10k/`` (24 photos at 1024x768) and
    ``kadid10k/`` (8 references, 48 distorted images), and a fresh project home."""
    data = tmp_path / "data"
    build_koniq_photos(data / "koniq10k")
    build_kadid_tree(data / "kadid10k")
    monkeypatch.setenv("QFM_DATA", str(data))
    monkeypatch.setenv("QFM_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return data
