"""The LIVEC study and the fine-tuning regime as the book shows them, one function per table or
set of glued values, from the notebook's inputs (:class:`StudyInputs`) and the verdict record;
and how LIVEC's photos became tokens (the recipes tried on validation).

Where a study was never measured on this checkout, its tables and values say "not measured
yet". Whether a committed result is current is read by :mod:`qfm.study.record` (its code
fingerprint), which needs :mod:`qfm.study.livec` and :mod:`qfm.study.finetune` (their shaping
parameters): this module is not JSON-only.
"""

from __future__ import annotations

import pandas as pd

from qfm.paper import PUBLISHED_LIVEC
from qfm.report import ledger, tuning
from qfm.report import livec as livec_report
from qfm.report.study_inputs import StudyInputs
from qfm.report.tables import Table, html_table, note
from qfm.report.verdicts import main_group
from qfm.study import finetune as finetune_study
from qfm.study import livec as livec_study
from qfm.study import record as measured_record

NOT_MEASURED = ledger.NOT_MEASURED
FT_SETTING = ("CPU, ImageNet EfficientNet-Lite0 with its last stage trained, photos at {resize} "
              "px, 930 of 1,162 images, our random 80/20 splits")


def status_values(inputs: StudyInputs) -> dict[str, str]:
    """Whether the committed LIVEC study (``livec_status``) and LIVEC's fine-tuning regime
    (``livec_ft_status``) are current, stale or not measured yet, as a sentence."""
    raw = inputs.raw
    st = measured_record.status(inputs.measured, livec_study.shaping_params(raw))
    return {"livec_status": livec_report.status_text(st),
            "livec_ft_status": livec_report.status_text(
                finetune_study.status(raw, inputs.measured_ft))}


def facts_values(inputs: StudyInputs) -> dict[str, str]:
    """The facts the LIVEC and fine-tuning prose quotes, as text: the regime's seeds, trained
    stages and photo size; best epochs (world regime, LIVEC regime, LIVEC); LIVEC's splits, its
    tuned values and what validation did with QFM's term; the default model's head."""
    raw, lrows, cft = inputs.raw, inputs.livec_rows, inputs.livec_ft_rows
    ltune = inputs.livec_tune
    head = livec_report.default_facts(inputs.livec_head)
    return {
        "ft_seeds": str(inputs.world_ft_rows["seed"].nunique()),
        "ft_stages": str(raw["finetune"]["stages"]),
        "ft_resize": str(raw["finetune"]["livec"]["resize"]),
        "world_ft_best_epoch": livec_report.best_epoch_text(
            livec_report.best_epoch_facts(inputs.world_ft_rows)),
        "livec_ft_best_epoch": livec_report.best_epoch_text(livec_report.best_epoch_facts(cft))
        if len(cft) else NOT_MEASURED,
        "livec_splits": str(lrows["seed"].nunique()) if len(lrows) else f"({NOT_MEASURED})",
        "livec_best_epoch": livec_report.best_epoch_text(livec_report.best_epoch_facts(lrows)),
        "livec_tuned_values": tuning.chosen_text(ltune) if ltune else NOT_MEASURED,
        "livec_qfm_term": tuning.qfm_term_text(ltune),
        **{f"default_{k}": str(head.get(k, NOT_MEASURED))
           for k in ("variant", "val_srcc", "images", "epochs")}}


def regime_change_table(record: dict, inputs: StudyInputs) -> Table:
    """Trained minus frozen per variant of the regime, on the world and on LIVEC."""
    regime = record["regime"]
    return html_table(ledger.regime_frame(regime["world"], regime["livec"], inputs.ft_variants))


def ft_stats_table(inputs: StudyInputs) -> Table:
    """LIVEC's fine-tuning regime: every variant's SRCC and PLCC over the splits."""
    if not len(inputs.livec_ft_rows):
        return note(NOT_MEASURED)
    setting = FT_SETTING.format(resize=inputs.raw["finetune"]["livec"]["resize"])
    return livec_report.stats_table(inputs.livec_ft_rows, inputs.ft_variants, setting)


def answer_table(record: dict, inputs: StudyInputs) -> Table:
    """The intro's answer on both data sets (:func:`qfm.report.ledger.attribution_table`)."""
    return ledger.attribution_table(main_group(record, inputs), record.get("livec"))


def ledger_table(record: dict, inputs: StudyInputs) -> Table:
    """The claims ledger: each claim of the paper, the test run here, world and LIVEC."""
    return ledger.ledger_table(record, inputs.fig["group"], inputs.rows,
                               inputs.livec_rows if record.get("livec") else None)


def published_table(inputs: StudyInputs) -> Table:
    """Ours on LIVEC beside the published numbers (:data:`qfm.paper.PUBLISHED_LIVEC`)."""
    return livec_report.published_table(inputs.livec_rows, PUBLISHED_LIVEC)


def tuning_table(inputs: StudyInputs) -> Table:
    """LIVEC's tuning trials on validation ("not measured yet" where it never ran)."""
    ltune = inputs.livec_tune
    if not ltune:
        return note(NOT_MEASURED)
    return tuning.tuning_table(tuning.tuning_frame(ltune), ltune["seeds"])


def token_values(inputs: StudyInputs) -> dict[str, str]:
    """``tokens_<recipe>``: each LIVEC token recipe's validation SRCC."""
    return {f"tokens_{k}": v for k, v in livec_report.token_glue(inputs.tokens).items()}


def worst_variant(inputs: StudyInputs) -> str:
    """The variant whose worst-predicted photos the LIVEC page lists: the default model's (the
    best mean validation SRCC, by rule), or ``full`` before the default head exists."""
    return (inputs.livec_head or {}).get("variant") or "full"


def default_rule_table(inputs: StudyInputs) -> Table:
    """The default model's regime by rule (``results/study/default_rule.json``): each LIVEC
    regime's winner on its own splits, then on the splits the competing regimes share."""
    rule = inputs.default_rule
    if not rule:
        return note(f"the regime rule: {NOT_MEASURED} (results/study/default_rule.json)")
    df = pd.DataFrame([{
        "regime": r["regime"], "its best variant": r["variant"] or "–",
        "splits": r["splits"], "mean val SRCC (its splits)": r["val_srcc_own"],
        f"mean val SRCC ({len(rule['common_splits'])} shared splits)": r["val_srcc_common"],
        "default": ("chosen" if r["regime"] == rule["regime"] else
                    "competes" if r["competes"] else "too few splits")}
        for r in rule["table"]])
    return html_table(df, notes=f"the rule: {rule['rule']}; validation only, test chose nothing")


def _choice(chosen: dict | None) -> str:
    """A tuned variant's values, e.g. ``rho 0.0125, lambda_qfm 1, lr 0.008``."""
    if not chosen:
        return "–"
    return ", ".join(f"{k.split('.')[-1]} {v:g}" for k, v in sorted(chosen.items()))


def _margins(stability: dict) -> dict[str, float]:
    """Per tuned variant, the smallest gap between a knob's best and next-best value in the
    study's own tuning (how close its choices were)."""
    by: dict[tuple, list] = {}
    for t in stability["trials"]:
        if t["val_srcc_contiguous"] is not None:
            by.setdefault((t["variant"], t["knob"]), []).append(t["val_srcc_contiguous"])
    out: dict[str, float] = {}
    for (v, _), vals in by.items():
        if len(vals) > 1:
            top = sorted(vals, reverse=True)
            out[v] = min(out.get(v, float("inf")), top[0] - top[1])
    return out


def stability_table(inputs: StudyInputs) -> Table:
    """The frozen LIVEC tuning rerun on tokens that differ by float rounding
    (``benchmarks/tuning_stability.py``): each tuned variant's choice both ways, how far its
    trials' validation SRCC moved, and how close its choices had been."""
    st = inputs.stability
    if not st:
        return note(f"the tuning's stability: {NOT_MEASURED} (benchmarks/tuning_stability.py)")
    margins = _margins(st)
    rows = []
    for v, moved in sorted(st["largest_change_by_variant"].items()):
        a, b = st["chosen_contiguous"].get(v), st["chosen_channels_last"].get(v)
        rows.append({"variant": v, "the study's choice": _choice(a),
                     "on the perturbed tokens": "the same" if a == b else _choice(b),
                     "largest |Δ val SRCC| of its trials": moved,
                     "smallest margin of its choices": margins.get(v, float("nan"))})
    four = {c: ".4f" for c in ("largest |Δ val SRCC| of its trials",
                               "smallest margin of its choices")}
    return html_table(pd.DataFrame(rows), four, notes=(
        "perturbed tokens: the frozen upstream held channels-last (outputs equal within ~1e-6 "
        "relative, then float16); margin: a knob's best validation SRCC minus its next best, "
        "in the study's tuning; the variants not listed take gate_qfm's or their group's "
        "values; validation only"))


def stability_values(inputs: StudyInputs) -> dict[str, str]:
    """``stability_livec_changed`` (which tuned variants' choices changed),
    ``stability_baseline`` / ``stability_gate_qfm`` (their trials' largest move) and
    ``stability_largest`` (the largest move, with its trial)."""
    st = inputs.stability
    if not st:
        return {k: NOT_MEASURED for k in ("stability_livec_changed", "stability_baseline",
                                          "stability_gate_qfm", "stability_largest")}
    moved = st["largest_change_by_variant"]
    top = max((t for t in st["trials"] if t["difference"] is not None),
              key=lambda t: abs(t["difference"]))
    return {"stability_livec_changed": livec_report.stability_changed(st),
            "stability_baseline": f"{moved.get('baseline', float('nan')):.4f}",
            "stability_gate_qfm": f"{moved.get('gate_qfm', float('nan')):.3f}",
            "stability_largest": f"{abs(top['difference']):.3f} ({top['trial']})"}
