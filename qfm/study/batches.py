"""Batches of cached inputs for the study's runs: cached tokens (B, 1+g², C), whose grid
mirrors left-right as augmentation, or a trainable tail's packed rows, which mirror their own
way (:meth:`qfm.models.tail.CachedTail.flip`); and the scores of a head for them."""

from __future__ import annotations

import math

import numpy as np
import torch

from qfm.core.inference import predict


def flip_grid(tokens: torch.Tensor) -> torch.Tensor:
    """Mirror the token grid left-right (the CLS/mean token stays): (B, 1+g², C)."""
    b, n, c = tokens.shape
    g = int(round(math.sqrt(n - 1)))
    grid = tokens[:, 1:].view(b, g, g, c).flip(2).reshape(b, g * g, c)
    return torch.cat([tokens[:, :1], grid], 1)


def train_batches(tokens, mos, index, batch_size, gen, flip=flip_grid):
    """Shuffled training batches of cached inputs, each mirrored with probability 1/2."""
    order = torch.randperm(len(mos), generator=gen)
    flips = torch.rand(len(mos), generator=gen) < 0.5
    for i in range(len(mos) // batch_size):
        idx = order[i * batch_size:(i + 1) * batch_size]
        x = tokens[idx].float()
        f = flips[idx]
        x[f] = flip(x[f])
        yield {"image": x, "mos": mos[idx], "index": index[idx]}


def eval_batches(tokens, mos, batch_size=256, flip=flip_grid):
    for i in range(0, len(mos), batch_size):
        x = tokens[i:i + batch_size].float()
        yield {"image": torch.stack([x, flip(x)], 1), "mos": mos[i:i + batch_size]}


def flip_of(model):
    """How a model's cached inputs mirror: the token grid, or a trainable tail's packed rows."""
    return getattr(model.backbone, "flip", flip_grid)


def score(model, tokens: torch.Tensor) -> np.ndarray:
    """Predictions of a head-only model (or one with a trainable tail) for cached inputs
    (original + mirrored)."""
    pred, _ = predict(model, eval_batches(tokens, torch.zeros(len(tokens)), flip=flip_of(model)),
                      torch.device("cpu"), progress=False)
    return pred
