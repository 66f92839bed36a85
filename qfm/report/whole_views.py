"""LIVEC with the whole upstream trained from pixels (the paper's regime, ``qfm whole``) as the
book shows it: the state of its committed rows, each variant's SRCC and PLCC over the splits,
the attribution's answers in this regime, what training the whole upstream did to each
variant against the frozen study on the same splits, and one split's validation curves.
Every table reads the verdict record or the committed rows; "not measured yet" before the
first row lands. JSON and matplotlib only (no torch).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.report import ledger
from qfm.report import livec as livec_report
from qfm.report.figures import MIN_FONT, curves_figure, plt, save_figure
from qfm.report.study_inputs import StudyInputs
from qfm.report.tables import Table, html_table, note

NOT_MEASURED = ledger.NOT_MEASURED
GROUP = "livec_whole"  # the verdict record's key
SETTING = ("CPU or GPU, ImageNet EfficientNet-Lite0 trained whole with the head from pixels "
           "({crop} px random crops + flips), 930 of 1,162 images, the frozen study's splits")


def status_values(inputs: StudyInputs) -> dict[str, str]:
    """``whole_status``: how many rows are current, stale and still to run, as a sentence;
    ``whole_splits``: the splits every variant has; ``whole_lr``: the tuned backbone rates;
    ``whole_crop``: the training crop's side."""
    idx, crop = inputs.whole_index, str((inputs.raw.get("whole") or {}).get("crop", "–"))
    if not idx:
        return {"whole_status": f"{NOT_MEASURED} (no row committed in "
                                f"{inputs.measured_whole})",
                "whole_splits": "0", "whole_lr": NOT_MEASURED, "whole_crop": crop}
    rows = inputs.whole_rows
    per = rows.groupby("variant")["seed"].nunique() if len(rows) else pd.Series(dtype=int)
    full = [v for v in inputs.whole_variants if per.get(v, 0) > 0]
    splits = min((int(per[v]) for v in full), default=0) if len(full) == len(
        inputs.whole_variants) else 0
    text = (f"{len(idx.get('rows', []))} current rows, {len(idx.get('stale', []))} stale, "
            f"{len(idx.get('missing', []))} still to run"
            + ("" if not len(per) else " (" + ", ".join(f"{v}: {int(n)} splits"
                                                         for v, n in per.items()) + ")"))
    knobs = idx.get("knobs") or {}
    lr = "; ".join(f"{v}: {k.get('lr_backbone')}" for v, k in knobs.items()
                   if k and k.get("lr_backbone") is not None) or "not tuned yet"
    return {"whole_status": text, "whole_splits": str(splits), "whole_lr": lr,
            "whole_crop": crop}


def stats_table(inputs: StudyInputs) -> Table:
    """Every variant's test SRCC and PLCC over its splits (mean ± sd, median)."""
    if not len(inputs.whole_rows):
        return note(NOT_MEASURED)
    crop = inputs.raw["whole"]["crop"]
    return livec_report.stats_table(inputs.whole_rows, inputs.whole_variants,
                                    SETTING.format(crop=crop))


def answer_table(record: dict) -> Table:
    """The attribution's questions in this regime (the record's ``livec_whole`` group)."""
    group = record.get(GROUP) or {}
    miss = NOT_MEASURED if not group else "not run"
    df = pd.DataFrame([{"comparison": f"{v} vs {r}", "what it asks": what,
                        "Δ test SRCC [95 % CI]": ledger.cell(ledger.entry_of(group, v, r), miss),
                        "verdict": ledger.verdict_cell(ledger.entry_of(group, v, r), miss)}
                       for v, r, what in ledger.TRAINED])
    return html_table(df, numeric=["Δ test SRCC [95 % CI]"],
                      notes="LIVEC, the whole upstream trained from pixels; paired by split; "
                            "the analysis plan's interval, Holm within this group × metric")


def change_table(record: dict, inputs: StudyInputs) -> Table:
    """Whole upstream minus frozen, per variant, on the splits both ran (paired)."""
    group = (record.get("regime") or {}).get(GROUP) or {}
    miss = NOT_MEASURED if not group else "not run"
    col = "whole − frozen: Δ test SRCC [95 % CI]"
    df = pd.DataFrame([{"variant": v, col: ledger.cell(e, miss),
                        "verdict": ledger.verdict_cell(e, miss)}
                       for v in inputs.whole_variants
                       for e in [(group.get(f"{v}_whole_vs_frozen") or {}).get("test_srcc")]])
    return html_table(df, numeric=[col],
                      notes="each variant trained whole from pixels minus the same variant "
                            "on the frozen upstream (measured/livec), paired by split")


def curves(inputs: StudyInputs, out: Path) -> Path:
    """``whole_curves.png``: validation SRCC by epoch of every variant on the first split they
    all ran (a note in its place before that split exists)."""
    rows, path = inputs.whole_rows, Path(out) / "whole_curves.png"
    have = rows.groupby("seed")["variant"].nunique() if len(rows) else pd.Series(dtype=int)
    done = sorted(s for s, n in have.items() if n == rows["variant"].nunique())
    if not done:
        fig, ax = plt.subplots(figsize=(6.2, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"validation curves: {NOT_MEASURED} (no split with every variant)",
                ha="center", va="center", fontsize=MIN_FONT)
        return save_figure(fig, path)
    one = rows[rows["seed"] == done[0]]
    return curves_figure(one, [v for v in inputs.whole_variants if v in set(one["variant"])],
                         path)
