"""The book's verdict record, ``results/verdicts.json`` (the DVC metrics of stage ``figures``):
every comparison the book states, built in one place from what :mod:`qfm.report.study_inputs`
read, and written atomically.

Keys: one per world study group (:func:`qfm.report.claims.verdict_record`: its comparisons in
their Holm families) and ``sweep_interaction`` (the slopes over the spurious strengths); the
fine-tuning regime's groups ``finetune`` (the world) and ``livec_finetune`` (LIVEC; ``{}`` when
never measured) and ``regime`` (trained vs frozen per variant, each data set); ``toy`` (the
baseline on the toy upstream against the ImageNet upstream, on the toy group's seeds); and
``livec`` (the LIVEC study, only once measured). Every entry is judged by
:mod:`qfm.report.verdict` (paired bootstrap-t interval, or the t interval below ten seeds; Holm
within its family). JSON only (no torch).
"""

from __future__ import annotations

from pathlib import Path

from qfm.files import write_json
from qfm.report import claims, ledger
from qfm.report import livec as livec_report
from qfm.report.study import comparison, toy_frame
from qfm.report.study_inputs import StudyInputs

TOY_KEY = "toy_upstream_vs_imagenet_upstream"  # the record's toy comparison
TOY_FAMILY = "toy"


def main_group(record: dict, inputs: StudyInputs) -> dict:
    """The record's main group (params ``figures.group``): the book's answer."""
    return record[inputs.fig["group"]]


def toy_record(inputs: StudyInputs) -> dict:
    """The toy upstream against the ImageNet upstream (the baseline on each, paired by the toy
    group's seeds; its own Holm family of one): ``{"spurious", TOY_KEY: {"test_srcc": entry}}``."""
    ups = toy_frame(inputs.rows, inputs.toy)
    r = next(comparison(ups, ["toy upstream"], reference="ImageNet upstream").itertuples())
    return {"spurious": float(inputs.toy["spurious"].iloc[0]),
            TOY_KEY: {"test_srcc": claims.entry(r, TOY_FAMILY)}}


def verdict_record(inputs: StudyInputs) -> dict:
    """Every verdict the book states (the keys: the module docstring)."""
    fig = inputs.fig
    out = claims.verdict_record(inputs.rows_all, inputs.groups, fig["ladder"], fig["sweep"],
                                fig["sweep_groups"])
    ft = inputs.ft_variants
    out["finetune"] = livec_report.record(inputs.world_ft_rows, ft, fig["ladder"])
    out["livec_finetune"] = livec_report.record(inputs.livec_ft_rows, ft, fig["ladder"])
    out["regime"] = {"world": ledger.regime_record(inputs.rows, inputs.world_ft_rows, ft),
                     "livec": ledger.regime_record(inputs.livec_rows, inputs.livec_ft_rows, ft)}
    out["toy"] = toy_record(inputs)
    livec = livec_report.record(inputs.livec_rows, inputs.livec_variants, fig["ladder"])
    if livec:
        out["livec"] = livec  # the LIVEC group's verdicts, DVC metrics beside the world's
    return out


def write_verdicts(inputs: StudyInputs, path: str | Path) -> dict:
    """Build :func:`verdict_record` and write it to ``path`` atomically (sorted keys, NaN as
    null); returns the record (the notebook's tables and answer lines read it)."""
    out = verdict_record(inputs)
    write_json(out, path)
    return out
