"""Quality-stratified batches: most anchors find a partner within τ (QFM-IQM step 2).

A random batch of 32 labels spread over [0, 1] leaves some anchors without any label within
τ = 0.05. This batch sampler groups images of similar quality: labels are cut into bins of
width ``width`` (≤ τ, so two images of one bin are always within τ), images of one bin are put
in a random order and cut into groups of ``group``; groups are shuffled and concatenated into
batches. A batch thus holds ``batch_size / group`` random quality levels, each with ``group``
images of (very likely) different contents to match.

Length semantics are those of ``DataLoader(RandomSampler(ds), batch_size, drop_last=True)``:
every image at most once per epoch, ``len(ds) // batch_size`` batches.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class QualityStratifiedSampler(Sampler[list[int]]):
    """Batches of indices whose labels come in groups of similar quality.

    Args:
        mos: normalised labels of the data set (N,).
        batch_size: indices per batch.
        width: quality bin width (use τ).
        group: images drawn together from one bin (≥ 2).
        generator: seeds the order (a fresh one per epoch makes epochs replayable).
    """

    def __init__(self, mos: Sequence[float] | torch.Tensor, batch_size: int,
                 width: float = 0.05, group: int = 4,
                 generator: torch.Generator | None = None):
        if group < 2:
            raise ValueError(f"group: expected >= 2, got {group}")
        if width <= 0:
            raise ValueError(f"width: expected > 0, got {width}")
        self.mos = torch.as_tensor(mos, dtype=torch.float64).flatten()
        self.batch_size, self.width, self.group = batch_size, width, group
        self.generator = generator

    def __len__(self) -> int:
        return len(self.mos) // self.batch_size

    def order(self) -> torch.Tensor:
        """One epoch's index order (N,): shuffled groups of same-bin images."""
        n = len(self.mos)
        perm = torch.randperm(n, generator=self.generator)
        bins = torch.floor(self.mos[perm] / self.width).long()
        perm = perm[torch.sort(bins, stable=True).indices]  # by bin, random within a bin
        bins = torch.floor(self.mos[perm] / self.width).long()
        # cut each bin into groups; a bin's remainder forms a smaller group
        starts = torch.ones(n, dtype=torch.bool)
        if n:
            new_bin = torch.cat([torch.tensor([True]), bins[1:] != bins[:-1]])
            first = torch.cummax(torch.where(new_bin, torch.arange(n), torch.zeros(n).long()),
                                 0).values
            starts = (torch.arange(n) - first) % self.group == 0
        gid = torch.cumsum(starts.long(), 0) - 1  # group id of each position
        n_groups = int(gid[-1]) + 1 if n else 0
        sizes = torch.bincount(gid, minlength=n_groups)
        # full groups in random order first, then the partial ones (dropped last if at all)
        key = torch.rand(n_groups, generator=self.generator) + (sizes < self.group).double()
        rank = torch.empty(n_groups, dtype=torch.long)
        rank[torch.argsort(key)] = torch.arange(n_groups)
        return perm[torch.argsort(rank[gid] * n + torch.arange(n), stable=True)]

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.order().tolist()
        for b in range(len(self)):
            yield idx[b * self.batch_size:(b + 1) * self.batch_size]


def labels_of(ds) -> torch.Tensor:
    """Normalised labels (N,) of an :class:`~qfm.data.dataset.IQADataset`, or of a
    ``ConcatDataset`` of data sets that carry a ``mos`` tensor."""
    if hasattr(ds, "datasets"):
        return torch.cat([labels_of(d) for d in ds.datasets])
    return torch.as_tensor(ds.mos, dtype=torch.float32)
