"""The runs' test predictions in the report: a small synthetic predictions file (the shape
:func:`qfm.study.stages.write_predictions` writes) read into a frame, drawn per variant, and
its worst-predicted photos ranked by error. No torch, no pipeline outputs."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from qfm.report import figures, predictions

IMAGES = [f"Images/{i}.png" for i in range(12)]


def _file(tmp_path):
    """Two variants × three seeds; each seed tests 8 of 12 photos. ``good`` tracks the MOS
    but photo 3 it rates far too good; ``noisy`` is noise around the MOS."""
    rng = np.random.default_rng(0)
    mos = np.round(np.linspace(0.1, 0.9, len(IMAGES)), 5)
    tests, runs = {}, []
    for seed in range(3):
        others = [i for i in range(len(IMAGES)) if i != 3]
        idx = sorted(rng.choice(others, 7, replace=False).tolist() + [3])  # photo 3 always
        tests[str(seed)] = {"image": [IMAGES[i] for i in idx], "mos": mos[idx].tolist()}
        good = 0.8 * mos[idx] + 0.05 + rng.normal(0, 0.01, len(idx))
        good[idx.index(3)] += 0.5
        noisy = mos[idx] + rng.normal(0, 0.2, len(idx))
        for v, p in (("good", good), ("noisy", noisy)):
            runs.append({"variant": v, "seed": seed, "spurious": 0.0,
                         "pred": np.round(p, 5).tolist()})
    path = tmp_path / "g.predictions.json"
    path.write_text(json.dumps({"group": "g", "spurious": 0.0, "decimals": 5, "scale": "x",
                                "tests": tests, "runs": runs}))
    return path


def test_load_gives_one_row_per_run_and_test_photo_on_the_mos_scale(tmp_path):
    frame = predictions.load_predictions(_file(tmp_path))
    assert list(frame.columns) == predictions.COLUMNS
    assert len(frame) == 2 * 3 * 8 and set(frame["image"]) <= set(IMAGES)
    assert frame["mos"].between(10, 90).all()  # × 100: the MOS scale
    s = predictions.split_srcc(frame)
    assert len(s) == 6 and (s["n"] == 8).all()
    g0 = frame[(frame["variant"] == "noisy") & (frame["seed"] == 0)]
    assert s.iloc[1]["srcc"] == pytest.approx(stats.spearmanr(g0["pred"], g0["mos"])[0])
    absent = predictions.load_predictions(tmp_path / "none.predictions.json")
    assert absent.empty and list(absent.columns) == predictions.COLUMNS


def test_scatter_is_written_fits_the_column_and_titles_the_mean_split_srcc(tmp_path,
                                                                           monkeypatch):
    frame = predictions.load_predictions(_file(tmp_path))
    kept = []
    monkeypatch.setattr(plt, "close", kept.append)
    out = predictions.scatter_figure(frame, ["good", "noisy", "absent"], tmp_path / "s.png")
    monkeypatch.undo()
    assert Image.open(out).format == "PNG"
    assert not list(tmp_path.glob(".s.png*"))  # written atomically: no temporary left
    fig = kept[0]
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2 and fig.get_size_inches()[0] <= figures.MAX_WIDTH + 1e-9
    mean = predictions.split_srcc(frame).groupby("variant")["srcc"].mean()
    assert panels[1].get_title() == f"noisy\nSRCC {mean['noisy']:.3f} (3 splits)"
    small = [t.get_text() for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < figures.MIN_FONT]
    assert not small
    plt.close("all")
    empty = predictions.load_predictions(tmp_path / "none.json")
    assert Image.open(predictions.scatter_figure(empty, ["good"], tmp_path / "e.png"))


def test_worst_photos_are_ordered_by_mapped_error(tmp_path):
    frame = predictions.load_predictions(_file(tmp_path))
    worst = predictions.worst_frame(frame, "good", k=5)
    assert len(worst) == 5 and worst["error"].is_monotonic_decreasing
    top = worst.iloc[0]
    assert top["image"] == "Images/3.png" and top["splits"] == 3 and top["bias"] > 0
    m = predictions.mapped(frame[frame["variant"] == "good"])
    assert (m["error"] == m["mapped"] - m["mos"]).all()
    assert top["error"] == pytest.approx(m.loc[m["image"] == top["image"], "error"].abs().mean())
    assert top["error"] > worst.iloc[1]["error"]
    table = predictions.worst_table(frame, "good", k=5)
    assert list(table.frame["photo"]) == list(worst["image"])
    assert "mean |error|" in table.markup and "4-parameter logistic" in table.markup
    assert "no test predictions" in predictions.worst_table(frame, "absent").markup
    assert (predictions.worst_frame(frame, "good", k=12, min_splits=2)["splits"] >= 2).all()


def test_thumbnails_or_a_note_when_the_photos_are_absent(tmp_path):
    frame = predictions.load_predictions(_file(tmp_path))
    worst = predictions.worst_frame(frame, "good", k=3)
    (tmp_path / "Images").mkdir()
    for name in IMAGES:
        Image.new("RGB", (50, 40), (120, 30, 60)).save(tmp_path / name)
    strip = predictions.thumbnail_strip(worst, tmp_path / "strip.png", root=tmp_path)
    noted = predictions.thumbnail_strip(worst, tmp_path / "note.png", root=None)
    assert Image.open(strip).size[1] > Image.open(noted).size[1]  # photos vs one line
