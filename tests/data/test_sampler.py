from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset

from qfm.data.sampler import QualityStratifiedSampler, labels_of
from qfm.losses.qfm import match_pairs


def _mos(n=203, seed=0):
    return torch.rand(n, generator=torch.Generator().manual_seed(seed))


def test_length_and_no_repeats_like_random_sampler_drop_last():
    mos = _mos()
    s = QualityStratifiedSampler(mos, 16, width=0.05, generator=torch.Generator().manual_seed(0))
    batches = list(s)
    assert len(batches) == len(s) == 203 // 16
    flat = [i for b in batches for i in b]
    assert all(len(b) == 16 for b in batches) and len(set(flat)) == len(flat)
    assert sorted(s.order().tolist()) == list(range(203))


def test_seeded_and_epochs_differ():
    mos = _mos()
    a = list(QualityStratifiedSampler(mos, 16, generator=torch.Generator().manual_seed(3)))
    b = list(QualityStratifiedSampler(mos, 16, generator=torch.Generator().manual_seed(3)))
    c = list(QualityStratifiedSampler(mos, 16, generator=torch.Generator().manual_seed(4)))
    assert a == b and a != c


def test_most_anchors_find_a_partner():
    mos = _mos(2000)
    s = QualityStratifiedSampler(mos, 32, width=0.05, group=4,
                                 generator=torch.Generator().manual_seed(0))
    strat = [float((match_pairs(mos[b], torch.randn(32, 4), 0.05) >= 0).float().mean())
             for b in s]
    perm = torch.randperm(2000, generator=torch.Generator().manual_seed(0))
    rand = [float((match_pairs(mos[perm[i:i + 32]], torch.randn(32, 4), 0.05) >= 0)
                  .float().mean()) for i in range(0, 2000 - 31, 32)]
    assert sum(strat) / len(strat) > 0.97
    assert sum(strat) / len(strat) > sum(rand) / len(rand)


def test_labels_of_concatenates_in_dataset_order():
    """The sampler sees the labels of a ConcatDataset (train + pseudo-labelled) in its order."""
    class Part(torch.utils.data.Dataset):
        def __init__(self, mos):
            self.mos = mos

        def __len__(self):
            return len(self.mos)

        def __getitem__(self, i):
            return self.mos[i]

    a, b = Part([0.1, 0.9]), Part(np.array([0.5]))
    assert labels_of(ConcatDataset([a, b])).tolist() == pytest.approx([0.1, 0.9, 0.5])
    assert labels_of(SimpleNamespace(mos=[0.3])).dtype == torch.float32
