"""Upstream semantic pre-training: teach the backbone to tell contents apart.

The miniature of ImageNet pre-training on the embedded default: pristine crops of the shipped
photos, labelled by photo × quadrant (``qfm.data.world.make_upstream``), a linear classifier on
the backbone's CLS token, AdamW with cosine decay. Only the backbone is kept, so its features
carry *semantics* — the thing QFM-IQM's "semantic noise" is about.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qfm import paths
from qfm.config import ModelConfig, UpstreamConfig, to_dict
from qfm.core.checkpoint import save_tensors
from qfm.core.engine import param_groups, seed_everything
from qfm.core.inference import resolve_device
from qfm.files import log_seconds
from qfm.models import Backbone, create_backbone


def load_upstream_set(path: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) float in [0, 1] and labels (N,) from ``upstream.npz``."""
    path = Path(path) if path else paths.world_upstream_set()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: upstream images missing (run `qfm world` first)")
    with np.load(path) as z:
        images = torch.from_numpy(z["images"]).permute(0, 3, 1, 2).float() / 255.0
        labels = torch.from_numpy(z["labels"])
    return images, labels


def pretrain(model_cfg: ModelConfig, cfg: UpstreamConfig, out: str | Path, seed: int = 0,
             data: str | Path | None = None, steps: int | None = None,
             device: str = "auto", progress: bool = True) -> dict:
    """Pre-train ``model_cfg.backbone`` on the upstream task and save it as safetensors.

    Args:
        model_cfg: backbone name and input size (its ``weights`` is ignored: from scratch).
        cfg: steps, batch size, learning rate.
        out: the ``.safetensors`` file to write (with a JSON sidecar).
        seed: initialisation and sampling seed.
        data: the ``upstream.npz`` file (default: the embedded default's).
        steps: override ``cfg.steps`` (smoke runs).
    Returns:
        Metadata: held-out accuracy, classes; ``seconds`` (the wall time: logged, not in
        the file, which the same inputs write byte for byte).
    """
    seed_everything(seed)
    dev = resolve_device(device)
    images, labels = load_upstream_set(data)
    n_cls = int(labels.max()) + 1
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=g)
    n_hold = max(len(labels) // 10, 1)
    hold, train = order[:n_hold], order[n_hold:]
    spec = ModelConfig(**{**to_dict(model_cfg), "weights": "none"})
    backbone = Backbone(create_backbone(spec)).to(dev)
    clf = torch.nn.Linear(backbone.width, n_cls).to(dev)
    params = param_groups(torch.nn.ModuleDict({"b": backbone, "c": clf}), cfg.weight_decay)
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    steps = cfg.steps if steps is None else steps
    size = model_cfg.img_size
    t0 = time.perf_counter()
    for step in tqdm(range(steps), desc="upstream", mininterval=2.0, disable=not progress):
        for grp in opt.param_groups:
            grp["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        idx = train[torch.randint(len(train), (cfg.batch_size,), generator=g)]
        x = images[idx]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        flip = torch.rand(len(idx), generator=g) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x).to(dev)
        backbone.train()
        loss = F.cross_entropy(clf(backbone(x)[:, 0]), labels[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    backbone.eval()
    with torch.no_grad():
        x = images[hold]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        acc = float((clf(backbone(x.to(dev))[:, 0]).argmax(1).cpu() == labels[hold])
                    .float().mean())
    meta = {"kind": "upstream", "backbone": model_cfg.backbone, "img_size": size,
            "classes": n_cls, "steps": steps, "heldout_accuracy": acc,
            "chance": 1.0 / n_cls, "seed": seed, "upstream": to_dict(cfg), "prefix": ""}
    save_tensors(backbone.net.state_dict(), out, meta)
    return {**meta, "seconds": log_seconds("upstream", time.perf_counter() - t0,
                                           out=Path(out).name)}
