"""The network of QFM-IQM: backbone wrapper, gate, decoder, the trainable tail, one factory.

    from qfm.models import build_model          # random weights; the caller loads any
    model = build_model(cfg.model)              # (B, 3, H, W) in [0, 1] → score (B,)
    head = build_model(cfg.model, width=C)      # cached tokens (B, 1+N, C) → score (B,)

Imports only torch, timm and :mod:`qfm.config` (tests/system/test_architecture.py).
"""

from qfm.models.backbone import (
                                 IMAGENET_NORM,
                                 LITE_NORM,
                                 Backbone,
                                 ModelError,
                                 create_backbone,
                                 input_norm,
)
from qfm.models.decoder import PanelDecoder
from qfm.models.gates import GATES, FeatureGate, StaticGate, TokenAdapter
from qfm.models.iqa import IQAModel, build_model

__all__ = ["IMAGENET_NORM", "LITE_NORM", "Backbone", "ModelError", "create_backbone",
           "input_norm", "PanelDecoder", "GATES", "FeatureGate", "StaticGate", "TokenAdapter",
           "IQAModel", "build_model"]
