"""A trainable upstream tail on cached inputs: the study's fine-tuning regime.

The frozen study caches the upstream's tokens once. To ask whether its answer survives a
trainable upstream, the backbone's last stage(s) train while the stages before them stay
frozen: what enters the tail is cached once (not the images), and every run feeds it through
its own copy of the last stage(s), initialised from the ImageNet weights.

One image's cached input is one packed row (float16): the frozen stages' multiscale token
statistics (mean and sd per grid cell, exactly :class:`~qfm.models.backbone.Backbone`'s) and the
feature map entering the tail (C, s, s). :class:`CachedTail` unpacks it, runs the tail, adds
the tail's own cell statistics and returns the same tokens (B, 1+g², width) the frozen study
uses: at initialisation they equal the frozen tokens (tested), so the head, gate and QFM are
unchanged and only the regime differs.

The tail's batch-norm statistics stay ImageNet's (eval mode: small batches of one data set
would re-estimate them badly); its weights and affine parameters train at ``LR_SCALE`` × the
head's learning rate — a common fine-tuning choice, the same for every variant, not tuned.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from qfm.models.backbone import Backbone, ModelError, cell_stats

LR_SCALE = 0.1  # the tail's learning rate ÷ the head's (every variant alike)


def levels(net: nn.Module) -> list[int]:
    """The block index of each multiscale level (``feature_info`` modules ``blocks.k``)."""
    out = []
    for info in net.feature_info:
        name = str(info["module"])
        if not name.startswith("blocks.") or not all(hasattr(net, a) for a in
                                                      ("conv_stem", "bn1", "blocks")):
            raise ModelError(f"finetune: backbone level {name!r}: a trainable tail needs an "
                             f"EfficientNet-style timm model (conv_stem, bn1, blocks)")
        out.append(int(name.split(".")[1]))
    return out


def layout(backbone: Backbone, stages: int) -> dict:
    """Where the tail starts and what a packed row holds (for the cache's sidecar)."""
    net = backbone.net
    if backbone.tokens != "multiscale":
        raise ModelError("finetune: model.tokens must be multiscale")
    if not 1 <= stages < len(net.blocks):
        raise ModelError(f"finetune.stages: expected 1..{len(net.blocks) - 1}, got {stages}")
    split = len(net.blocks) - stages
    lv = levels(net)
    chans = [int(i["num_chs"]) for i in net.feature_info]
    return {"split": split, "grid": backbone.grid, "stages": stages,
            "frozen_width": 2 * sum(c for c, k in zip(chans, lv) if k < split),
            "tail_levels": [k - split for k in lv if k >= split], "width": backbone.width}


@torch.no_grad()
def packed(backbone: Backbone, x: torch.Tensor, info: dict) -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] → packed rows (B, g²·frozen_width + C·s·s): the frozen
    stages run once; their cell statistics and the map entering the tail are kept. The first
    call records the map's shape in ``info["map"]``; later calls must match it."""
    net, g = backbone.net, info["grid"]
    lv = set(levels(net))
    m = net.bn1(net.conv_stem(x * backbone.in_scale + backbone.in_shift))
    cells = []
    for k, block in enumerate(net.blocks[:info["split"]]):
        m = block(m)
        if k in lv:
            cells += cell_stats(m, g)
    frozen = torch.cat(cells, 1).flatten(2).transpose(1, 2)  # (B, g², frozen_width)
    if info.setdefault("map", list(m.shape[1:])) != list(m.shape[1:]):
        raise ModelError(f"finetune: a tail input of shape {tuple(m.shape[1:])} among rows of "
                         f"{tuple(info['map'])}: every image of one cache needs the same side")
    return torch.cat([frozen.flatten(1), m.float().flatten(1)], 1)


class CachedTail(nn.Module):
    """The upstream's last stage(s), trainable, over packed rows → tokens (B, 1+g², width).

    Args:
        blocks: a copy of the backbone's last blocks (ImageNet weights).
        info: :func:`layout`'s dict plus ``map`` = the entering map's shape (C, s, s).
    """

    multi_ndim = 3  # (B, K, D): K views of each image (IQAModel averages their scores)

    def __init__(self, blocks: nn.Sequential, info: dict):
        super().__init__()
        self.blocks = blocks
        self.grid, self.levels = int(info["grid"]), set(info["tail_levels"])
        self.frozen = (self.grid ** 2, int(info["frozen_width"]))
        self.map = tuple(int(v) for v in info["map"])

    def unpack(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.frozen[0] * self.frozen[1]
        return x[:, :n].reshape(-1, *self.frozen), x[:, n:].reshape(-1, *self.map)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frozen, m = self.unpack(x.float())
        cells = []
        for k, block in enumerate(self.blocks):
            m = block(m)
            if k in self.levels:
                cells += cell_stats(m, self.grid)
        tokens = torch.cat([frozen, torch.cat(cells, 1).flatten(2).transpose(1, 2)], 2)
        return torch.cat([tokens.mean(1, keepdim=True), tokens], 1)

    def flip(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror packed rows left-right: the frozen cells' grid and the entering map."""
        frozen, m = self.unpack(x)
        g = self.grid
        frozen = frozen.view(-1, g, g, self.frozen[1]).flip(2)
        return torch.cat([frozen.flatten(1), m.flip(3).flatten(1)], 1).to(x.dtype)

    def train(self, mode: bool = True) -> "CachedTail":
        super().train(mode)
        self.blocks.eval()  # batch-norm statistics stay ImageNet's; no drop-path
        return self


def make_tail(backbone_net: nn.Module, info: dict) -> CachedTail:
    """A fresh trainable copy of ``backbone_net``'s last blocks."""
    blocks = copy.deepcopy(backbone_net.blocks[info["split"]:])
    blocks.requires_grad_(True)
    return CachedTail(blocks, info)


def scaled_groups(model: nn.Module, groups: list[dict], scale: float = LR_SCALE,
                  prefix: str = "backbone.") -> list[dict]:
    """Split optimizer groups so the tail's parameters carry ``lr_scale`` = ``scale``."""
    tail = {id(p) for n, p in model.named_parameters() if n.startswith(prefix)}
    out = []
    for g in groups:
        for part, s in (([p for p in g["params"] if id(p) not in tail], 1.0),
                        ([p for p in g["params"] if id(p) in tail], scale)):
            if part:
                out.append({**g, "params": part, "lr_scale": s})
    return out


def attach(model: nn.Module, info: dict, backbone_net: nn.Module) -> nn.Module:
    """Give a head-only model (``build_model(width=...)``) its own trainable tail, a copy of
    ``backbone_net``'s last blocks (the caller loads its ImageNet weights, and builds it under
    ``torch.random.fork_rng`` so pairing by seed holds: :func:`qfm.core.weights.tail_source`)."""
    model.backbone = make_tail(backbone_net, info)
    return model
