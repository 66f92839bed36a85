"""LIVEC with the whole upstream trained from pixels (the paper's regime, ``qfm whole``) as the
book shows it: the state of its committed rows, each variant's SRCC and PLCC over the splits,
the attribution's answers in this regime, what training the whole upstream did to each
variant against the frozen study on the same splits, and one split's validation curves.
Every table reads the verdict record or the committed rows; "not measured yet" before the
first row lands. JSON and matplotlib only (no torch).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pandas as pd

from qfm.files import read_json
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
                "whole_splits": "0", "whole_lr": NOT_MEASURED, "whole_crop": crop,
                "whole_cap": NOT_MEASURED, **_caps(inputs)}
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
    cap = int(rows["best_is_last"].sum()) if "best_is_last" in rows else 0
    at_cap = (f"{cap} of {len(rows)} runs kept their last allowed epoch (a sign that training "
              f"was cut short)" if cap else f"no run of {len(rows)} kept its last allowed "
              f"epoch") if len(rows) else NOT_MEASURED
    return {"whole_status": text, "whole_splits": str(splits), "whole_lr": lr,
            "whole_crop": crop, "whole_cap": at_cap, **_caps(inputs)}


def _caps(inputs: StudyInputs) -> dict[str, str]:
    """``whole_epochs`` and ``whole_tune_epochs``: the split runs' and tuning runs' caps."""
    w = inputs.raw.get("whole") or {}
    return {"whole_epochs": str(w.get("epochs", "–")),
            "whole_tune_epochs": str((w.get("tune") or {}).get("epochs", "–"))}


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


def tuning_rows(inputs: StudyInputs) -> pd.DataFrame:
    """The regime's tuning runs (``tune/<variant>_p<i>_t<seed>.json``) that match params.yaml's
    grid point ``i`` and its ``whole.tune.epochs`` cap (older runs left in the folder are not
    shown): variant, point, knobs, validation SRCC, best epoch, epochs run, cap, curve."""
    w = inputs.raw.get("whole") or {}
    tune = w.get("tune") or {}
    grid, cap = tune.get("grid") or {}, tune.get("epochs")
    keys = list(grid)
    points = [dict(zip(keys, vals)) for vals in itertools.product(*grid.values())]
    out = []
    for f in sorted((Path(inputs.measured_whole) / "tune").glob("*_p*_t*.json")):
        m = re.fullmatch(r"(.+)_p(\d+)_t(\d+)", f.stem)
        row = read_json(f)
        i = int(m.group(2)) if m else -1
        if not m or i >= len(points) or row.get("max_epochs") != cap or any(
                row.get(k) != v for k, v in points[i].items()):
            continue
        out.append({"variant": m.group(1), "point": i, **points[i], "seed": int(m.group(3)),
                    "val_srcc": row.get("val_srcc"), "best_epoch": row.get("best_epoch"),
                    "epochs": row.get("epochs"), "max_epochs": cap,
                    "val_curve": row.get("val_curve") or [],
                    "minutes": (row.get("run") or {}).get("seconds", float("nan")) / 60})
    return pd.DataFrame(out)


def tuning_table(inputs: StudyInputs) -> Table:
    """Validation SRCC of every tuned variant at every grid point (best epoch / epochs run of
    the cap), the point each variant runs at, and how a student is tuned."""
    rows, w = tuning_rows(inputs), inputs.raw.get("whole") or {}
    if not len(rows):
        return note(f"tuning: {NOT_MEASURED}")
    path = Path(inputs.measured_whole) / "tune.json"
    tuned = read_json(path) if path.is_file() else {}
    knob = next(iter((w.get("tune") or {}).get("grid") or {"lr_backbone": []}))
    table = []
    for v in inputs.whole_variants:
        got = rows[rows["variant"] == v]
        line = {"variant": v}
        for r in got.sort_values("point").itertuples():
            line[f"{knob} {getattr(r, knob):g}"] = (
                f"{r.val_srcc:.3f} (best epoch {r.best_epoch + 1} of {r.epochs}; "
                f"cap {r.max_epochs})")
        pick = (tuned.get("chosen") or {}).get(v) or (  # the index names each as it is tuned
            (inputs.whole_index or {}).get("knobs") or {}).get(v)
        line["runs at"] = (f"{knob} {pick[knob]:g}" if pick else "not chosen yet") + (
            " (its teacher's point)" if not len(got) and pick else "")
        table.append(line)
    df = pd.DataFrame(table).fillna("–")
    return html_table(df, notes=(
        "LIVEC's tuning split (validation photos that are no split's test photo), one seed; "
        "validation SRCC at the best epoch; a student runs at its teacher's point "
        f"(whole.tune.student: {(w.get('tune') or {}).get('student', 'own')})"))


def tuning_figure(inputs: StudyInputs, out: Path) -> Path:
    """``whole_tuning.png``: validation SRCC by epoch of every tuning run, a panel a variant,
    a line a grid point (a note in its place before the first run)."""
    rows, path = tuning_rows(inputs), Path(out) / "whole_tuning.png"
    variants = [v for v in inputs.whole_variants if len(rows) and v in set(rows["variant"])]
    if not variants:
        fig, ax = plt.subplots(figsize=(6.2, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"tuning curves: {NOT_MEASURED}", ha="center", va="center",
                fontsize=MIN_FONT)
        return save_figure(fig, path)
    knob = next(iter((inputs.raw["whole"].get("tune") or {}).get("grid")))
    fig, axes = plt.subplots(1, len(variants), figsize=(6.8, 2.8), sharey=True, squeeze=False)
    for ax, v in zip(axes[0], variants):
        for r in rows[rows["variant"] == v].sort_values("point").itertuples():
            x, c = range(1, len(r.val_curve) + 1), f"C{r.point}"  # a colour a grid point
            ax.plot(x, r.val_curve, marker=".", color=c, label=f"{getattr(r, knob):g}")
            ax.plot(r.best_epoch + 1, r.val_curve[r.best_epoch], "o", mfc="none", color=c, ms=8)
        ax.set_title(v)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation SRCC")
    seen = {}  # every grid point in one legend, whichever panel drew it
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    axes[0][-1].legend(seen.values(), seen.keys(), title=knob, frameon=False)
    return save_figure(fig, path)

