"""Figures (headless: matplotlib's Agg backend). Each function draws one figure to a file."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def semantic_noise_figure(dist: np.ndarray, gap: np.ndarray, cutoff: float, threshold: float,
                          share: float, path: str | Path, title: str = "") -> Path:
    """Hexbin of pairwise cosine feature distance vs |Δ quality| (the paper's observation).

    Args:
        dist, gap: per pair (see :func:`qfm.analysis.pair_arrays`).
        cutoff: distance of the closest-pairs cut; threshold: the "very different" gap.
        share: share of closest pairs above the threshold (shown in the legend).
        path: output image (PNG).
    Returns:
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.6), dpi=120)
    hb = ax.hexbin(dist, gap, gridsize=50, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=ax, label="pairs (log)")
    ax.axvline(cutoff, color="tab:orange", lw=1.2, ls="--",
               label=f"10% closest (d ≤ {cutoff:.3g})")
    ax.axhline(threshold, color="tab:red", lw=1.2, ls=":",
               label=f"|Δq| > {threshold:g}: {share:.1%} of closest")
    ax.set_xlabel("cosine feature distance")
    ax.set_ylabel("|Δ normalised quality|")
    ax.set_title(title, fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7,
              frameon=False)  # below the axes: the data fill the plot
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
