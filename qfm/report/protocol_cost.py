"""The paper protocol's cost on the eight data sets, for the Paper protocol page."""

from __future__ import annotations

import pandas as pd

from qfm.data.facts import FACTS
from qfm.paper import PAPER_PROFILE
from qfm.report.glossary import dataset_name
from qfm.report.tables import Table, html_table


def gpu_hours(images_per_second: float, epochs: int = PAPER_PROFILE["train.epochs"],
              splits: int = 10,
              train_fraction: float = 0.8, runs_per_split: float = 1.0) -> pd.DataFrame:
    """Estimated GPU hours of the paper protocol per data set.

    Args:
        images_per_second: training throughput of one GPU (forward + backward, AMP).
        epochs, splits: the protocol (the profile's epochs, 10 splits).
        train_fraction: share of the images trained on.
        runs_per_split: training passes per split in baseline-run units (a full QFM-IQM run
            is teacher + student ≈ 1 + (1 + views) passes at ≤ 1.5× the step cost).
    """
    rows = [{"dataset": dataset_name(key), "images": f.expected,
             "gpu_hours": f.expected * train_fraction * epochs * splits * runs_per_split
             / images_per_second / 3600.0} for key, f in FACTS.items()]
    return pd.DataFrame(rows)


# The GPU cost of the paper's protocol, an estimate from stated assumptions (not a measurement):
# one GPU trains ViT-S/16 at 224 px with AMP at about this many images per second; 9 epochs
# (the paper profile), 10 splits, runs per split = baseline 1 + teacher 1.5 + student
# 1.5 × (1 + 2 views) in baseline-run units.
GPU_ASSUMPTIONS = {"images_per_second": 1500.0, "epochs": 9, "splits": 10,
                   "runs_per_split": 1 + 1.5 + 1.5 * (1 + 2)}


def protocol_gpu_hours() -> pd.DataFrame:
    """:func:`gpu_hours` under :data:`GPU_ASSUMPTIONS`."""
    a = GPU_ASSUMPTIONS
    return gpu_hours(a["images_per_second"], epochs=a["epochs"], splits=a["splits"],
                     runs_per_split=a["runs_per_split"])


def gpu_table() -> Table:
    """:func:`protocol_gpu_hours` as the page's table."""
    gpu = protocol_gpu_hours().rename(columns={"dataset": "data set", "gpu_hours": "GPU hours"})
    return html_table(gpu, {"GPU hours": ".1f"})


def gpu_values() -> dict[str, str]:
    """The total GPU hours (``gpu_hours_total``) and the assumed training rate
    (``gpu_images_per_second``), as the page's prose quotes them."""
    return {"gpu_hours_total": f"{protocol_gpu_hours()['gpu_hours'].sum():.0f}",
            "gpu_images_per_second": f"{GPU_ASSUMPTIONS['images_per_second']:.0f}"}
