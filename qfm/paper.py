"""The paper being reproduced (Li et al., ICML 2024): its reported numbers and its training
profile, each defined once here; params.yaml, the book and the benchmarks refer to them.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from qfm.config import RunConfig, flatten, to_dict

# The paper's reported numbers (Li et al., ICML 2024: abstract and headline table, as far as
# they could be read; see the book's Method page). NaN = not reported in what could be read.
PAPER_REPORTED = pd.DataFrame(
    [("LIVE", "synthetic", 0.981, float("nan")), ("CSIQ", "synthetic", 0.954, float("nan")),
     ("TID2013", "synthetic", float("nan"), 0.932), ("KADID-10k", "synthetic", float("nan"),
                                                     float("nan")),
     ("LIVEC", "authentic", 0.891, 0.913), ("KonIQ-10k", "authentic", 0.922, 0.936),
     ("LIVEFB", "authentic", 0.567, 0.667), ("SPAQ", "authentic", 0.920, 0.924)],
    columns=["dataset", "kind", "paper_srcc", "paper_plcc"])

# DEIQT's reported numbers (Qin et al., AAAI 2023), each with where it was read; NaN = not
# verified here. Its abstract (arXiv 2304.04952) states LIVE and LIVEC; a results listing of
# the paper (wizwand.com, secondary) gives the others. The repository (narthchin/DEIQT) has
# none in its README.
DEIQT_ABSTRACT = "DEIQT abstract, arXiv 2304.04952"
DEIQT_LISTING = "results listing of arXiv 2304.04952 on wizwand.com (secondary)"
DEIQT_REPORTED = pd.DataFrame(
    [("LIVE", 0.980, float("nan"), DEIQT_ABSTRACT), ("CSIQ", 0.946, float("nan"), DEIQT_LISTING),
     ("TID2013", 0.892, float("nan"), DEIQT_LISTING),
     ("KADID-10k", float("nan"), float("nan"), ""),
     ("LIVEC", 0.875, float("nan"), DEIQT_ABSTRACT),
     ("KonIQ-10k", 0.921, float("nan"), DEIQT_LISTING),
     ("LIVEFB", float("nan"), 0.663, DEIQT_LISTING),
     ("SPAQ", 0.919, float("nan"), DEIQT_LISTING)],
    columns=["dataset", "deiqt_srcc", "deiqt_plcc", "deiqt_source"])
OURS_NOT_RUN = "not run — needs the data and a GPU"
PAPER_CITED = "PMLR v235 li24w, arXiv 2312.06158"  # PAPER_REPORTED's source
# every source above that has a page, its link (the Paper protocol page links each number)
SOURCE_LINKS = {"PMLR v235 li24w": "https://proceedings.mlr.press/v235/li24w.html",
                "arXiv 2312.06158": "https://arxiv.org/abs/2312.06158",
                "arXiv 2304.04952": "https://arxiv.org/abs/2304.04952"}

# Published and previously measured numbers on LIVEC (LIVE In the Wild), set beside this
# project's LIVEC study on its Results page: (scorer, SRCC, PLCC, setting, source). The
# paper's and DEIQT's: GPU, ViT-S fine-tuned, all 1,162 images, 10 splits, medians.
QFM_SOURCE = "Li et al., ICML 2024 (arXiv 2312.06158; PMLR v235, li24w), LIVEC column"
PUBLISHED_LIVEC = pd.DataFrame([
    ("QFM-IQM (paper)", 0.891, 0.913,
     "GPU, ViT-S fine-tuned, all 1,162 images, 10 splits, median", QFM_SOURCE),
    ("DEIQT", 0.875, 0.894, "GPU, ViT-S fine-tuned, all 1,162 images, 10 splits, median",
     "Qin et al., AAAI 2023, as tabulated in " + QFM_SOURCE),
    ("BRISQUE, retrained", 0.601, 0.621, "hand-crafted features + SVR, retrained on LIVEC",
     "as tabulated by DR.Experts (AAAI 2026), Table 1"),
    ("BRISQUE, PyPI `brisque` as shipped", 0.425, 0.479,
     "trained on LIVE IQA, not retrained; our 930 images",
     "measured by the author of this project's issue 20 (not rerun by the pipeline)"),
    ("this project's world-trained model", 0.393, 0.397,
     "trained on the embedded world only; our 930 images",
     "measured by the author of this project's issue 20 (not rerun by the pipeline)"),
    ("frozen Lite0 features + ridge probe", 0.794, 0.813,
     "CPU, frozen ImageNet Lite0, ridge on pooled features; our 930 images, 10 splits, mean "
     "(SRCC sd 0.041)",
     "measured by the author of this project's issue 20 (not rerun by the pipeline)"),
], columns=["scorer", "srcc", "plcc", "setting", "source"])


def reported_table() -> pd.DataFrame:
    """Paper vs DEIQT per data set (ours beside them: :mod:`qfm.report.protocol_page`)."""
    return PAPER_REPORTED.merge(DEIQT_REPORTED, on="dataset", how="left")


# The paper profile (DEIQT's recipe, the book's Method page) — its one definition. `python -m
# qfm.paper` prints it as `dvc exp run` flags (:func:`paper_flags`); `qfm train --set key=value`
# takes the same keys. model.weights: local ImageNet weights of deit3_small_patch16_224 (a
# safetensors state dict, e.g. timm's fb_in1k release), relative to the project's root.
PAPER_PROFILE: dict[str, Any] = {
    "model.backbone": "deit3_small_patch16_224", "model.img_size": 224,
    "model.backbone_kwargs": {}, "model.dim": 0, "model.tokens": "last",
    "model.heads": 6, "model.weights": "models/deit3_small.safetensors",
    "train.epochs": 9, "train.warmup_epochs": 3.0, "train.step_epochs": 3, "train.gamma": 0.1,
    "train.lr": 0.0002, "train.batch_size": 16, "train.eval_every": 1, "train.amp": True,
    "train.workers": 8, "qfm.anchors": 0, "distill.views": 2}


def profile_section(section: str) -> dict[str, Any]:
    """The paper profile's keys of one config section, e.g. ``profile_section("model")`` →
    ``{"backbone": "deit3_small_patch16_224", "img_size": 224, ...}`` (benchmarks use it with
    ``weights: none``: timing needs the architecture, not the ImageNet weights)."""
    return {k.split(".", 1)[1]: v for k, v in PAPER_PROFILE.items()
            if k.split(".", 1)[0] == section}


def profile_table(cfg: RunConfig) -> pd.DataFrame:
    """The CPU pipeline's setting beside the paper profile, for every key the profile sets."""
    mine = flatten(to_dict(cfg))
    return pd.DataFrame([(k, str(mine.get(k)), str(v)) for k, v in PAPER_PROFILE.items()],
                        columns=["key", "this pipeline", "paper profile"]).set_index("key")


def set_flags(over: dict[str, Any], prefix: str = "--set") -> list[str]:
    """Dotted overrides as shell words: ``["--set model.img_size=224", ...]`` (a dict value
    quoted for the shell: ``--set 'model.backbone_kwargs={}'``; booleans lower case)."""
    def flag(k, v):
        if isinstance(v, dict):
            return f"{prefix} '{k}={json.dumps(v)}'"
        return f"{prefix} {k}={str(v).lower() if isinstance(v, bool) else v}"
    return [flag(k, v) for k, v in over.items()]


def paper_flags(prefix: str = "-S") -> str:
    """The paper profile as command-line overrides: ``-S model.backbone=… -S …``."""
    return " ".join(set_flags(PAPER_PROFILE, prefix))


if __name__ == "__main__":  # the flags, for `eval "dvc exp run ... $(python -m qfm.paper)"`
    print(paper_flags())
