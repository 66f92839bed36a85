"""The tuning trials as the book reads them: ``results/study/tune.json`` (written by the
stage ``tune``, :func:`qfm.study.tune.tune`) in the order the knobs were tuned, the table,
the chosen values and whether a choice sits at the edge of the range tried.

``tune.json`` keeps one record per knob and target variant in ``knobs`` (``tuned`` with its
grid, the values the edge rule added and the value chosen, or ``fixed by params.yaml``) and
every trial in ``trials`` (``knob``, ``variant``, the knob values it ran with, ``val_srcc``,
``reused`` when an earlier trial ran the same configuration).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qfm.knobs import symbol
from qfm.report.tables import Table, html_table
from qfm.study.show import chosen_text  # noqa: F401 (the book reads chosen_text here)


def tuning_frame(tune: dict, defaults: dict | None = None) -> pd.DataFrame:
    """The tuning trials, one row per value tried, in the order tuned.

    Args:
        tune: ``tune.json``.
        defaults: unused (kept for the notebooks' calls; the trials now carry every value).
    Returns:
        ``step, key, value, variant, val_srcc, best_is_last, chosen, reused``; ``step`` names
        the knob and the variant it was tuned on.
    """
    chosen = {(k["knob"], k["on"]): k["value"] for k in tune.get("knobs", [])
              if k.get("status") == "tuned"}
    out = []
    for t in tune["trials"]:
        key, v = t["knob"], t["variant"]
        out.append({"step": f"{symbol(key)} ({v})", "key": key, "value": t[key],
                    "variant": v, "val_srcc": t["val_srcc"],
                    "best_is_last": t.get("best_is_last", np.nan),
                    "chosen": t[key] == chosen.get((key, v)),
                    "reused": bool(t.get("reused"))})
    return pd.DataFrame(out, columns=["step", "key", "value", "variant", "val_srcc",
                                      "best_is_last", "chosen", "reused"])


def tuning_table(frame: pd.DataFrame, seeds) -> Table:
    """The tuning trials as the book shows them (chosen on validation, never on test)."""
    df = pd.DataFrame({
        "tuned": frame["step"], "on": frame["variant"],
        "value": [f"{v:g}" + (" *" if r else "") for v, r in zip(frame["value"],
                                                                 frame["reused"])],
        "validation SRCC": frame["val_srcc"],
        "best epoch = last": frame["best_is_last"],
        "chosen": ["chosen" if c else "" for c in frame["chosen"]]})
    return html_table(df, {"best epoch = last": ".0%"}, numeric=["value"],
                      notes=f"validation SRCC: mean over the tuning seeds "
                            f"({', '.join(map(str, seeds))}), on contents no reported seed "
                            f"tests on; test is never read. * the same runs as an earlier "
                            f"trial, reused")


def edge_text(frame: pd.DataFrame) -> str:
    """A sentence naming the tuned knobs whose chosen value is the lowest or highest tried
    (the best may lie beyond it: the tuner extends a grid only so often, and not past 0),
    or saying that none is."""
    edges, off = [], []
    for step, g in frame.groupby("step", sort=False):
        g = g.drop_duplicates("value")
        if len(g) < 3 or not g["chosen"].any():
            continue
        v = float(g.loc[g["chosen"], "value"].iloc[0])
        if v == 0 == g["value"].min():  # 0 switches the knob's part off: nothing lies below
            off.append(step)
        elif v in (g["value"].min(), g["value"].max()):
            edges.append(f"{step} ({'lowest' if v == g['value'].min() else 'highest'})")
    head = (f"Chosen at 0, the value that switches its part off (nothing lies below it): "
            f"{', '.join(off)}. ") if off else ""
    if edges:
        return head + (f"Chosen at the edge of the range tried: {', '.join(edges)} — the best "
                       f"value may lie beyond it.")
    return head + f"Every {'other ' if off else ''}chosen value lies inside the range tried."


def qfm_term_text(tune: dict | None, variant: str = "gate_qfm") -> str:
    """What tuning did to QFM's own term: switched off (λ_qfm = 0 chosen on validation, so
    ``gate_qfm`` and its controls train exactly as ``gate``) or kept on, with its value."""
    if not tune:
        return "not measured yet"
    lam = (tune.get("chosen", {}).get(variant) or {}).get("qfm.lambda_qfm")
    if lam is None:
        return "λ_qfm was fixed by params.yaml, not tuned"
    if float(lam) == 0.0:
        return ("validation switched QFM's term off (λ_qfm = 0 chosen), so gate_qfm and its "
                "controls train exactly as gate does: their Δ over gate is 0 by construction")
    rho = (tune.get("chosen", {}).get(variant) or {}).get("qfm.rho")
    if rho is not None and float(rho) == 0.0:  # the term without its semantic perturbation
        return (f"validation kept QFM's term on (λ_qfm = {float(lam):g} chosen) but switched "
                f"its perturbation off (ρ = 0 chosen): gate_qfm trains as the rho0 control")
    return f"validation kept QFM's term on (λ_qfm = {float(lam):g} chosen)"


def architecture_table(probe: dict | None, current: dict | None = None) -> Table:
    """The head's fixed sizes against their alternatives on validation
    (``benchmarks/results/architecture_choices.json``), or a note that the probe never ran.
    ``current``: params.yaml's values now (``{key: value}``); a size adopted after the probe
    (validation's choice) is marked used, and the note names the values the probe ran with."""
    if not probe:
        return html_table(pd.DataFrame({"setting": ["not measured yet (benchmarks/"
                                                    "architecture_choices.py)"]}))
    df = pd.DataFrame(probe["rows"])
    current = current or {}
    used = [current[k] == v if k in current else u
            for k, v, u in zip(df["key"], df["value"], df["in_params"])]
    top = df.groupby("key")["val_srcc"].transform("max")
    tied = df.groupby("key")["val_srcc"].transform(lambda v: np.ptp(v) < 1e-9)
    out = pd.DataFrame({
        "setting": df["key"], "probed on": df["variant"],
        "value": [f"{v:g}" for v in df["value"]], "validation SRCC": df["val_srcc"],
        "params.yaml": ["used" if u else "" for u in used],
        "validation": ["all equal" if t else ("best" if v >= m - 1e-12 else "")
                       for v, m, t in zip(df["val_srcc"], top, tied)]})
    then = df[df["in_params"]]
    moved = [f"{k} {v:g}" for k, v in zip(then["key"], then["value"])
             if k in current and current[k] != v]
    sizes = ", ".join(f"{k} {v:g}" for k, v in zip(then["key"], then["value"]))
    return html_table(out, {"validation SRCC": ".4f"}, numeric=["value", "validation SRCC"],
                      notes=f"mean validation SRCC over the tuning seeds "
                            f"({', '.join(map(str, probe['seeds']))}) on the tuner's splits, "
                            f"each variant at its tuned values; test is never read. "
                            f"qfm.anchors 0 = every anchor. The probes ran with params.yaml's "
                            f"sizes of the time ({sizes}) "
                            f"and the rates tuned with them" + ("" if moved else ".")
                            + (f"; validation's choice replaced {', '.join(moved)} after the "
                               f"probe, and the study was tuned and run again with it."
                               if moved else ""))
