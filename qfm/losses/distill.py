"""Distillation that expands the data set (QFM-IQM step 5): the student's loss, no I/O.

The expanded set's data side (new views, the leak check, the pseudo-labelled wrapper) is
:mod:`qfm.data.expanded`.

* :class:`DistillObjective` — the student's loss
  L = L_reg (labelled) + λ_qfm·L_qfm (all) + λ_kd·SmoothL1(student, teacher) (expanded).

The driver (teacher run, pseudo-label file, student run) is :mod:`qfm.runs.distill`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qfm.config import QFMConfig
from qfm.losses.qfm import qfm_terms


def _masked_l1(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return pred.sum() * 0.0  # zero, still attached to the graph
    return F.smooth_l1_loss(pred[mask], y[mask])


class DistillObjective:
    """The student's loss (``objective(model, batch) → loss, logs``).

    Args:
        qfm: the ``qfm`` section (L_qfm over every sample when enabled; pseudo-labels are the
            labels matching and the perturbed loss use for expanded samples).
        lambda_kd: weight of SmoothL1(student, teacher) on the expanded samples.
    """

    def __init__(self, qfm: QFMConfig, lambda_kd: float, seed: int = 0):
        self.qfm, self.lambda_kd = qfm, lambda_kd
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        x, y = batch["image"], batch["mos"]
        pseudo = torch.as_tensor(batch["index"], device=y.device) < 0
        logs: dict = {}
        if self.qfm.enabled:
            pred, l_qfm, logs = qfm_terms(model, x, y, self.qfm, self.gen)
        else:
            pred = model(x)
            l_qfm = pred.sum() * 0.0
        reg = _masked_l1(pred, y, ~pseudo)
        kd = _masked_l1(pred, y, pseudo)
        loss = reg + self.qfm.lambda_qfm * l_qfm + self.lambda_kd * kd
        return loss, {"loss": float(loss.detach()), "reg": float(reg.detach()),
                      "qfm": float(l_qfm.detach()), "kd": float(kd.detach()), **logs}


def with_pseudo_labels(inputs: torch.Tensor, labels: torch.Tensor, index: torch.Tensor,
                       extra: torch.Tensor, teacher_scores: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The student's training set: labelled rows, then ``extra`` rows labelled by the teacher.

    Args:
        inputs: labelled inputs (N, ...); labels: (N,); index: their item indices (N,) ≥ 0.
        extra: the expanded set's inputs (M, ...); teacher_scores: the teacher's scores (M,).
    Returns:
        (inputs, labels, index) of N + M rows; an index < 0 marks a pseudo-labelled row (what
        :class:`DistillObjective` reads).
    """
    pseudo = teacher_scores.to(torch.float32)
    return (torch.cat([inputs, extra]), torch.cat([labels, pseudo]),
            torch.cat([index, -1 - torch.arange(len(pseudo))]))
