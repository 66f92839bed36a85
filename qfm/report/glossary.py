"""One name for each variant, data set and measured quantity, used by every table, figure
and page of the book (the Glossary page prints these tables).

A variant is called by its key in ``params.yaml`` (``variants``) everywhere — in prose, tables
and figures — so that what a reader sees is what a command changes. The real data sets use
the short names of the IQA literature (LIVEC, not CLIVE; LIVEFB, not FLIVE).
"""

from __future__ import annotations

import pandas as pd

from qfm.knobs import KNOBS

# variant key → what it is (one line; the Glossary and the intro table print it)
VARIANTS: dict[str, str] = {
    "baseline": "DEIQT-style head on the frozen ImageNet upstream (the reference)",
    "gate": "baseline + adaptive feature selection (the gate)",
    "gate_static": "control: baseline + one learned scale per channel, the same for every image",
    "gate_params": "control: baseline + the gate's parameters as a residual token MLP (no "
                   "selection)",
    "qfm": "baseline + quality-aware matching and adversarial semantic noise, no gate",
    "gate_qfm": "gate + matching + adversarial semantic noise: QFM-IQM without distillation",
    "full": "QFM-IQM: gate_qfm + distillation (its teacher is the same seed's gate_qfm run)",
    "rho0": "control: gate_qfm with ρ = 0 (the extra loss term without any perturbation)",
    "random_partner": "control: gate_qfm with a random partner instead of the matched one",
    "random_direction": "control: gate_qfm with a random perturbation direction",
    "sam": "gate_qfm with the SAM direction projected on the semantic direction",
    "distill": "control: distillation without QFM (its teacher is the baseline)",
    "baseline_long": "control: the baseline trained for as many steps as the distilled student",
}

# variant key → a short description (tables with little room, e.g. the intro's)
SHORT: dict[str, str] = {
    "baseline": "the reference", "gate": "+ adaptive feature selection",
    "gate_static": "control: a static channel scale",
    "gate_params": "control: the gate's parameters",
    "qfm": "+ matching and semantic noise, no gate",
    "gate_qfm": "QFM-IQM without distillation", "full": "QFM-IQM",
    "rho0": "control: ρ = 0 (the loss term, no perturbation)",
    "random_partner": "control: random partner", "random_direction": "control: random direction",
    "sam": "SAM direction", "distill": "control: distillation without QFM",
    "baseline_long": "control: baseline at the student's steps",
}

# data-set key (qfm.data.facts) → the one name the book uses
DATASETS: dict[str, str] = {
    "live": "LIVE", "csiq": "CSIQ", "tid2013": "TID2013", "kadid10k": "KADID-10k",
    "livec": "LIVEC", "koniq10k": "KonIQ-10k", "flive": "LIVEFB", "spaq": "SPAQ",
}

# measured quantity (a study row's key) → its label in tables and figures (PLCC is after the
# 4-parameter logistic fit unless marked raw; "held-out" = the held-out photos)
METRICS: dict[str, str] = {
    "test_srcc": "test SRCC",
    "test_plcc": "test PLCC",
    "test_plcc_raw": "test PLCC (raw)",
    "heldout_srcc": "held-out SRCC",
    "heldout_plcc": "held-out PLCC",
    "val_srcc": "validation SRCC",
    "share": "semantic-noise share",
    "share_upstream": "semantic-noise share of the upstream",
    "partner_rate": "partner rate",
    "candidates": "candidates per anchor",
    "shift_rel": "|Δh| / label spread",
}


def variant_table(keys=None) -> pd.DataFrame:
    """``variant, what it is`` for ``keys`` (default: every variant), in that order."""
    keys = list(VARIANTS) if keys is None else list(keys)
    return pd.DataFrame({"variant": keys, "what it is": [VARIANTS.get(k, "") for k in keys]})


def dataset_name(key: str) -> str:
    """The book's name of a real data set (its key if unknown)."""
    return DATASETS.get(key, key)


def metric_label(key: str) -> str:
    """The label of a measured quantity (its key if unknown)."""
    return METRICS.get(key, key)


def knob_table() -> pd.DataFrame:
    """The tunable knobs as the Glossary prints them: key, symbol, default, off value, meaning
    (:data:`qfm.knobs.KNOBS`, the one list)."""
    return pd.DataFrame({"key": [k.key for k in KNOBS], "symbol": [k.symbol for k in KNOBS],
                         "default": [f"{k.default:g}" for k in KNOBS],
                         "off value": ["–" if k.off is None else f"{k.off:g}" for k in KNOBS],
                         "meaning": [k.meaning for k in KNOBS]})
