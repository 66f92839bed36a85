"""Each run's test predictions, not only its metrics: predicted vs MOS per variant, and the
photos a variant predicts worst.

Reads the file a study group writes beside its rows, ``<rows stem>.predictions.json``
(:func:`qfm.study.stages.write_predictions`; for LIVEC ``measured/livec/livec.predictions.json``):
each seed's test images and MOS once, each run's scores of them, on the normalised MOS scale
the runs train on (rounded to 5 decimals). JSON only: no torch, nothing of the study.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from qfm import paths
from qfm.core.metrics import fit_logistic, logistic4  # numpy/scipy only
from qfm.files import atomic_write, read_json
from qfm.report.figures import DPI, MAX_WIDTH, styled  # (its import selects the Agg backend)
from qfm.report.tables import Table, html_table, note

COLUMNS = ["variant", "seed", "spurious", "image", "mos", "pred"]
NOT_MEASURED = "no test predictions in this checkout (written when the study runs again)"


def load_predictions(path: str | Path, scale: float = 100.0) -> pd.DataFrame:
    """A predictions file as a long frame, one row per (run, test image).

    Args:
        path: ``<rows stem>.predictions.json``.
        scale: multiplies MOS and predictions (the file's normalised scale × 100 = the
            MOS scale of CLIVE and of the world, 0–100).
    Returns:
        ``variant, seed, spurious, image, mos, pred`` (empty, same columns, when the file is
        absent: a study measured before predictions were stored).
    """
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    data = read_json(path)
    parts = []
    for run in data["runs"]:
        test = data["tests"][str(run["seed"])]
        parts.append(pd.DataFrame({"variant": run["variant"], "seed": int(run["seed"]),
                                   "spurious": float(run.get("spurious", data["spurious"])),
                                   "image": test["image"],
                                   "mos": np.asarray(test["mos"], float) * scale,
                                   "pred": np.asarray(run["pred"], float) * scale}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def split_srcc(frame: pd.DataFrame) -> pd.DataFrame:
    """Test SRCC of each run (variant, seed) from its predictions: the rows' ``test_srcc``
    up to the file's rounding.

    Returns:
        ``variant, seed, srcc, n``.
    """
    out = [(v, s, float(stats.spearmanr(g["pred"], g["mos"])[0]), len(g))
           for (v, s), g in frame.groupby(["variant", "seed"], sort=False)]
    return pd.DataFrame(out, columns=["variant", "seed", "srcc", "n"])


def _save(fig, path: str | Path) -> Path:
    """Save a figure as PNG atomically (a reader never sees half a file)."""
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    plt.close(fig)
    return out


@styled
def scatter_figure(frame: pd.DataFrame, variants, path: str | Path,
                   label: str = "MOS (0–100)") -> Path:
    """Predicted vs MOS, one panel per variant: every split's test photos (a photo tested in
    several splits is a point per split), the raw predictions (no logistic mapping) and the
    line prediction = MOS. Each panel's title gives the mean over splits of the per-split test
    SRCC (:func:`split_srcc`), the number the study reports, not a pooled SRCC.

    Args:
        frame: :func:`load_predictions`'s frame; variants: the panels, in order (those
            absent from ``frame`` are skipped).
        label: the MOS axis's name.
    Returns:
        ``path`` (a note drawn in place of panels when ``frame`` holds none of ``variants``).
    """
    shown = [v for v in variants if v in set(frame["variant"])]
    if not shown:
        fig, ax = plt.subplots(figsize=(MAX_WIDTH, 1.2))
        ax.text(0.5, 0.5, NOT_MEASURED, ha="center", va="center", wrap=True)
        ax.axis("off")
        return _save(fig, path)
    srcc = split_srcc(frame[frame["variant"].isin(shown)]).groupby("variant")
    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    side = MAX_WIDTH / cols
    fig, axes = plt.subplots(rows, cols, figsize=(MAX_WIDTH, side * rows + 0.3),
                             sharex=True, sharey=True, squeeze=False)
    lo = float(min(frame["mos"].min(), frame["pred"].min()))
    hi = float(max(frame["mos"].max(), frame["pred"].max()))
    for ax, v in zip(axes.flat, shown):
        g = frame[frame["variant"] == v]
        ax.scatter(g["mos"], g["pred"], s=4, alpha=0.2, color="tab:blue", linewidths=0)
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--")
        s = srcc.get_group(v)["srcc"]
        ax.set_title(f"{v}\nSRCC {s.mean():.3f} ({len(s)} splits)")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel(label)
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted")
    return _save(fig, path)


def mapped(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``mapped``: each run's predictions mapped to the MOS scale by the
    4-parameter logistic fitted on that run's test photos (:func:`qfm.core.metrics.fit_logistic`,
    the fit the study's PLCC uses), and ``error`` = mapped − MOS."""
    parts = []
    for _, g in frame.groupby(["variant", "seed"], sort=False):
        m = logistic4(g["pred"].to_numpy(), *fit_logistic(g["pred"], g["mos"]))
        parts.append(g.assign(mapped=m, error=m - g["mos"].to_numpy()))
    return pd.concat(parts) if parts else frame.assign(mapped=[], error=[])


def worst_frame(frame: pd.DataFrame, variant: str, k: int = 10,
                min_splits: int = 1) -> pd.DataFrame:
    """The ``k`` photos ``variant`` predicts worst: the largest mean |mapped − MOS| over the
    splits that tested them (predictions mapped per split, :func:`mapped`).

    Args:
        min_splits: only photos tested in at least this many splits (a photo tested once has
            a noisier mean error than one tested in five).
    Returns:
        ``image, mos, mapped, splits, error`` (mean absolute), ``bias`` (mean signed
        error: > 0 the photo is rated too good), worst first (ties: image name).
    """
    g = mapped(frame[frame["variant"] == variant])
    if g.empty:
        return pd.DataFrame(columns=["image", "mos", "mapped", "splits", "error", "bias"])
    out = g.assign(abs_error=g["error"].abs()).groupby("image").agg(
        mos=("mos", "mean"), mapped=("mapped", "mean"), splits=("seed", "nunique"),
        error=("abs_error", "mean"), bias=("error", "mean")).reset_index()
    out = out[out["splits"] >= min_splits]
    return out.sort_values(["error", "image"], ascending=[False, True]).head(k) \
        .reset_index(drop=True)


def worst_table(frame: pd.DataFrame, variant: str, k: int = 10, min_splits: int = 1) -> Table:
    """:func:`worst_frame` as the book's table (a note when there are no predictions)."""
    w = worst_frame(frame, variant, k, min_splits)
    if w.empty:
        return note(NOT_MEASURED)
    shown = pd.DataFrame({"photo": w["image"], "MOS": w["mos"],
                          "predicted (mapped)": w["mapped"], "splits in test": w["splits"],
                          "mean |error|": w["error"], "mean error": w["bias"]})
    return html_table(shown, {"MOS": ".1f", "predicted (mapped)": ".1f", "splits in test": "d",
                              "mean |error|": ".1f", "mean error": "+.1f"},
                      notes=f"{variant}: predictions mapped to the MOS scale by each split's "
                            "4-parameter logistic fit (as for PLCC), then averaged over the "
                            "splits that tested the photo; mean error > 0: rated too good"
                            + (f"; photos tested in {min_splits} splits or more"
                               if min_splits > 1 else ""))


@styled
def thumbnail_strip(worst: pd.DataFrame, path: str | Path, root: str | Path | None = "auto",
                    dataset: str = "livec") -> Path:
    """Small thumbnails of the photos of :func:`worst_frame`, each with its MOS and mapped
    prediction, when the data set's images are in this checkout; else a note, drawn.

    Args:
        worst: :func:`worst_frame`'s rows; root: the data set's folder, or ``"auto"``
            (:func:`qfm.paths.find_dataset`), or None (no photos).
    Returns:
        ``path``.
    """
    if root is not None:
        root = paths.find_dataset(dataset, str(root)) if str(root) == "auto" else Path(root)
    files = [Path(root) / p for p in worst["image"]] if root is not None else []
    if worst.empty or not files or not all(f.is_file() for f in files):
        fig, ax = plt.subplots(figsize=(MAX_WIDTH, 0.8))
        ax.text(0.5, 0.5, "the photos are not in this checkout" if not worst.empty
                else NOT_MEASURED, ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    from PIL import Image

    cols = min(5, len(files))
    rows = -(-len(files) // cols)
    side = MAX_WIDTH / cols
    fig, axes = plt.subplots(rows, cols, figsize=(MAX_WIDTH, (side + 0.45) * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, f, r in zip(axes.flat, files, worst.itertuples()):
        with Image.open(f) as im:
            im = im.convert("RGB")
            im.thumbnail((160, 160))
            ax.imshow(np.asarray(im))
        ax.set_title(f"{Path(r.image).stem}\nMOS {r.mos:.0f}, pred. {r.mapped:.0f}")
    return _save(fig, path)
