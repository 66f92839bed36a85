"""qfm — reproducibility package of QFM-IQM (Li et al., ICML 2024).

Score images from Python: ``scorer = qfm.load_scorer(); scorer("photo.jpg")``
(:mod:`qfm.scorer`; loaded on first use, so ``import qfm`` stays light).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("load_scorer", "Scorer"):  # imported on first use only: no stage runs it
        import importlib

        return getattr(importlib.import_module("qfm.scorer"), name)
    raise AttributeError(f"module 'qfm' has no attribute {name!r}")
