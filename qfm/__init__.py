"""qfm — reproducibility package of QFM-IQM (Li et al., ICML 2024)."""

__version__ = "0.1.0"
