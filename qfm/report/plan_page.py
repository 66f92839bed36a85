"""The book's "Analysis plan" page: the plan's history (which version judged the verdicts,
fixed in which commit) and the facts its prose quotes. The page prints ``analysis_plan.yaml``
itself; the sensitivity table comes from :mod:`qfm.report.sensitivity`. JSON only (no torch).
"""

from __future__ import annotations

import pandas as pd

from qfm.paper import DEIQT_REPORTED, PAPER_REPORTED
from qfm.report.analysis_plan import Plan
from qfm.report.tables import Table, html_table, note


def history_table(plan: Plan) -> Table:
    """One row per version of the plan: version, date, the rules' SHA-256 (first 12), the
    commit that fixed it, and why."""
    if not plan.history:
        return note("the plan file has no history")
    df = pd.DataFrame([{"version": h.get("version"), "date": h.get("date"),
                        "rules (SHA-256)": str(h.get("sha256", ""))[:12],
                        "fixed in commit": str(h.get("commit", ""))[:10],
                        "why": h.get("note", "")} for h in plan.history])
    return html_table(df, formats={"version": "d"},
                      notes="the SHA-256 of every rule but this history "
                            "(tests/report/test_analysis_plan.py checks the last one)")


def plan_values(plan: Plan) -> dict[str, str]:
    """``plan_version``, ``plan_commit``, ``plan_date`` (the last history entry), the rules
    the prose names (``plan_alpha``, ``plan_yardstick``, ``plan_boot_from``,
    ``plan_wilcoxon_from``) and the reported numbers the yardstick comes from
    (``plan_paper_srcc``, ``plan_deiqt_srcc``: LIVEC, :mod:`qfm.paper`)."""
    last = plan.history[-1] if plan.history else {}
    paper = PAPER_REPORTED.set_index("dataset").loc["LIVEC", "paper_srcc"]
    deiqt = DEIQT_REPORTED.set_index("dataset").loc["LIVEC", "deiqt_srcc"]
    commit = str(last.get("commit", "–"))
    return {"plan_version": str(last.get("version", "–")),
            "plan_commit": commit[:10] if commit != "pending" else "(not yet committed)",
            "plan_date": str(last.get("date", "–")), "plan_alpha": f"{plan.alpha:g}",
            "plan_yardstick": f"+{plan.yardstick:.3f}",
            "plan_boot_from": str(plan.bootstrap_t_from),
            "plan_wilcoxon_from": str(plan.wilcoxon_from),
            "plan_paper_srcc": f"{paper:.3f}", "plan_deiqt_srcc": f"{deiqt:.3f}"}
