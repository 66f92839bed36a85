"""The pipeline's time budget on the Performance page: a fresh clone's ``dvc repro`` against
its target, and stage by stage what the cuts that met it saved.

Two measurements of ``benchmarks/pipeline_stages.py --run`` (a fresh copy, every stage):
``pipeline_stages_before.json``, the pipeline before the cuts, and ``pipeline_stages.json``,
the pipeline now. A stage that split or merged is compared under its new name
(:data:`RENAMED`); a stage a clone skipped (its committed outputs current: ``unchanged``)
counts 0 s, and the whole run's wall clock (copy, DVC's checks, every stage) is given beside
the stages' sum. Nothing is measured here.
"""

from __future__ import annotations

import math

import pandas as pd

from qfm.report.tables import Table, html_table, note

TARGET_MINUTES = 30.0  # a fresh clone's `dvc repro` on 2 idle cores (issue 21)
RENAMED = {"features_tail": "world_finetune", "study@finetune": "world_finetune"}
NOT_MEASURED = "not measured yet"


def _seconds(result: dict | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in (result or {}).get("stages") or []:
        name = RENAMED.get(s["stage"], s["stage"])
        out[name] = out.get(name, 0.0) + float(s.get("seconds") or 0.0)
    return out


def _status(result: dict | None) -> dict[str, str]:
    return {RENAMED.get(s["stage"], s["stage"]): str(s.get("status") or "")
            for s in (result or {}).get("stages") or []}


def before_after(before: dict | None, now: dict | None) -> pd.DataFrame:
    """stage | minutes before | minutes now | saved | status now, in the order of ``now``
    (then stages that left the pipeline); NaN where a side did not have the stage."""
    b, n, st = _seconds(before), _seconds(now), _status(now)
    names = list(n) + [k for k in b if k not in n]
    df = pd.DataFrame({"stage": names,
                       "minutes before": [b.get(k, math.nan) / 60 for k in names],
                       "minutes now": [n.get(k, math.nan) / 60 for k in names]})
    df["saved"] = (df["minutes before"] - df["minutes now"]).where(df["minutes now"].notna(),
                                                                  df["minutes before"])
    df["saved"] = df["saved"].round(1) + 0.0  # as shown (.1f), and no "-0.0"
    df["status now"] = [st.get(k, "not in the pipeline") for k in names]
    return df


def values(before: dict | None, now: dict | None) -> dict[str, str]:
    """The page's glued values: both totals (minutes), the target and whether it is met (by
    the whole run's wall clock where it was recorded, else the stages' sum), and the stages a
    clone skipped."""
    tb, tn = sum(_seconds(before).values()), sum(_seconds(now).values())
    skipped = [k for k, s in _status(now).items() if s not in ("ran", "")]
    wall = float(((now or {}).get("machine") or {}).get("seconds") or 0.0)
    judged = wall or tn
    return {"budget_target": f"{TARGET_MINUTES:.0f}",
            "budget_wall": f"{wall / 60:.1f}" if wall else NOT_MEASURED,
            "budget_before": f"{tb / 60:.1f}" if tb else NOT_MEASURED,
            "budget_now": f"{tn / 60:.1f}" if tn else NOT_MEASURED,
            "budget_verdict": NOT_MEASURED if not tn else
            ("met" if judged / 60 <= TARGET_MINUTES else "missed"),
            "budget_skipped": ", ".join(skipped) or "none"}


def shown(before: dict | None, now: dict | None) -> Table:
    """:func:`before_after` as the page shows it, with a total row."""
    if not (before or {}).get("stages") or not (now or {}).get("stages"):
        return note(NOT_MEASURED)
    df = before_after(before, now)
    df.loc[len(df)] = ["total", df["minutes before"].sum(), df["minutes now"].sum(),
                       df["minutes before"].sum() - df["minutes now"].sum(), ""]
    when = [str((r or {}).get("machine", {}).get("started", ""))[:10] for r in (before, now)]
    return html_table(df, {"minutes before": ".1f", "minutes now": ".1f", "saved": ".1f"},
                      notes=f"Both: benchmarks/pipeline_stages.py --run, a fresh copy of the "
                            f"working tree on 2 cores (before: {when[0]}, now: {when[1]}). "
                            f"unchanged = a clone's committed outputs were current, so DVC "
                            f"skipped the stage (0 minutes).")
