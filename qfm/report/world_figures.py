"""Figures of the embedded default itself (the book's Method page): one content with its
distortions and pseudo-MOS labels, the semantic-noise knob at work, and pairs that the
quality-aware matching picks.

Reads the world folder (``data/world``) and the cached upstream tokens
(``data/features/<name>.safetensors``); trains nothing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch
import torch.nn.functional as F
from PIL import Image  # noqa: E402

from qfm.data.splits import read_split  # noqa: E402
from qfm.data.world import spurious_train  # noqa: E402
from qfm.files import read_json  # noqa: E402
from qfm.losses.qfm import match_pairs, pool
from qfm.report.figures import DPI, MAX_WIDTH, MIN_FONT, styled  # noqa: E402  (text sizes)
from qfm.study.tokens import FeatureBank


def _table(world: str | Path) -> pd.DataFrame:
    return pd.read_csv(Path(world) / "table.csv", dtype={"content": str})


def _photo(content: pd.Series) -> pd.Series:
    return content.str.rsplit("_", n=1).str[0]


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def split_parts(world: str | Path, split: int, spurious: float = 0.0) -> dict:
    """The parts of one content split, its training part as a study run sees it (the
    ``spurious`` knob keeps half of each photo's training images)."""
    root = Path(world)
    parts = read_split(root / "splits" / f"split_{split}.csv", _table(root))
    parts["train"] = spurious_train(parts["train"], spurious, split).reset_index(drop=True)
    return parts


@styled
def example_figure(world: str | Path, content: str, path: str | Path) -> Path:
    """One content: its pristine tile and every distortion at every level, each labelled
    with its pseudo-MOS (0–100, higher = better)."""
    root = Path(world)
    t = _table(root)
    rows = t[t["content"] == content]
    if rows.empty:
        raise ValueError(f"figures.example_content: no content {content!r} in {root.name}")
    kinds = list(dict.fromkeys(rows["distortion"]))
    levels = sorted(rows["level"].unique())
    fig, axes = plt.subplots(len(kinds), len(levels) + 1,
                             figsize=(min(MAX_WIDTH, 1.1 * (len(levels) + 1)),
                                      1.3 * len(kinds)),
                             squeeze=False)
    ref = np.asarray(Image.open(root / "images" / f"{content}_ref.png"))
    for i, kind in enumerate(kinds):
        axes[i][0].imshow(ref)
        axes[i][0].set_title("pristine" if i == 0 else "", fontsize=MIN_FONT)
        axes[i][0].set_ylabel(kind.replace("_", " "), fontsize=MIN_FONT)
        for j, lev in enumerate(levels, 1):
            r = rows[(rows["distortion"] == kind) & (rows["level"] == lev)].iloc[0]
            axes[i][j].imshow(np.asarray(Image.open(root / r["image"])))
            axes[i][j].set_xlabel(f"{r['raw']:.1f}", fontsize=MIN_FONT, labelpad=2)
            if i == 0:
                axes[i][j].set_title(f"level {lev}", fontsize=MIN_FONT)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"content {content}: pseudo-MOS under each image")
    fig.tight_layout()
    return _save(fig, path)


@styled
def spurious_figure(world: str | Path, split: int, strengths, path: str | Path) -> Path:
    """Mean pseudo-MOS per photo in the training part at each spurious strength (oranges,
    darker = stronger) and in validation + test (blue, never biased): as the strength rises a
    photo's training images become all mild or all severe, so the photo predicts quality in
    training only."""
    base = split_parts(world, split, 0.0)
    held = pd.concat([base["val"], base["test"]])
    full_train = read_split(Path(world) / "splits" / f"split_{split}.csv",
                            _table(world))["train"]
    photos = sorted(_photo(held["content"]).unique())
    parts = [(f"training part, strength {s:g}",
              spurious_train(full_train, float(s), split),
              plt.cm.Oranges(0.45 + 0.5 * i / max(len(strengths) - 1, 1)))
             for i, s in enumerate(strengths)] + [("validation + test", held, "tab:blue")]
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 3.8))
    x = np.arange(len(photos))
    width = 0.8 / len(parts)
    for k, (name, part, colour) in enumerate(parts):
        g = part.groupby(_photo(part["content"]))["raw"]
        m, sd = g.mean().reindex(photos), g.std().reindex(photos)
        ax.errorbar(x + (k - (len(parts) - 1) / 2) * width, m, yerr=sd, fmt="o", ms=4,
                    capsize=2, color=colour, label=name)
    ax.set_xticks(x, [p.replace("_", " ") for p in photos], rotation=25, ha="right")
    ax.set_ylabel("pseudo-MOS per photo\n(mean ± sd)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return _save(fig, path)


def matched_pairs(world: str | Path, features: str | Path, split: int, tau: float,
                  batch: int = 32, seed: int = 0) -> pd.DataFrame:
    """Pairs :func:`qfm.losses.qfm.match_pairs` picks in one random batch of a split's
    training part, from the pooled cached upstream tokens.

    Returns:
        One row per anchor with a partner: ``distance`` (cosine, pooled upstream tokens),
        ``anchor_image, anchor_mos (0–100), anchor_content, anchor_distortion,
        anchor_level`` and the same for the partner; the batch size and how many anchors
        had a partner (columns ``batch``, ``matched``).
    """
    train = split_parts(world, split, 0.0)["train"]
    b = train.sample(min(batch, len(train)), random_state=seed).reset_index(drop=True)
    bank = FeatureBank(features)
    tokens = bank.tokens[bank.rows(b["image"])].float()  # (B, 1+N, C)
    y = torch.tensor(b["mos"].to_numpy(), dtype=torch.float32)
    feats = pool(tokens)
    partner = match_pairs(y, feats, tau)
    f = F.normalize(feats, dim=1)
    out = []
    for i, j in enumerate(partner.tolist()):
        if j >= 0:
            out.append({"distance": float(1 - f[i] @ f[j]),
                        **{f"{side}_{k}": b.at[m, c] for side, m in (("anchor", i),
                                                                       ("partner", j))
                           for k, c in (("image", "image"), ("mos", "raw"),
                                        ("content", "content"), ("distortion", "distortion"),
                                        ("level", "level"))}})
    df = pd.DataFrame(out)
    return df.assign(batch=len(b), matched=len(df))


@styled
def pairs_figure(world: str | Path, pairs: pd.DataFrame, path: str | Path, n: int = 5
                 ) -> Path:
    """One matched pair per row: the anchor, the partner the matching picked (similar
    pseudo-MOS, the most different upstream features of the batch), and what they are.
    Shows ``n`` pairs of distinct anchor photos where the batch allows."""
    root = Path(world)
    p = pairs.assign(photo=_photo(pairs["anchor_content"]))
    pick = p.drop_duplicates("photo").head(n)
    if len(pick) < n:
        pick = pd.concat([pick, p.drop(pick.index).head(n - len(pick))])
    fig, axes = plt.subplots(len(pick), 3, figsize=(MAX_WIDTH, 1.35 * len(pick) + 0.3),
                             squeeze=False, gridspec_kw={"width_ratios": [1, 1, 2.9]})
    for j, r in enumerate(pick.itertuples()):
        lines = [f"cosine distance {r.distance:.2f}"]
        for i, side in enumerate(("anchor", "partner")):
            ax = axes[j][i]
            ax.imshow(np.asarray(Image.open(root / getattr(r, f"{side}_image"))))
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_title(side)
            lines += [f"{side}: {getattr(r, f'{side}_content')}",
                      f"      {getattr(r, f'{side}_distortion').replace('_', ' ')} "
                      f"{getattr(r, f'{side}_level')}, "
                      f"pseudo-MOS {getattr(r, f'{side}_mos'):.1f}"]
        axes[j][2].axis("off")
        axes[j][2].text(0.03, 0.5, "\n".join(lines), va="center", ha="left",
                        transform=axes[j][2].transAxes, linespacing=1.3)
    fig.tight_layout()
    return _save(fig, path)


def world_facts(world: str | Path) -> dict:
    """The world's size, as ``world.json`` records it (for the prose)."""
    w = read_json(Path(world) / "world.json")
    cfg = w["config"]
    inside = [p for p in cfg["photos"] if p not in cfg["heldout_photos"]]
    return {"photos": len(cfg["photos"]), "heldout_photos": ", ".join(cfg["heldout_photos"]),
            "inside_photos": len(inside), "contents": int(w["contents"]),
            "images": int(w["images"]), "unlabelled": int(w["unlabelled"]),
            "distortions": len(cfg["distortions"]), "levels": int(cfg["levels"]),
            "size": int(cfg["size"]), "splits": int(w["splits"]),
            "split": " / ".join(f"{x:.0%}" for x in cfg["split"])}
