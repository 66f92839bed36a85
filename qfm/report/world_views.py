"""The embedded world and the default model's head as the book shows them, one function per
figure or set of glued values, from the notebook's inputs (:class:`StudyInputs`).

These read the world's images, its cached upstream tokens or the default model's head
(:mod:`qfm.report.world_figures`, :mod:`qfm.study.head_check`), so this module needs torch;
what the figures draw is described where they are drawn. A figure function saves its PNG under
``out`` (the name the book links) and returns its path (the two semantic-noise figures: both
paths).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.report import figures, world_figures
from qfm.report.study_inputs import StudyInputs
from qfm.runs.noise import semantic_noise_figure
from qfm.study.head_check import head_predictions

NOISE_THRESHOLD = 0.2  # the "very different" quality gap of the semantic-noise figures
NOISE_FILES = {"raw upstream": "noise_raw.png"}  # source → file; the head's: noise_head.png


def strengths(inputs: StudyInputs) -> list[float]:
    """Every spurious strength of params.yaml's study groups, ascending."""
    return sorted({float(v["spurious"]) for v in inputs.raw["study"]["groups"].values()})


def world_values(inputs: StudyInputs) -> dict:
    """The world's size (``world_<fact>``, :func:`qfm.report.world_figures.world_facts`), the
    example content, the spurious strengths (text) and the split the world figures show."""
    fig = inputs.fig
    return {**{f"world_{k}": v for k, v in world_figures.world_facts(inputs.world).items()},
            "example_content": fig["example_content"],
            "strengths": ", ".join(f"{s:g}" for s in strengths(inputs)),
            "figure_split": fig["split"]}


def example_figure(inputs: StudyInputs, out: Path) -> Path:
    """``world_example.png``: the example content with every distortion."""
    return world_figures.example_figure(inputs.world, inputs.fig["example_content"],
                                        Path(out) / "world_example.png")


def spurious_figure(inputs: StudyInputs, out: Path) -> Path:
    """``spurious.png``: the spurious knob at every strength of the study."""
    return world_figures.spurious_figure(inputs.world, inputs.fig["split"], strengths(inputs),
                                         Path(out) / "spurious.png")


def pairs_tau(inputs: StudyInputs) -> float:
    """The matching's τ: the tuner's choice where tune.json names one, else params.yaml's."""
    return float(inputs.tune["chosen"].get("qfm.tau", inputs.cfg.qfm.tau))


def matched_pairs(inputs: StudyInputs) -> pd.DataFrame:
    """The pairs the matching picks in one training batch (params ``figures.pairs_batch``)."""
    fig = inputs.fig
    return world_figures.matched_pairs(inputs.world, inputs.features, fig["split"],
                                       pairs_tau(inputs), fig["pairs_batch"])


def pairs_values(inputs: StudyInputs, pairs: pd.DataFrame) -> dict[str, str]:
    """τ (``pairs_tau``) and how many anchors of the batch found a partner (``pairs_matched``)."""
    return {"pairs_tau": f"{pairs_tau(inputs):g}",
            "pairs_matched": f"{len(pairs)} of {inputs.fig['pairs_batch']}"}


def pairs_figure(inputs: StudyInputs, pairs: pd.DataFrame, out: Path) -> Path:
    """``pairs.png``: params ``figures.pairs_shown`` of the matched pairs."""
    return world_figures.pairs_figure(inputs.world, pairs, Path(out) / "pairs.png",
                                      inputs.fig["pairs_shown"])


def head_check(inputs: StudyInputs) -> dict:
    """The default model's head re-scored on its own split
    (:func:`qfm.study.head_check.head_predictions`)."""
    return head_predictions(inputs.head, inputs.features, inputs.world)


def head_values(check: dict) -> dict:
    """The head's seed and variant, its SRCC per part (``head_srcc_test``,
    ``head_srcc_heldout``) and the base rate of very different pairs (``noise_base_rate``)."""
    out = {"head_seed": check["seed"], "head_variant": check["variant"]}
    out |= {f"head_srcc_{part.split()[0].replace('-', '')}": f"{v:.3f}"
            for part, v in check["srcc"].items()}
    out["noise_base_rate"] = f"{check['base_rate']:.1%}"
    return out


def pred_true_figure(check: dict, out: Path) -> Path:
    """``pred_true.png``: the head's predicted against true quality."""
    return figures.pred_true_figure(check["pred"], Path(out) / "pred_true.png",
                                    f"{check['variant']}, seed {check['seed']}")


def noise_figures(check: dict, out: Path) -> list[Path]:
    """``noise_raw.png`` (the raw upstream's pooled tokens) and ``noise_head.png`` (the head's
    embedding): pairwise feature distance against quality gap on the test part."""
    paths = []
    for source, (dist, gap, share, cut) in check["pairs"].items():
        paths.append(semantic_noise_figure(
            dist, gap, cut, NOISE_THRESHOLD, share,
            Path(out) / NOISE_FILES.get(source, "noise_head.png"),
            f"{source} · test part of split {check['seed']}"))
    return paths
