"""Every comparison the book states, as one record: which comparisons, their Holm families,
``results/verdicts.json`` (DVC metrics) and the answer lines glued into the prose.

Judged by :mod:`qfm.report.verdict` under the analysis plan: paired by seed, a 95 % interval
of the mean Δ (bootstrap-t from ten seeds, t below or where degenerate), its test's p
Holm-adjusted within the comparison's family (it decides the verdict), the Wilcoxon
signed-rank p beside it from eight seeds, and the reading against the paper's gain. The tables
of :mod:`qfm.report.study` read this record, so a table and a glued line never disagree.

Holm families: as the analysis plan says (``analysis_plan.yaml``, :mod:`qfm.report.analysis_plan`:
one family per group × metric). :func:`apply_plan` sets each entry's family, Holm p, verdict
and yardstick reading over the whole record, so families may span groups (the plan's
``pooled`` alternative). Each comparison also has a *declared* family, the question it belongs
to (the first listing it; one whose two variants did not both run is left out) — the
sensitivity table's ``declared families`` alternative Holm-adjusts within these:

* ``intro`` (test SRCC): gate vs baseline, gate_qfm vs gate, full vs gate, full vs baseline —
  the answer on the book's first page.
* ``attribution`` (test SRCC): full vs gate_qfm (what distillation adds), then the ablation
  ladder's other rungs, each vs the rung below.
* ``controls`` (test SRCC): rho0, random_partner, random_direction, each vs gate_qfm.
* ``capacity`` (test SRCC): gate_static and gate_params vs baseline; gate vs each of them.
* ``variants`` (test SRCC): every other variant vs baseline.
* ``heldout`` (held-out SRCC): every variant vs baseline.
* ``share`` (semantic-noise share; ``higher`` / ``lower``): the pairs of ``intro``.

Across the sweep groups (record key ``sweep_interaction``): family ``sweep`` — per seed, the
least-squares slope over the spurious strengths of (gate_qfm − gate) and of (full − gate),
then a bootstrap-t interval over seeds (``grows`` / ``shrinks``: does the advantage over the
gate grow with the knob); family ``sweep_baseline`` — the same for each sweep variant − baseline.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.glossary import metric_label
from qfm.report.tables import ci_text
from qfm.report.judging import judge_families, judge_slopes
from qfm.report.verdict import MIN_SEEDS, holm, verdict

INTRO = (("gate", "baseline"), ("gate_qfm", "gate"), ("full", "gate"), ("full", "baseline"))
# the answer at a glance (the intro's forest figure): each part, the total, the capacity control
HEADLINE = (("gate", "baseline"), ("gate_qfm", "gate"), ("full", "gate_qfm"),
            ("full", "baseline"), ("gate", "gate_params"))
INTERACTION = "sweep_interaction"  # the record's key of the slopes over the sweep
NOT_METHOD = ("regime", "toy", INTERACTION)  # groups of no method's gain: no yardstick reading
CONTROLS = ("rho0", "random_partner", "random_direction")  # each vs gate_qfm
CAPACITY = ("gate_static", "gate_params")  # each vs baseline, and gate vs each
SWEEP = (("gate_qfm", "gate"), ("full", "gate"))  # their interaction with the spurious strength
WORDS = {"share": ("higher", "lower")}  # metrics that are not "higher is better"
FIELDS = ("variant", "reference", "metric", "n", "delta", "ci_lo", "ci_hi", "method", "p",
          "p_wilcoxon", "p_holm", "family", "wins", "verdict", "reading")
NUMBERS = ("delta", "ci_lo", "ci_hi", "p", "p_wilcoxon", "p_holm")


def comparisons(variants, ladder=()) -> list[tuple[str, str, str, str]]:
    """(variant, reference, metric, declared family) of every comparison the book states about
    one group whose two variants ran, each once (families: the module docstring)."""
    others = [v for v in variants if v != "baseline"]
    specs = [(v, r, "test_srcc", "intro") for v, r in INTRO]
    specs += [(b, a, "test_srcc", "attribution")
              for a, b in [("gate_qfm", "full"), *zip(ladder, list(ladder)[1:])]]
    specs += [(c, "gate_qfm", "test_srcc", "controls") for c in CONTROLS]
    specs += [(c, "baseline", "test_srcc", "capacity") for c in CAPACITY]
    specs += [("gate", c, "test_srcc", "capacity") for c in CAPACITY]
    specs += [(v, "baseline", "test_srcc", "variants") for v in others]
    specs += [(v, "baseline", "heldout_srcc", "heldout") for v in others]
    specs += [(v, r, "share", "share") for v, r in INTRO]
    ran, seen, out = set(variants), set(), []
    for v, r, m, f in specs:
        if v in ran and r in ran and v != r and (v, r, m) not in seen:
            seen.add((v, r, m))
            out.append((v, r, m, f))
    return out


def json_entry(e: dict) -> dict:
    """A verdict entry with NaN as null and numpy scalars as Python numbers."""
    return {k: None if isinstance(v, float) and math.isnan(v) else
            (v.item() if isinstance(v, np.generic) else v) for k, v in e.items()}


def verdict_record(rows: pd.DataFrame, groups: dict[str, list], ladder=(), sweep=(),
                   sweep_groups=None, plan: Plan = PLAN) -> dict:
    """Every verdict the book states, as a DVC metrics mapping (``results/verdicts.json``).

    Args:
        rows: the run rows of ``groups`` (:func:`load_rows`), one spurious strength each.
        groups: study group → its variants.
        ladder: the ablation ladder (params ``figures.ladder``).
        sweep: the sweep's variants (their slopes against the baseline, ``sweep_baseline``).
        sweep_groups: the groups whose strengths make the sweep (default: all of ``groups``).
    Returns:
        ``{group: {"spurious": s, "means": {variant: {metric: {mean, sd}}},
        "<variant>_vs_<reference>": {metric: entry}}, "sweep_interaction":
        {"<variant>_vs_<reference>": {metric: entry}}}``; an entry holds variant, reference,
        metric, n, delta, ci_lo, ci_hi, method, p, p_wilcoxon, p_holm, family, wins, verdict
        (NaN as null); in ``sweep_interaction`` delta is the mean per-seed slope of Δ per unit
        strength and ``strengths`` lists the strengths.
    """
    out = {}
    for g, variants in groups.items():
        sub = rows[rows["group"] == g]
        ran = [v for v in variants if v in set(sub["variant"])]
        means = {v: {m: json_entry({"mean": float(x.mean()), "sd": float(x.std(ddof=1))})
                     for m in ("test_srcc", "heldout_srcc") if m in sub
                     for x in [sub.loc[sub["variant"] == v, m].dropna()]} for v in ran}
        rec = {"spurious": float(sub["spurious"].iloc[0]), "means": means}
        for e in judge_families(sub, comparisons(ran, ladder), WORDS, plan):
            rec.setdefault(f"{e['variant']}_vs_{e['reference']}", {})[e["metric"]] = json_entry(e)
        out[g] = rec
    srows = rows if sweep_groups is None else rows[rows["group"].isin(list(sweep_groups))]
    inter = judge_slopes(srows, SWEEP, "sweep", plan=plan) + judge_slopes(
        srows, [(v, "baseline") for v in sweep], "sweep_baseline", plan=plan)
    out[INTERACTION] = {}
    for e in inter:
        out[INTERACTION].setdefault(f"{e['variant']}_vs_{e['reference']}", {})[
            e["metric"]] = json_entry(e)
    return apply_plan(out, plan)


def entries(record: dict, path: tuple = ()):
    """Every comparison entry of a verdict record: (group path, entry) pairs, the group path
    being the keys above the entry's comparison and metric keys (``("main",)``,
    ``("regime", "livec")``)."""
    for k, v in record.items():
        if isinstance(v, dict) and "verdict" in v and "n" in v:
            yield path[:-1], v
        elif isinstance(v, dict):
            yield from entries(v, (*path, k))


def apply_plan(record: dict, plan: Plan = PLAN) -> dict:
    """Set every entry's ``family`` (the plan's), ``p_holm`` (Holm within it), ``verdict`` and
    yardstick ``reading`` (``ruled out`` / ``consistent`` / ``undecided``, null where the
    comparison is not a method's gain: regimes, upstreams, sweep slopes) over the whole
    record, in place; returns it. Idempotent: the declared family is kept as ``question``."""
    found = list(entries(record))
    fams: dict[str, list[dict]] = {}
    for gpath, e in found:
        e.setdefault("question", e.get("family"))
        group = "/".join(gpath)
        fams.setdefault(plan.family_key(group, e["metric"], e["question"]), []).append(e)
        method = gpath and gpath[0] not in NOT_METHOD
        e["reading"] = (plan.reading(e["ci_lo"], e["ci_hi"], e["n"])
                        if method and e["metric"] in plan.yardstick_metrics else None)
        e["yardstick"] = plan.yardstick if e["reading"] else None
    for fam, members in fams.items():
        for e, ph in zip(members, holm([_num(e["p"]) for e in members])):
            words = ("grows", "shrinks") if "slope" in str(e.get("method")) else WORDS.get(
                e["metric"], ("better", "worse"))
            e["family"] = fam
            e["p_holm"] = None if math.isnan(ph) else float(ph)
            e["verdict"] = ("too few seeds" if e["n"] < plan.min_seeds or e["ci_lo"] is None
                            else verdict(e["ci_lo"], e["ci_hi"], _num(e["p_holm"]), words, plan))
    return record


def record_frame(group: dict, variants, reference: str = "baseline",
                 metric: str = "test_srcc") -> pd.DataFrame:
    """The record's comparisons of ``variants`` with ``reference`` on ``metric`` (those it
    holds), in that order, null as NaN, with the Δ [CI] text (``delta_ci``).

    Args:
        group: one group of :func:`verdict_record`.
    """
    found = [group[f"{v}_vs_{reference}"][metric] for v in variants
             if metric in group.get(f"{v}_vs_{reference}", {})]
    df = pd.DataFrame(found, columns=list(FIELDS))
    df[list(NUMBERS)] = df[list(NUMBERS)].astype(np.float64)
    df["delta_ci"] = [ci_text(r.delta, r.ci_lo, r.ci_hi) for r in df.itertuples()]
    return df


def _p_text(p) -> str:
    return "= –" if _num(p) != _num(p) else ("< 0.001" if p < 0.001 else f"= {p:.3f}")


def _num(x) -> float:
    return float("nan") if x is None else float(x)


def answer(row, metric: str | None = None, label: str | None = None) -> str:
    """One line: the verdict, then the evidence — ``better (Δ test SRCC +0.012, 95 %
    bootstrap-t CI [+0.004, +0.020], Holm p = 0.003, Wilcoxon p = 0.004, 10 paired seeds)``.

    Args:
        row: a record entry (dict) or a comparison row (its ``metric`` names the metric).
        metric: overrides the row's metric in the text; ``label`` replaces "Δ <metric>".
    """
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    what = label or f"Δ {metric_label(metric or get('metric', 'test_srcc'))}"
    n, delta, lo, hi = int(get("n")), _num(get("delta")), _num(get("ci_lo")), _num(get("ci_hi"))
    seeds = f"{n} paired seed{'s' if n != 1 else ''}"
    if get("strengths"):
        seeds += f", spurious strengths {get('strengths')}"
    if n < MIN_SEEDS or math.isnan(lo):
        return f"{get('verdict')} ({what} {delta:+.3f}, {seeds}: too few for an interval)"
    kind = str(get("method") or "bootstrap-t").split()[0]  # bootstrap-t, or t below 10 seeds
    pw = _num(get("p_wilcoxon"))  # shown from the plan's wilcoxon_from seeds only
    wil = "" if math.isnan(pw) else f", Wilcoxon p {_p_text(pw)}"
    read = f", paper's gain {get('reading')}" if get("reading") else ""
    return (f"{get('verdict')} ({what} {delta:+.3f}, 95 % {kind} CI [{lo:+.3f}, {hi:+.3f}], "
            f"Holm p {_p_text(get('p_holm'))}{wil}, {seeds}{read})")


def interaction_answer(record: dict, variant: str, reference: str = "gate",
                       metric: str = "test_srcc") -> str:
    """The answer line of one sweep interaction (slope of Δ over the spurious strength), or
    why there is none."""
    e = record.get(INTERACTION, {}).get(f"{variant}_vs_{reference}", {}).get(metric)
    if e is None:
        return (f"not measured: {variant} and {reference} ran together at fewer than two "
                "spurious strengths")
    return answer(e, label=f"slope of Δ {metric_label(metric)} per unit spurious strength")


def answer_of(group: dict, variant: str, reference: str = "baseline",
              metric: str = "test_srcc") -> str:
    """The answer line of one comparison of a :func:`verdict_record` group, or why there is
    none."""
    e = group.get(f"{variant}_vs_{reference}", {}).get(metric)
    return answer(e) if e is not None else f"not run: {variant} vs {reference} (not both run)"


def entry(row, family: str) -> dict:
    """A :func:`qfm.report.verdict.compare` row as a record entry of ``family`` (a comparison
    made outside :func:`verdict_record`, e.g. across upstreams)."""
    return json_entry({k: (family if k == "family" else getattr(row, k, None)) for k in FIELDS})
