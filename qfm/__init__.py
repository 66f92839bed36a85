"""qfm — reproducibility package of QFM-IQM (Li et al., ICML 2024).

Score images from Python: ``scorer = qfm.load_scorer(); scorer("photo.jpg")``
(:mod:`qfm.scorer`; loaded on first use, so ``import qfm`` stays light).
"""

import importlib
import os

__version__ = "0.1.0"

# On a small shared CPU, torch's OpenMP threads otherwise spin-wait for each other (a step with
# two spinning threads ran many times slower than with one). It acts only where torch is not
# imported yet (every qfm command and notebook imports qfm first); a value already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str):
    if name in ("load_scorer", "Scorer"):  # imported on first use only: no stage runs it
        return getattr(importlib.import_module("qfm.scorer"), name)
    raise AttributeError(f"module 'qfm' has no attribute {name!r}")
