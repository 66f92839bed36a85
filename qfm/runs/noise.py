"""The semantic-noise observation, reproduced as a tool (``qfm analyze``).

For a trained checkpoint or the raw upstream backbone and one part of a split: the pooled
features of every image (one deterministic centre crop), every pair's cosine feature distance
against its gap in normalised quality, a hexbin figure, and the **share of the 10 % closest
pairs whose quality gap exceeds 0.2**. Close features with far-apart quality are what the paper
calls semantic noise; QFM-IQM should lower that share against the baseline.

Features are pooled as in :mod:`qfm.losses.qfm` (mean over tokens). For a checkpoint two sets
are reported: ``upstream`` (F, the backbone's tokens) and ``selected`` (F̃ = g ⊙ F, what the
head reads; equal to F without a gate). The raw upstream backbone only has F.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.utils.data import DataLoader

from qfm.config import RunConfig, from_dict, to_dict
from qfm.core.checkpoint import load_tensors
from qfm.core.inference import load_model, resolve_device
from qfm.core.metrics import noise_share, pair_arrays
from qfm.core.weights import pretrained_backbone
from qfm.data.dataset import IQADataset
from qfm.data.sources import load_parts
from qfm.data.transforms import TestTransform
from qfm.files import sha256, write_json
from qfm.models import Backbone


def observe(feats: dict[str, np.ndarray], quality: np.ndarray, closest: float = 0.1,
            threshold: float = 0.2, figure: str | Path | None = None, title: str = "",
            figure_pairs: int = 200_000) -> dict:
    """The observation on pooled features: per feature set the share of the closest pairs
    with a large quality gap and the cut-off; the pair count and base rate (over all pairs)
    and the hexbin figure of the figure set (``selected`` if present, else ``upstream``).

    Args:
        feats: ``{name: (N, C)}``.
        quality: normalised quality (N,).
        figure: the PNG to draw (None: no figure).
        figure_pairs: at most this many pairs, a seeded sample, are drawn (the shares are
            always over all pairs).
    Returns:
        ``{"share", "cutoff", "pairs", "base_rate", "share_figure"}``.
    """

    key = "selected" if "selected" in feats else "upstream"
    out: dict = {"share": {}, "cutoff": {}}
    for name, f in feats.items():
        dist, gap = pair_arrays(f, quality)
        out["share"][name], out["cutoff"][name] = noise_share(dist, gap, closest, threshold)
        if name == key:
            out["pairs"] = len(dist)
            out["base_rate"] = float(np.count_nonzero(gap > threshold) / max(len(gap), 1))
            if figure is not None:
                pick = slice(None)
                if len(dist) > figure_pairs:
                    pick = np.sort(np.random.default_rng(0).choice(len(dist), figure_pairs,
                                                                   replace=False))
                    title += f" · {figure_pairs:,} of {len(dist):,} pairs shown"
                semantic_noise_figure(dist[pick], gap[pick], out["cutoff"][name], threshold,
                                      out["share"][name], figure, title=title)
        del dist, gap
    out["share_figure"] = key
    return out


@torch.no_grad()
def pooled_features(model, loader, device) -> dict[str, np.ndarray]:
    """Pooled F (and F̃ when ``model`` is an IQAModel) of every image in ``loader``.

    Args:
        model: an :class:`~qfm.models.IQAModel` or a bare :class:`~qfm.models.Backbone`.
        loader: batches with ``image`` (B, 1, 3, H, W) or (B, 3, H, W).
    Returns:
        ``{"upstream": (N, C)}`` plus ``"selected"`` for an IQAModel.
    """
    model.eval()
    out: dict[str, list] = {"upstream": [], "selected": []}
    for batch in loader:
        x = batch["image"].to(device)
        x = x[:, 0] if x.ndim == 5 else x  # the centre crop
        if hasattr(model, "features"):
            tokens = model.features(x)
            out["selected"].append(model.select(tokens).mean(1).float().cpu())
        else:
            tokens = model(x)
        out["upstream"].append(tokens.mean(1).float().cpu())
    return {k: torch.cat(v).numpy() for k, v in out.items() if v}


def _load(cfg: RunConfig, checkpoint, upstream, device):
    if (checkpoint is None) == (upstream is None):
        raise ValueError("analyze: give exactly one of a checkpoint or an upstream backbone")
    if checkpoint is not None:

        model, meta = load_model(checkpoint, str(device))
        where = (meta.get("dataset", cfg.train.dataset), meta.get("split", cfg.train.split))
        return (model, int(meta["config"]["model"]["img_size"]), "checkpoint", Path(checkpoint),
                where)
    _, meta = load_tensors(upstream)
    mcfg = from_dict(type(cfg.model), {**to_dict(cfg.model), "weights": "upstream",
                                       "backbone": meta.get("backbone", cfg.model.backbone),
                                       "img_size": meta.get("img_size", cfg.model.img_size)})
    net = Backbone(pretrained_backbone(mcfg, upstream)).to(device)
    return net.eval(), mcfg.img_size, "upstream", Path(upstream), (cfg.train.dataset,
                                                                   cfg.train.split)


def analyze(cfg: RunConfig, out_dir: str | Path, checkpoint: str | Path | None = None,
            upstream: str | Path | None = None, part: str = "test", closest: float = 0.1,
            threshold: float = 0.2) -> dict:
    """Run the observation and write ``semantic_noise.json`` and ``semantic_noise.png``.

    Args:
        cfg: data set and split for an upstream backbone (``train.dataset``,
            ``train.split``; a checkpoint is analysed on its own run's data set and split, so
            its training images never count as test pairs), device, data root.
        out_dir: output folder.
        checkpoint: a trained model (:func:`qfm.core.checkpoint.load_model`), or
        upstream: the raw upstream backbone (``models/upstream.safetensors``).
        part: train | val | test.
        closest: fraction of the closest pairs examined.
        threshold: quality gap (normalised scale) that counts as "very different".
    Returns:
        The JSON written: shares per feature set, the base rate over all pairs, sizes.
    """
    t = cfg.train
    device = resolve_device(t.device)
    model, size, kind, path, (dataset, split) = _load(cfg, checkpoint, upstream, device)
    root, parts = load_parts(dataset, split, cfg.shared.data_root, t.max_images)
    table = parts[part]
    ds = IQADataset(table, root, TestTransform(size, 1))
    feats = pooled_features(model, DataLoader(ds, batch_size=64, num_workers=t.workers),
                            device)
    quality = table["mos"].to_numpy(float)
    result = {"source": kind, "path": path.name, "sha256": sha256(path), "dataset": dataset,
              "split": split, "part": part, "images": len(table), "closest": closest,
              "threshold": threshold}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure_key = "selected" if "selected" in feats else "upstream"
    result.update(observe(feats, quality, closest, threshold, out / "semantic_noise.png",
                          title=f"{kind} {path.name} · {dataset} {part} ({figure_key} "
                                f"features)"))
    write_json(result, out / "semantic_noise.json")
    return result


def semantic_noise_figure(dist: np.ndarray, gap: np.ndarray, cutoff: float, threshold: float,
                          share: float, path: str | Path, title: str = "") -> Path:
    """Hexbin of pairwise cosine feature distance vs |Δ quality| (the paper's observation).

    Args:
        dist, gap: per pair (see :func:`qfm.core.metrics.pair_arrays`).
        cutoff: distance of the closest-pairs cut; threshold: the "very different" gap.
        share: share of closest pairs above the threshold (shown in the legend).
        path: output image (PNG).
    Returns:
        ``path``.
    """
    matplotlib.use("Agg")

    fig, ax = plt.subplots(figsize=(5.5, 4.6), dpi=120)
    hb = ax.hexbin(dist, gap, gridsize=50, bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(hb, ax=ax, label="pairs (log)")
    ax.axvline(cutoff, color="tab:orange", lw=1.2, ls="--",
               label=f"10% closest (d ≤ {cutoff:.3g})")
    ax.axhline(threshold, color="tab:red", lw=1.2, ls=":",
               label=f"|Δq| > {threshold:g}: {share:.1%} of closest")
    ax.set_xlabel("cosine feature distance")
    ax.set_ylabel("|Δ normalised quality|")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=9,
              frameon=False)  # below the axes: the data fill the plot
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
