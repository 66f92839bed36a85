import json

import numpy as np
import pytest

from qfm.runs.noise import analyze
from qfm.core.metrics import noise_share, pair_arrays


def test_pairs_and_share_on_a_hand_made_example():
    f = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    q = np.array([0.0, 0.5, 0.5, 1.0])
    dist, gap = pair_arrays(f, q)
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    np.testing.assert_allclose(dist, [0, 1, 2, 1, 2, 1], atol=1e-12)
    np.testing.assert_allclose(gap, [0.5, 0.5, 1.0, 0.0, 0.5, 0.5])
    share, cut = noise_share(dist, gap)  # ceil(0.1·6) = 1 pair: (0,1), gap 0.5
    assert share == 1.0 and cut == pytest.approx(0.0, abs=1e-12)
    share, cut = noise_share(dist, gap, closest=0.5)  # (0,1), (0,2), (1,2)
    assert share == pytest.approx(2 / 3) and cut == pytest.approx(1.0)
    assert noise_share(dist, gap, closest=1.0, threshold=0.6)[0] == pytest.approx(1 / 6)


def test_smoke_analyze_checkpoint_and_upstream(tiny_home, tmp_path, make_cfg):
    from qfm.cli import main
    from qfm.runs.train import fit
    from qfm.runs.upstream import pretrain

    cfg = make_cfg(train={"epochs": 1, "split": 1}, model={"gate": True})
    fit(cfg, tmp_path / "run", progress=False)
    # a checkpoint is analysed on its own split, whatever the config says
    r = analyze(make_cfg(), tmp_path / "a", checkpoint=tmp_path / "run" / "model.safetensors")
    assert r["split"] == 1
    saved = json.loads((tmp_path / "a" / "semantic_noise.json").read_text())
    assert saved == json.loads(json.dumps(r))
    assert set(r["share"]) == {"upstream", "selected"} and r["images"] > 2
    assert 0 <= r["share"]["selected"] <= 1 and r["pairs"] == r["images"] * (r["images"] - 1) // 2
    assert (tmp_path / "a" / "semantic_noise.png").stat().st_size > 1000
    up = tmp_path / "up.safetensors"
    pretrain(cfg.model, cfg.upstream, up, steps=2, progress=False)
    sets = ["--set", "model.backbone=test_vit", "--set", "model.img_size=32",
            "--set", "model.backbone_kwargs={patch_size: 8}"]
    assert main(["analyze", "--upstream", str(up), "--part", "val", "--out",
                 str(tmp_path / "u"), *sets]) == 0
    r = json.loads((tmp_path / "u" / "semantic_noise.json").read_text())
    assert r["source"] == "upstream" and set(r["share"]) == {"upstream"} and r["part"] == "val"
    assert (tmp_path / "u" / "semantic_noise.png").is_file()


def test_pairs_take_memory_of_order_n_squared_not_n_squared_times_c():
    """Cosine distances from N×C features through N×N similarities (in blocks), never a
    pairs × C array: 300 features of width 256 once took ~190 MB, now a few MB."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n, c = 300, 256
    f, q = rng.normal(size=(n, c)), rng.random(n)
    tracemalloc.start()
    dist, gap = pair_arrays(f, q)
    share, cut = noise_share(dist, gap)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * n * n * 8, f"{peak / 2**20:.1f} MiB"
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)  # the same numbers as the direct way
    i, j = np.triu_indices(n, k=1)
    np.testing.assert_allclose(dist, 1 - (fn @ fn.T)[i, j], atol=1e-12)
    np.testing.assert_array_equal(gap, np.abs(q[i] - q[j]))
    k = int(np.ceil(0.1 * len(dist)))
    order = np.argsort(dist, kind="stable")[:k]
    assert share == np.mean(gap[order] > 0.2) and cut == dist[order[-1]]


def test_noise_share_breaks_ties_at_the_cutoff_by_pair_order():
    dist = np.array([0.5, 0.1, 0.5, 0.5, 0.9])
    gap = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    # closest 3 (stable): pair 1, then pairs 0 and 2 of the three tied at 0.5
    assert noise_share(dist, gap, closest=0.6) == (pytest.approx(1 / 3), 0.5)
