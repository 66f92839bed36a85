"""The world's and the default head's views (qfm.report.world_views) on a head check shaped like
:func:`qfm.study.head_check.head_predictions`' result and a world record shaped like
``world.json``; the world's images are drawn by qfm.report.world_figures (tests/report/
test_figures.py), here only what the notebook passes them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from qfm.report import world_figures, world_views


@pytest.fixture
def check() -> dict:
    rng = np.random.default_rng(1)
    pred = pd.DataFrame({"part": ["test"] * 20 + ["held-out photos"] * 20, "image": "x.png",
                         "true": rng.uniform(0, 100, 40), "pred": rng.uniform(0, 100, 40)})
    dist, gap = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    return {"variant": "full", "seed": 3, "pred": pred,
            "srcc": {"test": 0.81234, "held-out photos": 0.70123},
            "pairs": {"raw upstream": (dist, gap, 0.31, 0.1), "full head": (dist, gap, 0.2, 0.1)},
            "base_rate": 0.1234}


def test_head_values_and_figures(check, tmp_path):
    assert world_views.head_values(check) == {
        "head_seed": 3, "head_variant": "full", "head_srcc_test": "0.812",
        "head_srcc_heldout": "0.701", "noise_base_rate": "12.3%"}
    assert world_views.pred_true_figure(check, tmp_path) == tmp_path / "pred_true.png"
    paths = world_views.noise_figures(check, tmp_path)
    assert [p.name for p in paths] == ["noise_raw.png", "noise_head.png"]
    assert all(p.stat().st_size > 1000 for p in [*paths, tmp_path / "pred_true.png"])


def test_world_values_read_world_json_and_params(inputs, tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    (world / "world.json").write_text(json.dumps({
        "config": {"photos": ["a", "b", "c"], "heldout_photos": ["c"], "distortions": ["x", "y"],
                   "levels": 5, "size": 128, "split": [0.7, 0.1, 0.2]},
        "contents": 30, "images": 300, "unlabelled": 10, "splits": 10}))
    v = world_views.world_values(dataclasses.replace(inputs, world=world))
    assert v["world_photos"] == 3 and v["world_inside_photos"] == 2
    assert v["world_heldout_photos"] == "c" and v["world_split"] == "70% / 10% / 20%"
    assert v["strengths"] == "0, 1" and v["figure_split"] == 0  # a number: the book's :d
    assert v["example_content"] == "c_01"
    assert world_views.strengths(inputs) == [0.0, 1.0]


def test_the_world_figures_get_the_params_values(inputs, monkeypatch, tmp_path):
    calls = {}

    def record(name):
        def draw(*args):
            calls[name] = args
            return args[-2] if name == "pairs" else args[-1]
        return draw

    for name in ("example_figure", "spurious_figure", "pairs_figure", "matched_pairs"):
        monkeypatch.setattr(world_figures, name, record(name.split("_")[0]))
    assert world_views.example_figure(inputs, tmp_path).name == "world_example.png"
    assert calls["example"][1] == "c_01"
    assert world_views.spurious_figure(inputs, tmp_path).name == "spurious.png"
    assert calls["spurious"][1:3] == (0, [0.0, 1.0])
    world_views.matched_pairs(inputs)
    assert calls["matched"][2:] == (0, 0.05, 8)  # split, τ (params.yaml's: none tuned), batch
    pairs = pd.DataFrame({"distance": [0.1] * 7})
    assert world_views.pairs_values(inputs, pairs) == {"pairs_tau": "0.05",
                                                       "pairs_matched": "7 of 8"}
    world_views.pairs_figure(inputs, pairs, tmp_path)
    assert calls["pairs"][2].name == "pairs.png" and calls["pairs"][3] == 2
