"""The book's verdict record, ``results/verdicts.json`` (the DVC metrics of stage ``figures``):
every comparison the book states, built in one place from what :mod:`qfm.report.study_inputs`
read, and written atomically.

Keys: one per world study group (:func:`qfm.report.claims.verdict_record`: its comparisons in
their Holm families) and ``sweep_interaction`` (the slopes over the spurious strengths); the
fine-tuning regime's groups ``finetune`` (the world) and ``livec_finetune`` (LIVEC; ``{}`` when
never measured); ``livec_whole`` (LIVEC with the whole upstream trained from pixels; ``{}``
before its rows exist) and ``regime`` (last stage trained vs frozen per variant on each data
set, ``livec_whole``: whole upstream vs frozen); ``toy`` (the
baseline on the toy upstream against the ImageNet upstream, on the toy group's seeds); and
``livec`` (the LIVEC study, only once measured); ``plan`` (the analysis plan that judged them)
and ``sensitivity`` (the verdicts each alternative of the plan would change). Every entry is
judged by :mod:`qfm.report.verdict` under the analysis plan (``analysis_plan.yaml``: the
interval by seeds, Holm within one family per group × metric, the yardstick reading against
the paper's reported gain). JSON only (no torch).
"""

from __future__ import annotations

from pathlib import Path

from qfm.files import write_json
from qfm.report import claims, ledger
from qfm.report import livec as livec_report
from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.sensitivity import alternatives, sensitivity_record
from qfm.report.study import comparison, toy_frame
from qfm.report.study_inputs import StudyInputs
from qfm.report.judging import drop_flagged

TOY_KEY = "toy_upstream_vs_imagenet_upstream"  # the record's toy comparison
TOY_FAMILY = "toy"


def main_group(record: dict, inputs: StudyInputs) -> dict:
    """The record's main group (params ``figures.group``): the book's answer."""
    return record[inputs.fig["group"]]


def toy_record(inputs: StudyInputs, plan: Plan = PLAN) -> dict:
    """The toy upstream against the ImageNet upstream (the baseline on each, paired by the toy
    group's seeds; its own Holm family of one): ``{"spurious", TOY_KEY: {"test_srcc": entry}}``."""
    ups = toy_frame(inputs.rows, inputs.toy)
    r = next(comparison(ups, ["toy upstream"], reference="ImageNet upstream",
                        plan=plan).itertuples())
    return {"spurious": float(inputs.toy["spurious"].iloc[0]),
            TOY_KEY: {"test_srcc": claims.entry(r, TOY_FAMILY)}}


def verdict_record(inputs: StudyInputs, plan: Plan | None = None) -> dict:
    """Every verdict the book states (the keys: the module docstring), judged by ``plan``
    (default: the one the inputs read, ``analysis_plan.yaml``): its intervals and tests per
    comparison, then its families, Holm, verdicts and yardstick readings over the whole record
    (:func:`qfm.report.claims.apply_plan`)."""
    plan = plan or inputs.plan
    keep = drop_flagged if plan.flagged == "drop" else (lambda r: r)
    fig = inputs.fig
    out = claims.verdict_record(keep(inputs.rows_all), inputs.groups, fig["ladder"],
                                fig["sweep"], fig["sweep_groups"], plan)
    ft = inputs.ft_variants
    world_ft, livec_ft = keep(inputs.world_ft_rows), keep(inputs.livec_ft_rows)
    livec_rows = keep(inputs.livec_rows)
    out["finetune"] = livec_report.record(world_ft, ft, fig["ladder"], plan, "finetune")
    out["livec_finetune"] = livec_report.record(livec_ft, ft, fig["ladder"], plan,
                                                "livec_finetune")
    whole, wv = keep(inputs.whole_rows), inputs.whole_variants
    out["livec_whole"] = livec_report.record(whole, wv, fig["ladder"], plan, "livec_whole")
    out["regime"] = {"world": ledger.regime_record(keep(inputs.rows), world_ft, ft, plan=plan),
                     "livec": ledger.regime_record(livec_rows, livec_ft, ft, plan=plan),
                     "livec_whole": ledger.regime_record(livec_rows, whole, wv, plan=plan,
                                                         label="whole")}
    out["toy"] = toy_record(inputs, plan)
    livec = livec_report.record(livec_rows, inputs.livec_variants, fig["ladder"], plan)
    if livec:
        out["livec"] = livec  # the LIVEC group's verdicts, DVC metrics beside the world's
    return claims.apply_plan(out, plan)


def write_verdicts(inputs: StudyInputs, path: str | Path) -> dict:
    """Build :func:`verdict_record` under the inputs' plan, add ``plan`` (its version and the
    SHA-256 of its rules) and ``sensitivity`` (each alternative of the plan: which verdicts
    change word, :mod:`qfm.report.sensitivity`), and write it to ``path`` atomically (sorted
    keys, NaN as null); returns the record (the notebook's tables and answer lines read it)."""
    plan = inputs.plan
    out = verdict_record(inputs, plan)
    last = plan.history[-1] if plan.history else {}
    out["plan"] = {"file": str(inputs.plan_path), "version": last.get("version"),
                   "sha256": last.get("sha256")}
    out["sensitivity"] = sensitivity_record(out, alternatives(inputs, plan, verdict_record))
    write_json(out, path)
    return out
