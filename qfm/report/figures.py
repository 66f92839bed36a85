"""Figures of the study's book pages (headless: matplotlib's Agg backend). Each function draws
one figure from frames that :mod:`qfm.report.study` builds and saves it as a PNG.

Comparisons are drawn as points with intervals — a line through two points would suggest a
trend that two variants cannot show. Colours carry the verdict: green better, grey no
difference detected, red worse.

Text size: a PNG of ``w`` inches saved at :data:`DPI` and shown ``W`` CSS px wide shows a font
of ``s`` pt at ``s · (DPI/96) · W / (w · DPI)`` pt. The book's column is 660 px wide at a
1280-px window, so figures are at most :data:`MAX_WIDTH` inches wide and no text is smaller
than :data:`MIN_FONT` pt: every label reads at 9 pt or more (``tests/report/test_figures.py``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

VERDICT_COLOURS = {"better": "tab:green", "no difference detected": "0.45",
                   "worse": "tab:red"}
# the verdict written as text: darker than the marks, so a word reads as well as a diamond
VERDICT_TEXT = {"better": "#1a6e1a", "no difference detected": "0.25", "worse": "#a01010"}
DPI = 130
MAX_WIDTH = 6.8  # inches: 6.8 · DPI px shown at the column's 660 px keeps text at its size
MIN_FONT = 9.5  # pt
STYLE = {"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9.5,
         "ytick.labelsize": 9.5, "legend.fontsize": 9.5, "figure.titlesize": 10.5}


def styled(draw):
    """Draw under :data:`STYLE` (the book's text sizes), whatever the caller's rcParams."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper
VARIANT_COLOURS = {"baseline": "tab:blue", "gate": "tab:cyan", "gate_qfm": "tab:orange",
                   "full": "tab:red", "upstream": "0.5"}


def save_figure(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _colour(variant: str, i: int) -> str:
    return VARIANT_COLOURS.get(variant, f"C{i % 10}")


@styled
def deltas_figure(paired: pd.DataFrame, cmp: pd.DataFrame, path: str | Path,
                  label: str = "test SRCC") -> Path:
    """Per-seed paired differences against the baseline, with the mean and its 95 % CI.

    Args:
        paired: ``variant, seed, delta`` (:func:`qfm.report.study.paired_frame`).
        cmp: ``variant, delta, ci_lo, ci_hi, verdict`` (:func:`qfm.report.study.comparison`).
        label: the metric's name on the axis.
    """
    order = list(cmp["variant"])
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 0.5 * len(order) + 1.5))
    rng = np.random.default_rng(0)
    for i, r in enumerate(cmp.itertuples()):
        d = paired.loc[paired["variant"] == r.variant, "delta"].to_numpy()
        ax.scatter(d, i + rng.uniform(-0.17, 0.17, len(d)), s=14, color="0.6", zorder=2,
                   label="one seed" if i == 0 else None)
        c = VERDICT_COLOURS.get(r.verdict, "k")
        if not np.isnan(r.ci_lo):
            ax.plot([r.ci_lo, r.ci_hi], [i, i], color=c, lw=3, zorder=3, solid_capstyle="butt")
        ax.scatter([r.delta], [i], marker="D", s=46, color=c, zorder=4, edgecolor="k", lw=0.6)
        ax.annotate(r.verdict.replace("no difference detected", "no difference\ndetected"),
                    (1.02, i), xycoords=("axes fraction", "data"), va="center",
                    fontsize=MIN_FONT, color=VERDICT_TEXT.get(r.verdict, "k"),
                    fontweight="bold", linespacing=1.0)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.set_xlabel(f"paired Δ {label} vs baseline\n(same seed = same content split)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, ncol=2,
              handles=[*ax.get_legend_handles_labels()[0],
                       plt.Line2D([], [], color="0.3", marker="D", lw=3,
                                  label="mean and 95 % bootstrap-t CI (colour = verdict)")])
    return save_figure(fig, path)


@styled
def sweep_figure(sweep: pd.DataFrame, base: pd.DataFrame, path: str | Path) -> Path:
    """Left: paired Δ test SRCC vs spurious strength per variant (95 % CI); right: the
    baseline's own test SRCC vs strength (mean, 95 % CI)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.4))
    variants = list(dict.fromkeys(sweep["variant"]))
    width = 0.06
    for i, v in enumerate(variants):
        g = sweep[sweep["variant"] == v]
        x = g["spurious"].to_numpy() + (i - (len(variants) - 1) / 2) * width
        err = np.vstack([g["delta"] - g["ci_lo"], g["ci_hi"] - g["delta"]])
        a.errorbar(x, g["delta"], yerr=np.nan_to_num(err), fmt="o", capsize=3,
                   color=_colour(v, i), label=v)
    a.axhline(0, color="k", lw=0.8)
    a.set_xlabel("spurious strength\n(training part only)")
    a.set_ylabel("paired Δ test SRCC vs baseline")
    a.set_xticks(sorted(sweep["spurious"].unique()))
    a.legend(frameon=False)
    a.grid(alpha=0.3)
    err = np.vstack([base["mean"] - base["ci_lo"], base["ci_hi"] - base["mean"]])
    b.errorbar(base["spurious"], base["mean"], yerr=np.nan_to_num(err), fmt="s", capsize=3,
               color=_colour("baseline", 0))
    b.set_xlabel("spurious strength\n(training part only)")
    b.set_ylabel("baseline test SRCC")
    b.set_xticks(sorted(base["spurious"].unique()))
    b.grid(alpha=0.3)
    a.set_title("variants against the baseline")
    b.set_title("the baseline itself")
    return save_figure(fig, path)


@styled
def curves_figure(rows: pd.DataFrame, variants, path: str | Path) -> Path:
    """Validation SRCC per epoch: mean over seeds, band = ± sd."""
    fig, ax = plt.subplots(figsize=(6.2, 3.6))
    for i, v in enumerate(variants):
        curves = [c for c in rows.loc[rows["variant"] == v, "val_curve"] if len(c)]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        arr = np.array([c[:n] for c in curves])
        x = np.arange(1, n + 1)
        m, s = arr.mean(0), arr.std(0, ddof=1) if len(arr) > 1 else np.zeros(n)
        ax.plot(x, m, color=_colour(v, i), label=f"{v} ({len(arr)} seeds)", marker=".")
        ax.fill_between(x, m - s, m + s, color=_colour(v, i), alpha=0.18, lw=0)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation SRCC")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


@styled
def ladder_figure(frame: pd.DataFrame, rows: pd.DataFrame, path: str | Path) -> Path:
    """The ablation ladder. Left: each rung's seeds (grey) and mean with its 95 % CI. Right:
    each rung minus the rung below, paired by seed (mean, 95 % CI; colour = verdict). Rungs
    are separate models: no line joins them."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(MAX_WIDTH, 3.6),
                                 gridspec_kw={"width_ratios": [1.15, 1]})
    rng = np.random.default_rng(0)
    for i, r in enumerate(frame.itertuples()):
        vals = rows.loc[rows["variant"] == r.variant, "test_srcc"].to_numpy()
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=12, color="0.65",
                   zorder=2, label="one seed" if i == 0 else None)
        ax.errorbar([i], [r.mean], yerr=[[r.mean - r.ci_lo], [r.ci_hi - r.mean]]
                    if not np.isnan(r.ci_lo) else None, fmt="D", color=_colour(r.variant, i),
                    capsize=4, zorder=3, markeredgecolor="k")
    ax.set_xticks(range(len(frame)), frame["variant"], rotation=20, ha="right")
    ax.set_xlim(-0.5, len(frame) - 0.5)
    ax.set_ylabel("test SRCC")
    ax.legend(frameon=False, handles=[
        *ax.get_legend_handles_labels()[0],
        plt.Line2D([], [], color="0.3", marker="D", markeredgecolor="k",
                   label="mean and 95 % CI")])
    ax.grid(axis="y", alpha=0.3)
    steps = frame.iloc[1:]
    labels = [f"{b}\n− {a}" for a, b in zip(frame["variant"].iloc[:-1], steps["variant"])]
    for i, r in enumerate(steps.itertuples()):
        c = VERDICT_COLOURS.get(r.step_verdict, "k")
        err = [[r.step_delta - r.step_lo], [r.step_hi - r.step_delta]] \
            if not np.isnan(r.step_lo) else None
        bx.errorbar([i], [r.step_delta], yerr=err, fmt="D", color=c, capsize=4,
                    markeredgecolor="k")
    bx.axhline(0, color="k", lw=0.8)
    bx.set_xticks(range(len(steps)), labels)
    bx.set_xlim(-0.5, len(steps) - 0.5)
    bx.set_ylabel("paired Δ test SRCC (step)")
    shown = [v for v in VERDICT_COLOURS if v in set(steps["step_verdict"])]  # only those drawn
    bx.legend(frameon=False, loc="upper right",
              handles=[plt.Line2D([], [], color=VERDICT_COLOURS[v], marker="D",
                                  markeredgecolor="k", label=v) for v in shown])
    bx.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


@styled
def tuning_figure(frame: pd.DataFrame, path: str | Path, ncols: int = 3) -> Path:
    """Validation SRCC of every tuning trial, one panel per tuned key (chosen: filled), in
    rows of ``ncols`` panels so that the figure stays readable in the book's column."""
    steps = list(dict.fromkeys(frame["step"]))
    ncols = min(ncols, len(steps))
    nrows = -(-len(steps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH, 2.5 * nrows + 0.2),
                             sharey=True, squeeze=False)
    for ax, s in zip(axes.flat, steps):
        g = frame[frame["step"] == s].sort_values("value")
        x = np.arange(len(g))
        ax.scatter(x, g["val_srcc"], s=40, facecolor=["tab:orange" if c else "white"
                                                      for c in g["chosen"]],
                   edgecolor="tab:orange", zorder=3)
        ax.set_xticks(x, [f"{v:.3g}" for v in g["value"]], rotation=35 if len(g) > 3 else 0,
                      ha="right" if len(g) > 3 else "center")
        ax.set_xlim(-0.6, len(g) - 0.4)
        variant = str(g["variant"].iloc[0])
        ax.set_title(s if variant in s else f"{s} ({variant})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(steps):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("validation SRCC")
    return save_figure(fig, path)


@styled
def unseen_figure(unseen: dict, path: str | Path) -> Path:
    """Scores of the default model along each distortion ladder of the unseen photo."""
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 3.6))
    for i, (kind, r) in enumerate(unseen["ladders"].items()):
        ax.plot(range(len(r["scores"])), r["scores"], marker="o", color=f"C{i}",
                label=f"{kind.replace('_', ' ')} ({'ordered' if r['ordered'] else 'not ordered'})")
    ax.set_xticks(range(6), ["pristine", "1", "2", "3", "4", "5"])
    ax.set_xlabel("distortion level")
    ax.set_ylabel("predicted quality (pseudo-MOS scale)")
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


@styled
def share_figure(shares: pd.DataFrame, summary: pd.DataFrame, path: str | Path) -> Path:
    """Semantic-noise share per seed (grey) and its mean with a 95 % CI per feature source.

    Args:
        shares: ``source, seed, share`` (:func:`qfm.report.study.share_frame`).
        summary: ``source, mean, ci_lo, ci_hi`` (:func:`qfm.report.study.mean_ci_frame`).
    """
    order = list(summary["source"])
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    rng = np.random.default_rng(0)
    for i, r in enumerate(summary.itertuples()):
        v = shares.loc[shares["source"] == r.source, "share"].to_numpy()
        ax.scatter(i + rng.uniform(-0.1, 0.1, len(v)), v, s=12, color="0.65", zorder=2)
        ax.errorbar([i], [r.mean], yerr=[[r.mean - r.ci_lo], [r.ci_hi - r.mean]]
                    if not np.isnan(r.ci_lo) else None, fmt="D", capsize=4,
                    color=_colour(r.source, i), markeredgecolor="k", zorder=3)
    ax.set_xticks(range(len(order)), ["raw upstream" if s == "upstream" else s
                                      for s in order])
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel("semantic-noise share (test)")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


@styled
def pred_true_figure(pred: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Predicted vs true quality (pseudo-MOS, 0–100), one colour per part."""
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for i, (part, g) in enumerate(pred.groupby("part", sort=False)):
        ax.scatter(g["true"], g["pred"], s=8, alpha=0.55, color=f"C{i}",
                   label=f"{part} ({len(g)} images)")
    lo = float(min(pred["true"].min(), pred["pred"].min()))
    hi = float(max(pred["true"].max(), pred["pred"].max()))
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, ls="--", label="prediction = truth")
    ax.set_xlabel("true quality (pseudo-MOS)")
    ax.set_ylabel("predicted quality")
    ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
