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
    """A RunConfig small enough for a test: tiny ViT, 32-px crops, two epochs."""
    from qfm.config import override

    base = {"world": TINY_WORLD,
            "model": {"backbone": "test_vit", "img_size": 32, "heads": 4, "dim": 32,
                      "backbone_kwargs": {"patch_size": 8}},
            "train": {"epochs": 2, "batch_size": 8, "eval_every": 1, "warmup_epochs": 0.5,
                      "test_crops": 2}}
    cfg = RunConfig()
    dotted = {}
    for sec in set(base) | set(sections):
        for k, v in {**base.get(sec, {}), **sections.get(sec, {})}.items():
            dotted[f"{sec}.{k}"] = v
    return override(cfg, dotted)
