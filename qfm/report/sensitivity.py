"""Sensitivity of the verdicts to the analysis plan's choices: every comparison judged again
under each alternative of the plan (``analysis_plan.yaml``, ``sensitivity``) — the t interval
everywhere, bootstrap-t everywhere, one Holm family per metric across every group, the
questions' own declared families, the flagged runs dropped — and the verdicts whose word
changes. An alternative never decides a verdict; it shows which words hang on a choice.
JSON only (no torch).
"""

from __future__ import annotations

import pandas as pd

from qfm.report.analysis_plan import Plan
from qfm.report.claims import entries
from qfm.report.tables import Table, html_table, note


def flat(record: dict) -> dict[tuple, dict]:
    """A verdict record's entries keyed by (group path, comparison, metric)."""
    out = {}
    for gpath, e in entries(record):
        out[("/".join(gpath), f"{e['variant']} vs {e['reference']}", e["metric"])] = e
    return out


def alternatives(inputs, plan: Plan, judge) -> dict[str, dict]:
    """Each alternative's verdict record: ``judge(inputs, alternative plan)`` by name."""
    return {name: judge(inputs, alt) for name, alt in plan.alternatives()}


def sensitivity_record(record: dict, alts: dict[str, dict]) -> dict:
    """Per alternative: how many verdicts it judged, how many changed word, and which (group,
    comparison, metric, the alternative's verdict) — the record's ``sensitivity`` key, from
    which :func:`sensitivity_frame` makes the table."""
    base = flat(record)
    out = {}
    for name, alt in alts.items():
        other = flat(alt)
        changed = [{"group": g, "comparison": c, "metric": m, "verdict": other[k]["verdict"]}
                   for k in base if k in other
                   for g, c, m in [k] if other[k]["verdict"] != base[k]["verdict"]]
        out[name] = {"judged": sum(k in other for k in base), "changed": len(changed),
                     "which": changed}
    return out


def sensitivity_frame(record: dict) -> pd.DataFrame:
    """One row per comparison whose verdict changes under some alternative (the record's
    ``sensitivity``): group, comparison, metric, the plan's verdict (its method, n) and each
    alternative's word (``=`` where it is the plan's)."""
    base = flat(record)
    sens = record.get("sensitivity", {})
    moved: dict[tuple, dict] = {}
    for name, s in sens.items():
        for w in s["which"]:
            moved.setdefault((w["group"], w["comparison"], w["metric"]), {})[name] = w["verdict"]
    rows = []
    for k, words in moved.items():
        e = base[k]
        g, c, m = k
        rows.append({"group": g, "comparison": c, "metric": m,
                     "the plan's verdict": f"{e['verdict']} ({e['method']}, n {e['n']})",
                     **{name: words.get(name, "=") for name in sens}})
    return pd.DataFrame(rows, columns=["group", "comparison", "metric", "the plan's verdict",
                                       *sens])


def sensitivity_table(record: dict) -> Table:
    """:func:`sensitivity_frame` as the book's table, narrow enough for the column: one row per
    comparison whose verdict an alternative changes — the comparison, the plan's verdict and
    each alternative that changes it with its word — and how many keep their word."""
    df = sensitivity_frame(record)
    n = len(flat(record))
    if df.empty:
        return note(f"all {n} verdicts keep their word under every alternative of the plan")
    alts = list(df.columns[4:])
    short = pd.DataFrame({
        "comparison": [f"{r['group']}: {r['comparison']} ({r['metric']})"
                       for _, r in df.iterrows()],
        "the plan's verdict": df["the plan's verdict"],
        "changes to": ["; ".join(f"{w} ({a})" for a in alts if (w := r[a]) != "=")
                       for _, r in df.iterrows()]})
    return html_table(short, notes=f"{n - len(df)} of {n} verdicts keep their word under "
                                   "every alternative; the plan's verdict decides")
