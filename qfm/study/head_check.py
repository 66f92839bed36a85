"""The default model's head on its own content split: predicted vs true quality, and what
its embedding does to the semantic-noise observation.

The study stores one head's weights — the ``full`` run of group ``main`` with the best
validation SRCC (``models/heads/main.safetensors``, the head of ``qfm predict``'s default
model) — and no per-image predictions. Re-scoring that head on the cached upstream tokens of
its own split's test part and the held-out photos costs one head forward pass and needs no
change to the study; the other runs' predictions are not stored, so this is the only
predicted-vs-true view the book can afford.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from qfm.config import ModelConfig, from_dict
from qfm.core.checkpoint import load_tensors
from qfm.core.metrics import correlations, noise_share, pair_arrays
from qfm.models import build_model
from qfm.study.batches import score
from qfm.study.run import load_run_data
from qfm.study.tokens import FeatureBank


def head_predictions(head: str | Path, features: str | Path, world: str | Path) -> dict:
    """Score the stored head on its split's test part and on the held-out photos.

    Args:
        head: ``models/heads/main.safetensors`` (sidecar: config, variant, seed).
        features: the cached tokens (``data/features/<name>.safetensors``).
        world: the world folder.
    Returns:
        ``{"variant", "seed", "pred": DataFrame part, image, true, pred (0–100),
        "srcc": {part: SRCC}, "pairs": {source: (dist, gap, share, cutoff)}}`` — the last
        for the test part's raw upstream tokens and the head's embedding.
    """
    tensors, meta = load_tensors(head)
    mcfg = from_dict(ModelConfig, meta["config"]["model"], "model")
    bank = FeatureBank(features)
    model = build_model(mcfg, width=bank.width)
    model.load_state_dict(tensors)
    model.eval()
    data = load_run_data(bank, str(world), int(meta["seed"]), 0.0, smoke=False)
    frames, srcc = [], {}
    for part, label in (("test", "test"), ("heldout", "held-out photos")):
        if part not in data or len(data[part][1]) == 0:
            continue
        tokens, mos, table = data[part]
        pred = score(model, tokens)
        srcc[label] = correlations(pred, mos.numpy(), logistic=False)["srcc"]
        frames.append(pd.DataFrame({"part": label, "image": table["image"].to_numpy(),
                                    "true": 100.0 * mos.numpy(), "pred": 100.0 * pred}))
    tokens, mos, _ = data["test"]
    y = mos.numpy()
    with torch.no_grad():
        emb = model.decoder.embed(model.select(tokens.float())).numpy()
    pairs = {}
    for source, feats in (("raw upstream", tokens.float().mean(1).numpy()),
                          (f"{meta['variant']} head", emb)):
        dist, gap = pair_arrays(feats, y)
        share, cut = noise_share(dist, gap)
        pairs[source] = (dist, gap, share, cut)
    return {"variant": meta["variant"], "seed": int(meta["seed"]),
            "pred": pd.concat(frames, ignore_index=True), "srcc": srcc, "pairs": pairs,
            "base_rate": float(np.mean(pairs["raw upstream"][1] > 0.2))}
