"""The world study's tables and figures as the book shows them, one function each, from the
notebook's inputs (:class:`StudyInputs`) and the verdict record; and the method's measured
facts beside the tuning (the head's sizes on validation, the intervals' coverage).

Each function puts together what :mod:`qfm.report.study` (frames, tables),
:mod:`qfm.report.claims` (the record's comparisons), :mod:`qfm.report.tuning` and
:mod:`qfm.report.figures` (the drawing) provide, so that the notebook's cell calls one
function per table or figure. A figure function saves its PNG under ``out`` (the name the book
links) and returns its path; a ``*_values`` function returns ``{glue name: value}``. JSON only
(no torch).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.config import flatten
from qfm.report import claims, figures, tuning
from qfm.report import study as sr
from qfm.report.glossary import SHORT, VARIANTS, knob_table, variant_table
from qfm.report.livec import best_epoch_facts, best_epoch_text
from qfm.report.study_inputs import StudyInputs
from qfm.report.tables import Table, html_table
from qfm.report.verdicts import main_group

SHARE_SOURCES = ("baseline", "full")  # the semantic-noise share: the upstream, then these
ARCHITECTURE_KEYS = ("model.dim", "model.gate_hidden", "qfm.anchors")  # the probe's settings
# interval-coverage glue suffix → the population's name in interval_coverage*.json
COVERAGE = {"normal": "normal", "exponential": "exponential (skew 2)",
            "lognormal": "lognormal sigma 0.5 (skew 1.8)"}


# --- the answer: paired differences against the baseline -----------------------------------

def intro_table(record: dict, inputs: StudyInputs) -> Table:
    """The intro variants (params ``figures.intro``) against the baseline, with what each is."""
    cmp = claims.record_frame(main_group(record, inputs), inputs.fig["intro"])
    return sr.delta_table(cmp, SHORT)


def intro_figure(record: dict, inputs: StudyInputs, out: Path) -> Path:
    """``deltas_intro.png``: the intro variants' per-seed Δ against the baseline."""
    intro = inputs.fig["intro"]
    return figures.deltas_figure(sr.paired_frame(inputs.rows, intro),
                                 claims.record_frame(main_group(record, inputs), intro),
                                 Path(out) / "deltas_intro.png")


def controls_table(record: dict, inputs: StudyInputs) -> Table:
    """QFM's controls against gate_qfm (those that ran)."""
    return sr.delta_table(claims.record_frame(main_group(record, inputs), claims.CONTROLS,
                                              "gate_qfm"))


def delta_table(record: dict, inputs: StudyInputs, metric: str = "test_srcc") -> Table:
    """Every main variant against the baseline on ``metric`` (test or held-out SRCC)."""
    cmp = claims.record_frame(main_group(record, inputs), inputs.variants, metric=metric)
    return sr.delta_table(cmp, metric=metric)


def deltas_figure(record: dict, inputs: StudyInputs, out: Path, metric: str = "test_srcc"
                  ) -> Path:
    """Every main variant's per-seed Δ against the baseline: ``deltas_main.png`` (test SRCC)
    or ``deltas_heldout.png`` (held-out SRCC)."""
    cmp = claims.record_frame(main_group(record, inputs), inputs.variants, metric=metric)
    paired = sr.paired_frame(inputs.rows, inputs.variants, metric)
    if metric == "heldout_srcc":
        return figures.deltas_figure(paired, cmp, Path(out) / "deltas_heldout.png",
                                     "held-out SRCC")
    return figures.deltas_figure(paired, cmp, Path(out) / "deltas_main.png")


# --- the spurious sweep ----------------------------------------------------------------------

def sweep_variants(inputs: StudyInputs) -> list[str]:
    """The gate (in every spurious group) and the sweep's variants (params ``figures.sweep``)."""
    return ["gate", *inputs.fig["sweep"]]


def sweep_base(inputs: StudyInputs) -> pd.DataFrame:
    """The baseline's mean test SRCC per spurious strength of the sweep, with its t interval."""
    rows = inputs.rows_all[inputs.rows_all["group"].isin(inputs.fig["sweep_groups"])]
    return sr.mean_ci_frame(rows, "spurious", "test_srcc", "baseline")


def _sweep(record: dict, inputs: StudyInputs) -> pd.DataFrame:
    return sr.sweep_frame(record, sweep_variants(inputs), groups=inputs.fig["sweep_groups"])


def sweep_figure(record: dict, inputs: StudyInputs, out: Path) -> Path:
    """``sweep.png``: Δ against the baseline per strength beside the baseline's own SRCC."""
    return figures.sweep_figure(_sweep(record, inputs), sweep_base(inputs),
                                Path(out) / "sweep.png")


def sweep_table(record: dict, inputs: StudyInputs) -> Table:
    """One row per spurious strength and sweep variant."""
    return sr.sweep_table(_sweep(record, inputs), sweep_base(inputs))


# --- training and tuning -----------------------------------------------------------------

def training_values(inputs: StudyInputs) -> dict[str, str]:
    """The share of the main group's runs whose best epoch is their last (``best_last_share``)
    and the best-epoch sentence of those runs (``world_best_epoch``)."""
    rows = inputs.rows
    return {"best_last_share": f"{rows['best_is_last'].mean():.0%}",
            "world_best_epoch": best_epoch_text(best_epoch_facts(rows))}


def tuning_trials(inputs: StudyInputs) -> pd.DataFrame:
    """The tuning trials in the order tuned (each trial carries every knob value)."""
    return tuning.tuning_frame(inputs.tune)


def tuning_table(inputs: StudyInputs) -> Table:
    """Every tuning trial on validation."""
    return tuning.tuning_table(tuning_trials(inputs), inputs.tune["seeds"])


def tuning_figure(inputs: StudyInputs, out: Path) -> Path:
    """``tuning.png``: validation SRCC per value tried, per tuning step."""
    return figures.tuning_figure(tuning_trials(inputs), Path(out) / "tuning.png")


def tuning_values(inputs: StudyInputs) -> dict:
    """The values chosen (``tuned_values``), choices at an edge of their range
    (``tuning_edges``), tuning seeds and trials (numbers) and what validation did with QFM's
    term (``world_qfm_term``)."""
    tune = inputs.tune
    return {"tuned_values": tuning.chosen_text(tune),
            "tuning_edges": tuning.edge_text(tuning_trials(inputs)),
            "tune_seeds": len(tune["seeds"]), "tune_trials": len(tune["trials"]),
            "world_qfm_term": tuning.qfm_term_text(tune)}


def architecture_table(inputs: StudyInputs) -> Table:
    """The head's sizes against their alternatives on validation
    (``benchmarks/architecture_choices.py``), the sizes params.yaml uses now (``model`` or
    ``study.model``, and ``qfm.anchors``) marked."""
    raw = inputs.raw
    now = {**flatten(raw), **flatten({"model": raw["study"].get("model") or {}})}
    return tuning.architecture_table(inputs.architecture,
                                     {k: v for k, v in now.items() if k in ARCHITECTURE_KEYS})


def coverage_values(inputs: StudyInputs) -> dict[str, str]:
    """Measured coverage of the verdicts' nominal 95 % intervals
    (``benchmarks/interval_coverage.py``): the bootstrap-t's and the t interval's at ten seeds
    (``coverage_*``, ``coverage_t_*``) and at five (``coverage5_*``, ``coverage5_t_*``), per
    population of :data:`COVERAGE`."""
    cov, cov5 = inputs.coverage["populations"], inputs.coverage5["populations"]
    out = {}
    for k, key in COVERAGE.items():
        out[f"coverage_{k}"] = f"{cov[key]['bootstrap_t_coverage']:.3f}"
        out[f"coverage5_{k}"] = f"{cov5[key]['bootstrap_t_coverage']:.3f}"
        out[f"coverage_t_{k}"] = f"{cov[key]['t_coverage']:.3f}"
        out[f"coverage5_t_{k}"] = f"{cov5[key]['t_coverage']:.3f}"
    return out


# --- the unseen photo, the semantic-noise share, the ladder, the toy upstream ------------------

def unseen_values(inputs: StudyInputs) -> dict[str, str]:
    """The photo outside the world (``unseen_photo``) and how many of its distortion ladders the
    default model ordered (``unseen_ordered``)."""
    unseen = inputs.unseen
    ordered = sum(r["ordered"] for r in unseen["ladders"].values())
    return {"unseen_photo": unseen["photo"].replace("_", " "),
            "unseen_ordered": f"{ordered} of {len(unseen['ladders'])}"}


def share_table(inputs: StudyInputs) -> Table:
    """The semantic-noise share of the upstream and of :data:`SHARE_SOURCES`' heads."""
    return sr.share_table(sr.share_frame(inputs.rows, SHARE_SOURCES))


def share_figure(inputs: StudyInputs, out: Path) -> Path:
    """``share.png``: the share per seed and its mean with a t interval, per source."""
    shares = sr.share_frame(inputs.rows, SHARE_SOURCES)
    return figures.share_figure(shares, sr.mean_ci_frame(shares, "source", "share"),
                                Path(out) / "share.png")


def _ladder(record: dict, inputs: StudyInputs) -> pd.DataFrame:
    return sr.ladder_frame(inputs.rows, inputs.fig["ladder"], main_group(record, inputs))


def ladder_table(record: dict, inputs: StudyInputs) -> Table:
    """The ablation ladder (params ``figures.ladder``), each rung against the one below."""
    return sr.ladder_table(_ladder(record, inputs))


def ladder_figure(record: dict, inputs: StudyInputs, out: Path) -> Path:
    """``ladder.png``: the ladder's rungs and steps."""
    return figures.ladder_figure(_ladder(record, inputs), inputs.rows, Path(out) / "ladder.png")


def upstream_table(inputs: StudyInputs) -> Table:
    """The baseline on the ImageNet upstream beside the baseline on the toy upstream (the toy
    group's seeds)."""
    return sr.summary_table(sr.toy_frame(inputs.rows, inputs.toy),
                            ["ImageNet upstream", "toy upstream"], "baseline on")


def variants_table(inputs: StudyInputs) -> Table:
    """The glossary's variants that ran in any group of the study."""
    ran = set(inputs.rows_all["variant"])
    return html_table(variant_table([v for v in VARIANTS if v in ran]))


def knobs_table() -> Table:
    """The glossary's table of tunable knobs (qfm.knobs: key, symbol, default, off, meaning)."""
    return html_table(knob_table())
