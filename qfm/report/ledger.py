"""The intro's answer on two data sets and the claims ledger, read from verdict records.

Both tables take two groups of :func:`qfm.report.claims.verdict_record` — the world's main
group and the LIVEC group (``None`` or ``{}`` where LIVEC was never measured) — and never
compute a verdict themselves: every cell is an entry of ``results/verdicts.json`` as text.
JSON only (no torch).
"""

from __future__ import annotations

import pandas as pd

from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.claims import INTERACTION, json_entry
from qfm.report.tables import Table, html_table
from qfm.report.judging import judge_families

# (variant, reference, what the comparison asks) — the intro's attribution, in reading order
ATTRIBUTION = (
    ("gate", "baseline", "the gate (adaptive feature selection) over the baseline"),
    ("gate_qfm", "gate", "QFM's matching + perturbation over the gate"),
    ("full", "gate", "QFM-IQM (matching + perturbation + distillation) over the gate"),
    ("full", "gate_qfm", "distillation over QFM without it"),
    ("full", "baseline", "QFM-IQM over the baseline (credits QFM with the gate: never the "
                         "headline alone)"),
    ("gate_static", "baseline", "capacity control: a static per-channel scale over the "
                                "baseline"),
    ("gate_params", "baseline", "capacity control: the gate's extra parameters, no "
                                "selection, over the baseline"),
    ("gate", "gate_static", "selection per image over a static scale"),
    ("gate", "gate_params", "selection over as many extra parameters"),
)
NOT_MEASURED = "not measured yet"
TRAINED = ATTRIBUTION[:4]  # the fine-tuning regime's questions (baseline, gate, gate_qfm, full)
REGIME = "the upstream's last stage trained (the rest frozen), 5 paired seeds"


def entry_of(group: dict | None, variant: str, reference: str, metric: str = "test_srcc"):
    return ((group or {}).get(f"{variant}_vs_{reference}") or {}).get(metric)


def _p(p) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def cell(e: dict | None, missing: str = "not run") -> str:
    """One comparison as a short cell: ``+0.012 [+0.004, +0.020]``, or why there is none."""
    if e is None:
        return missing
    if e.get("ci_lo") is None or e.get("ci_hi") is None:
        return f"{e['delta']:+.3f} ({e['n']} seeds: no interval)"
    return f"{e['delta']:+.3f} [{e['ci_lo']:+.3f}, {e['ci_hi']:+.3f}]"


def reading_text(e: dict | None) -> str:
    """The yardstick reading as a phrase (``; paper's gain ruled out``), or nothing."""
    r = (e or {}).get("reading")
    return f"; paper's gain {r}" if r else ""


def verdict_cell(e: dict | None, missing: str = "not run") -> str:
    """``better (Holm p 0.003; 9/10 seeds ahead; paper's gain consistent)``, or why there
    is none."""
    if e is None:
        return missing
    return (f"{e['verdict']} (Holm p {_p(e.get('p_holm'))}; "
            f"{e.get('wins', 0)}/{e['n']} ahead{reading_text(e)})")


def short(e: dict | None, missing: str = "not run") -> str:
    """Verdict, interval and reading in one phrase: ``better, Δ +0.012 [+0.004, +0.020];
    paper's gain undecided``."""
    if e is None:
        return missing
    return f"{e['verdict']}, Δ {cell(e)}{reading_text(e)}"


def attribution_frame(world: dict | None, livec: dict | None,
                      comparisons=ATTRIBUTION, ci: str = "bootstrap-t") -> pd.DataFrame:
    """One row per comparison: its entries' Δ test SRCC [95 % CI] and verdict on the world and
    on LIVEC (:data:`NOT_MEASURED` where LIVEC has no record, "not run" where a variant did
    not run)."""
    lmiss = NOT_MEASURED if not livec else "not run"
    rows = []
    for v, r, what in comparisons:
        w, c = entry_of(world, v, r), entry_of(livec, v, r)
        rows.append({"comparison": f"{v} vs {r}", "what it asks": what,
                     f"world: Δ test SRCC [95 % {ci} CI]": cell(w),
                     "world: verdict": verdict_cell(w),
                     f"LIVEC: Δ test SRCC [95 % {ci} CI]": cell(c, lmiss),
                     "LIVEC: verdict": verdict_cell(c, lmiss)})
    return pd.DataFrame(rows)


def attribution_table(world: dict | None, livec: dict | None) -> Table:
    """The intro's two-column answer (:func:`attribution_frame`) as the book's table."""
    df = attribution_frame(world, livec).drop(columns="what it asks")  # the prose says it
    return html_table(df, numeric=["world: Δ test SRCC [95 % bootstrap-t CI]",
                                   "LIVEC: Δ test SRCC [95 % bootstrap-t CI]"],
                      notes="paired by seed (world: content splits; LIVEC: random 80/20 "
                            "splits); 95 % interval of the mean Δ (bootstrap-t at ten seeds, "
                            "t where degenerate); verdict from its test's p Holm-adjusted "
                            "within its group × metric; the reading against the paper's gain "
                            "(results/verdicts.json; the Analysis plan page)")


def regime_table(world: dict | None, livec: dict | None) -> Table:
    """The attribution under the fine-tuning regime (its groups of the verdict record)."""
    df = attribution_frame(world, livec, TRAINED, "t").drop(columns="what it asks")
    return html_table(df, numeric=["world: Δ test SRCC [95 % t CI]",
                                   "LIVEC: Δ test SRCC [95 % t CI]"],
                      notes=f"{REGIME}; each variant with its frozen study's tuned values; "
                            "paired by seed; at 5 seeds a t interval and t-test (the analysis "
                            "plan: bootstrap-t from ten), Holm within the regime's group × "
                            "metric")


def regime_record(frozen: pd.DataFrame, trained: pd.DataFrame, variants,
                  metric: str = "test_srcc", plan: Plan = PLAN, label: str = "trained") -> dict:
    """Does training (the tail; ``label`` whole: the whole upstream) change each variant?
    ``<v>_<label>_vs_frozen`` entries, paired by seed (the seeds both ran), one Holm family
    (``regime``); ``{}`` if either is empty."""
    if frozen is None or trained is None or frozen.empty or trained.empty:
        return {}
    both = pd.concat([frozen.assign(variant=frozen["variant"] + "·frozen"),
                      trained.assign(variant=trained["variant"] + f"·{label}")],
                     ignore_index=True)
    specs = [(f"{v}·{label}", f"{v}·frozen", metric, "regime") for v in variants]
    out = {}
    for e in judge_families(both, specs, plan=plan):
        v = e["variant"].split("·")[0]
        e = {**e, "variant": f"{v} ({label})", "reference": f"{v} (frozen)"}
        e.pop("words", None)
        out[f"{v}_{label}_vs_frozen"] = {metric: json_entry(e)}  # NaN as null
    return out


def regime_frame(world: dict, livec: dict, variants) -> pd.DataFrame:
    """Trained minus frozen, per variant, on the world and on LIVEC (:func:`regime_record`)."""
    lmiss = NOT_MEASURED if not livec else "not run"
    rows = []
    for v in variants:
        w = ((world or {}).get(f"{v}_trained_vs_frozen") or {}).get("test_srcc")
        c = ((livec or {}).get(f"{v}_trained_vs_frozen") or {}).get("test_srcc")
        rows.append({"variant": v, "world: trained − frozen": cell(w),
                     "world: verdict": verdict_cell(w),
                     "LIVEC: trained − frozen": cell(c, lmiss),
                     "LIVEC: verdict": verdict_cell(c, lmiss)})
    return pd.DataFrame(rows)


def _share_text(rows: pd.DataFrame | None) -> str:
    if rows is None or not len(rows) or "share_upstream" not in rows:
        return NOT_MEASURED
    s = rows.loc[rows["variant"] == "baseline", "share_upstream"].dropna()
    if s.empty:
        return NOT_MEASURED
    return (f"observed: {s.mean():.1%} of the closest test pairs differ by > 0.2 in quality "
            f"(mean over {len(s)} seeds; descriptive, no test)")


# the regimes of the ledger's cells: (label, the world's record key, LIVEC's record key)
REGIMES = (("frozen", "main", "livec"), ("last stage", "finetune", "livec_finetune"),
           ("whole upstream", None, "livec_whole"))


def by_regime(record: dict, data: str, variant: str, reference: str,
              metric: str = "test_srcc", main: str = "main") -> str:
    """One comparison in every regime of one data set (``world`` or ``LIVEC``): ``frozen:
    better, Δ … ; last stage: …; whole upstream: not measured yet`` (a regime the data set
    does not have is left out)."""
    parts = []
    for label, wkey, lkey in REGIMES:
        key = (main if wkey == "main" else wkey) if data == "world" else lkey
        if key is None:
            continue
        group = record.get(key)
        missing = NOT_MEASURED if not group else "not run"
        parts.append(f"{label}: {short(entry_of(group, variant, reference, metric), missing)}")
    return "; ".join(parts)


def ledger_frame(record: dict, main: str = "main", world_rows: pd.DataFrame | None = None,
                 livec_rows: pd.DataFrame | None = None, plan: Plan = PLAN) -> pd.DataFrame:
    """The claims ledger: one row per claim of the paper, the test run here, and its result on
    the world and on LIVEC in every regime (:data:`REGIMES`: frozen, last stage trained, whole
    upstream trained from pixels), each with its verdict, Δ [95 % CI] and the reading against
    the paper's gain.

    Args:
        record: the verdict record (:mod:`qfm.report.verdicts`); ``main``: its world group.
        world_rows, livec_rows: the frozen groups' run rows (the upstream's noise share).
    """
    def both(v, r, metric="test_srcc"):
        return (by_regime(record, "world", v, r, metric, main),
                by_regime(record, "LIVEC", v, r, metric, main))

    sweep = (record.get(INTERACTION) or {}).get("gate_qfm_vs_gate", {}).get("test_srcc")
    livec = record.get("livec")
    w_share, l_share = both("gate_qfm", "gate", "share")
    rows = [
        ("Semantic noise exists in upstream features",
         "semantic-noise share of the frozen upstream's pooled tokens on each test part",
         _share_text(world_rows), _share_text(livec_rows) if livec else NOT_MEASURED),
        ("QFM reduces the model's sensitivity to semantic noise",
         "gate_qfm vs gate: semantic-noise share of the head's embedding (lower = less "
         "sensitive); world also: slope of gate_qfm − gate test SRCC over the spurious knob",
         w_share + "; sweep (frozen): " + (short(sweep) if sweep else "not run"), l_share),
        ("The gate selects useful features",
         "gate vs baseline (test SRCC); frozen also: gate vs the capacity controls "
         "gate_static, gate_params",
         *[b + "; " + "; ".join(f"gate vs {c} (frozen): {short(entry_of(g, 'gate', c), m)}"
                                for c in ("gate_static", "gate_params"))
           for b, g, m in zip(both("gate", "baseline"), (record.get(main), livec),
                              ("not run", NOT_MEASURED if not livec else "not run"))]),
        ("QFM (matching + adversarial perturbation) adds over the gate",
         "gate_qfm vs gate (test SRCC)", *both("gate_qfm", "gate")),
        ("Distillation (an expanded data set) improves generalisation",
         "full vs gate_qfm (test SRCC)", *both("full", "gate_qfm")),
        (f"QFM-IQM beats its baseline (the paper: +{plan.yardstick:.3f} SRCC over DEIQT on "
         "LIVEC)",
         "full vs baseline (test SRCC): credits QFM with the gate's gain too",
         *both("full", "baseline")),
        ("Better than the state of the art on 8 data sets",
         "not tested: needs the 8 data sets, a GPU and a fine-tuned ViT-S backbone",
         "not tested", "not tested (ours beside the published numbers: Results on LIVEC)"),
    ]
    return pd.DataFrame(rows, columns=["claim of the paper", "test here", "world", "LIVEC"])


def ledger_table(*args, **kwargs) -> Table:
    """:func:`ledger_frame` as the book's table."""
    return html_table(ledger_frame(*args, **kwargs),
                      notes="verdict, paired Δ [95 % interval] over seeds and the reading "
                            "against the paper's gain, per regime: frozen ImageNet "
                            "EfficientNet-Lite0 with head-only training; its last stage "
                            "trained too; the whole upstream trained from pixels (LIVEC). "
                            "World = the embedded default (pseudo-MOS); LIVEC = 930 of its "
                            "1,162 photos, human MOS")
