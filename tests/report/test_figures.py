"""The book's figures stay readable in its column: every figure at most ``MAX_WIDTH`` inches
wide (shown at the column's 660 px, its text keeps its size) and no visible text under
``MIN_FONT`` pt; verdict words are drawn darker than the marks. Small synthetic frames, no
pipeline outputs.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from qfm.report import figures
from qfm.report import world_figures as world

VARIANTS = ["gate", "gate_qfm", "full"]


@pytest.fixture
def drawn(monkeypatch):
    """The figures drawn (kept open: ``plt.close`` is recorded, not run)."""
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    yield kept
    monkeypatch.undo()
    plt.close("all")


def small_texts(fig) -> list[tuple[str, float]]:
    def shown(t):
        return t.get_visible() and t.get_text().strip() and (t.axes is None
                                                            or t.axes.get_visible())
    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
            if shown(t) and t.get_fontsize() < figures.MIN_FONT]


def study_figures(tmp_path):
    rng = np.random.default_rng(0)
    seeds = range(4)
    verdicts = ["better", "no difference detected", "worse"]
    paired = pd.DataFrame([(v, s, rng.normal(0.05, 0.02)) for v in VARIANTS for s in seeds],
                          columns=["variant", "seed", "delta"])
    cmp = pd.DataFrame({"variant": VARIANTS, "delta": [0.05, 0.0, -0.04],
                        "ci_lo": [0.02, -0.02, -0.06], "ci_hi": [0.08, 0.02, -0.01],
                        "verdict": verdicts})
    figures.deltas_figure(paired, cmp, tmp_path / "deltas.png")
    sweep = pd.DataFrame([(v, k, 0.1, 0.05, 0.15) for v in VARIANTS for k in (0, 0.5, 1)],
                         columns=["variant", "spurious", "delta", "ci_lo", "ci_hi"])
    base = pd.DataFrame({"spurious": [0, 0.5, 1], "mean": [0.8, 0.75, 0.6],
                         "ci_lo": [0.75, 0.7, 0.55], "ci_hi": [0.85, 0.8, 0.65]})
    figures.sweep_figure(sweep, base, tmp_path / "sweep.png")
    rows = pd.DataFrame([(v, s, list(rng.uniform(0.5, 0.9, 6)), rng.uniform(0.7, 0.9))
                         for v in ["baseline", *VARIANTS] for s in seeds],
                        columns=["variant", "seed", "val_curve", "test_srcc"])
    figures.curves_figure(rows, ["baseline", *VARIANTS], tmp_path / "curves.png")
    ladder = pd.DataFrame({"variant": ["baseline", *VARIANTS], "mean": [0.8, 0.9, 0.9, 0.9],
                           "ci_lo": [0.75, 0.87, 0.87, 0.87], "ci_hi": [0.85, 0.93, 0.93, 0.93],
                           "step_delta": [np.nan, 0.1, 0.0, 0.01],
                           "step_lo": [np.nan, 0.07, -0.01, -0.01],
                           "step_hi": [np.nan, 0.14, 0.01, 0.02],
                           "step_verdict": ["", *verdicts]})
    figures.ladder_figure(ladder, rows, tmp_path / "ladder.png")
    trials = pd.DataFrame(
        [(f"learning rate ({v})", v, lr, rng.uniform(0.8, 0.9), lr == 0.001)
         for v in ["baseline", "gate", "gate_static", "gate_params"]
         for lr in (0.00025, 0.0005, 0.001, 0.002, 0.004)]
        + [("τ (gate_qfm)", "gate_qfm", t, 0.9, t == 0.05) for t in (0.003125, 0.0125, 0.05)],
        columns=["step", "variant", "value", "val_srcc", "chosen"])
    figures.tuning_figure(trials, tmp_path / "tuning.png")
    ladders = {k: {"scores": list(np.linspace(60, 30, 6)), "ordered": True}
               for k in ("gaussian_blur", "gaussian_noise", "jpeg", "motion_blur", "pixelate")}
    figures.unseen_figure({"ladders": ladders}, tmp_path / "unseen.png")
    shares = pd.DataFrame([(src, s, rng.uniform(0.2, 0.4)) for src in ("upstream", "gate")
                           for s in seeds], columns=["source", "seed", "share"])
    summary = pd.DataFrame({"source": ["upstream", "gate"], "mean": [0.3, 0.25],
                            "ci_lo": [0.25, 0.2], "ci_hi": [0.35, 0.3]})
    figures.share_figure(shares, summary, tmp_path / "share.png")
    pred = pd.DataFrame({"part": ["test"] * 20 + ["held-out photos"] * 20,
                         "true": rng.uniform(0, 100, 40), "pred": rng.uniform(0, 100, 40)})
    figures.pred_true_figure(pred, tmp_path / "pred_true.png", title="gate_qfm, split 0")


def world_figures(tmp_path):
    root = tmp_path / "world"
    (root / "images").mkdir(parents=True)
    rows = []
    for kind in ("gaussian_blur", "jpeg"):
        for lev in range(1, 6):
            name = f"images/immunohistochemistry_07_{kind}_{lev}.png"
            Image.new("RGB", (16, 16), (lev * 40, 90, 120)).save(root / name)
            rows.append(("immunohistochemistry_07", kind, lev, 50.0 + lev, name))
    Image.new("RGB", (16, 16)).save(root / "images" / "immunohistochemistry_07_ref.png")
    pd.DataFrame(rows, columns=["content", "distortion", "level", "raw", "image"]).to_csv(
        root / "table.csv", index=False)
    world.example_figure(root, "immunohistochemistry_07", tmp_path / "example.png")
    pairs = pd.DataFrame([{"distance": 0.5, **{f"{side}_{k}": v for side in ("anchor", "partner")
                                               for k, v in zip(("content", "distortion",
                                                                "level", "mos", "image"), r)}}
                          for r in rows[:5]])
    world.pairs_figure(root, pairs, tmp_path / "pairs.png", n=5)


def test_every_figure_fits_the_column_and_no_text_is_small(drawn, tmp_path):
    study_figures(tmp_path)
    world_figures(tmp_path)
    assert len(drawn) == 10
    for fig in drawn:
        name = fig.axes[0].get_title() or fig.get_suptitle() or fig.axes[0].get_xlabel()
        assert fig.get_size_inches()[0] <= figures.MAX_WIDTH + 1e-9, name
        assert not small_texts(fig), (name, small_texts(fig))


def test_verdict_words_are_darker_than_their_marks():
    def luminance(c):
        return float(np.dot(to_rgb(c), [0.2126, 0.7152, 0.0722]))

    for verdict, mark in figures.VERDICT_COLOURS.items():
        assert luminance(figures.VERDICT_TEXT[verdict]) < luminance(mark) - 0.1, verdict
        assert luminance(figures.VERDICT_TEXT[verdict]) < 0.45, verdict
