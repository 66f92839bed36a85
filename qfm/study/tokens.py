"""Cached upstream tokens of the embedded default: the frozen backbone runs once per image.

The study (:mod:`qfm.study.runner`) trains gate + decoder on a **frozen** upstream: 10 paired seeds
of a dozen variants on 2 CPU cores fit in minutes only if the backbone's forward pass is not
repeated per run and epoch. Each image (labelled, unlabelled, and the pristine references) is
fed once at the world's size; its tokens (B, 1+N, C) are stored in float16 with the list of
images they belong to. The same backbone, unchanged, scores new images in ``qfm predict``
(:func:`qfm.study.runner.export_model` joins it to a trained head), so cached and live tokens agree
(tested).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from qfm import paths
from qfm.config import ModelConfig, to_dict
from qfm.core.checkpoint import CheckpointError, load_tensors, save_tensors
from qfm.core.weights import pretrained_backbone
from qfm.data.transforms import load_rgb, to_tensor
from qfm.files import log_seconds, sha256
from qfm.models import Backbone, input_norm


def world_images(world: str | Path | None = None) -> pd.DataFrame:
    """Every image of a world with its kind: ``image, content, kind`` (labelled|unlabelled)."""
    root = Path(world) if world else paths.world_dir()
    table = pd.read_csv(root / "table.csv", dtype={"content": str})
    extra = pd.read_csv(root / "unlabelled.csv", dtype={"content": str})
    return pd.concat([table[["image", "content"]].assign(kind="labelled"),
                      extra[["image", "content"]].assign(kind="unlabelled")],
                     ignore_index=True)


def build_backbone(cfg: ModelConfig, upstream: str | Path | None = None) -> Backbone:
    """The frozen upstream backbone in eval mode (no gradients)."""
    bb = Backbone(pretrained_backbone(cfg, upstream), cfg.tokens, cfg.grid, input_norm(cfg))
    bb.eval().requires_grad_(False)
    return bb


@torch.no_grad()
def extract(cfg: ModelConfig, out: str | Path, world: str | Path | None = None,
            upstream: str | Path | None = None, batch_size: int = 64, max_images: int = 0,
            progress: bool = True) -> dict:
    """Tokens of every world image under the frozen backbone of ``cfg``, saved as safetensors.

    Args:
        cfg: the backbone (``backbone``, ``weights``, ``tokens``, ``grid``).
        out: the ``.safetensors`` file (tensor ``tokens`` (N, 1+n, C) float16; sidecar: the
            image list, the model config, the weights' sha256).
        world: the world folder (default ``data/world``).
        upstream: checkpoint for ``weights: upstream`` (the toy upstream).
        batch_size: images per forward pass.
        max_images: only the first n images (smoke runs; 0 = all).
    Returns:
        The sidecar's metadata, and ``seconds`` (the wall time: logged, not in the file).
    """
    root = Path(world) if world else paths.world_dir()
    images = world_images(root)
    if max_images:
        images = images.iloc[:max_images]
    if cfg.weights == "upstream" and upstream is None:
        upstream = paths.upstream_checkpoint()
    bb = build_backbone(cfg, upstream)
    chunks = []
    t0 = time.perf_counter()
    names = images["image"].tolist()
    for i in tqdm(range(0, len(names), batch_size), desc="features", mininterval=5.0,
                  disable=not progress):
        x = torch.stack([to_tensor(load_rgb(root / p)) for p in names[i:i + batch_size]])
        chunks.append(bb(x).half())
    tokens = torch.cat(chunks)
    src = cfg.weights
    w = paths.imagenet_weights(src) if src not in ("none", "upstream", "") else upstream
    meta = {"kind": "features", "model": to_dict(cfg), "images": names,
            "shape": list(tokens.shape),
            "weights_sha256": sha256(w) if w and Path(w).is_file() else None}
    save_tensors({"tokens": tokens.contiguous()}, out, meta)  # no wall time: DVC hashes it
    seconds = log_seconds("features", time.perf_counter() - t0, out=Path(out).name)
    return {**{k: v for k, v in meta.items() if k != "images"}, "seconds": seconds}


class FeatureBank:
    """Cached tokens addressed by image path.

    Args:
        path: a file written by :func:`extract`.
    """

    def __init__(self, path: str | Path):
        tensors, meta = load_tensors(path)
        self.tokens = tensors["tokens"]  # (N, 1+n, C) float16
        self.index = {p: i for i, p in enumerate(meta["images"])}
        self.meta = meta

    @property
    def width(self) -> int:
        return int(self.tokens.shape[-1])

    def rows(self, images) -> np.ndarray:
        """Row indices of ``images``; a one-line error names the first one not cached."""
        try:
            return np.fromiter((self.index[p] for p in images), dtype=np.int64)
        except KeyError as err:
            raise CheckpointError(f"features: image {err.args[0]!r} is not in the cache "
                                  f"(rerun the features stage)") from None
