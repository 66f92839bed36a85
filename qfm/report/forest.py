"""The answer at a glance: every headline comparison × data set × regime as one forest plot, and
the five-sentence answer above it, both read from the verdict record (never typed).

Headline comparisons (:data:`qfm.report.claims.HEADLINE`): each part over the one below it
(gate vs baseline, gate_qfm vs gate, full vs gate_qfm), the total (full vs baseline) and the
capacity control (gate vs gate_params). Data sets × regimes (:data:`CELLS`): the world and
LIVEC, each with a frozen upstream and with its last stage trained, and LIVEC with the whole
upstream trained from pixels where that group has rows. Each row: the mean paired Δ test SRCC
with its interval, coloured by verdict; the paper's reported gain (the analysis plan's
yardstick) is drawn as a reference line. JSON and matplotlib only (no torch).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.claims import HEADLINE
from qfm.report.figures import (
    MAX_WIDTH,
    MIN_FONT,
    VERDICT_COLOURS,
    VERDICT_TEXT,
    plt,
    save_figure,
    styled,
)
from qfm.report.tables import Table

# (record key, data set, regime): the groups of the verdict record the forest reads
CELLS = (("main", "world", "frozen"), ("finetune", "world", "last stage"),
         ("livec", "LIVEC", "frozen"), ("livec_finetune", "LIVEC", "last stage"),
         ("livec_whole", "LIVEC", "whole upstream"))
MARKERS = {"world": "o", "LIVEC": "D"}


def forest_frame(record: dict, metric: str = "test_srcc") -> pd.DataFrame:
    """One row per headline comparison × data set × regime that the record holds: comparison,
    data, regime, n, delta, ci_lo, ci_hi, method, verdict, reading (NaN for a null)."""
    rows = []
    for v, r in HEADLINE:
        for key, data, regime in CELLS:
            e = (record.get(key) or {}).get(f"{v}_vs_{r}", {}).get(metric)
            if e is None:
                continue
            rows.append({"comparison": f"{v} vs {r}", "data": data, "regime": regime,
                         "n": e["n"], "delta": e["delta"],
                         **{k: math.nan if e.get(k) is None else e[k]
                            for k in ("ci_lo", "ci_hi")},
                         "method": e.get("method") or "", "verdict": e["verdict"],
                         "reading": e.get("reading")})
    return pd.DataFrame(rows, columns=["comparison", "data", "regime", "n", "delta", "ci_lo",
                                       "ci_hi", "method", "verdict", "reading"])


@styled
def forest_figure(frame: pd.DataFrame, path: str | Path, plan: Plan = PLAN) -> Path:
    """The forest plot of :func:`forest_frame`: one line per row, grouped by comparison (in
    :data:`HEADLINE` order), the interval coloured by verdict, the marker by data set, the
    reading against the paper's gain written at the right; lines at 0 and at the yardstick."""
    n = len(frame)
    fig, ax = plt.subplots(figsize=(MAX_WIDTH, 0.34 * n + 1.9))
    y, ticks, labels, group_rows = 0.0, [], [], []
    for comp, sub in frame.groupby("comparison", sort=False):
        group_rows.append((y, comp))
        y += 0.75  # room for the comparison's heading
        for r in sub.itertuples():
            c = VERDICT_COLOURS.get(r.verdict, "k")
            if not math.isnan(r.ci_lo):
                ax.plot([r.ci_lo, r.ci_hi], [y, y], color=c, lw=3, solid_capstyle="butt",
                        zorder=3)
            ax.scatter([r.delta], [y], marker=MARKERS.get(r.data, "s"), s=40, color=c,
                       edgecolor="k", lw=0.6, zorder=4)
            ax.annotate(r.reading or "–", (1.01, y), xycoords=("axes fraction", "data"),
                        va="center", fontsize=MIN_FONT, color=VERDICT_TEXT.get(r.verdict, "k"))
            ticks.append(y)
            labels.append(f"{r.data} · {r.regime} · n {r.n}")
            y += 1.0
        y += 0.35
    for gy, comp in group_rows:
        ax.annotate(comp, (0.0, gy + 0.2), xycoords=("axes fraction", "data"),
                    fontweight="bold", fontsize=MIN_FONT + 0.5, va="center")
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(plan.yardstick, color="tab:purple", lw=1.2, ls="--",
               label=f"paper's gain +{plan.yardstick:.3f}")
    ax.set_yticks(ticks, labels)
    ax.set_ylim(y - 0.35, -0.3)
    ax.set_xlabel("paired Δ test SRCC (mean over seeds, 95 % interval)")
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Line2D([], [], color=VERDICT_COLOURS[v], lw=3, label=v)
               for v in ("better", "no difference detected", "worse")]
    handles += [plt.Line2D([], [], ls="", marker=m, color="0.4", label=d)
                for d, m in MARKERS.items()]
    handles.append(ax.get_legend_handles_labels()[0][0])
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.35, -0.09),
              frameon=False, ncol=3, fontsize=MIN_FONT, columnspacing=1.0)
    ax.annotate("vs the paper's\ngain", (1.01, 0.0), xycoords=("axes fraction", "data"),
                va="bottom", fontsize=MIN_FONT, fontstyle="italic")
    return save_figure(fig, path)


# what each headline comparison asks, in plain words (the answer's sentences open with it)
ASKS = {"gate vs baseline": "The gate (adaptive feature selection) over the baseline",
        "gate_qfm vs gate": "QFM's matching and perturbation over the gate",
        "full vs gate_qfm": "Distillation over QFM without it",
        "full vs baseline": "The whole method, QFM-IQM, over the baseline",
        "gate vs gate_params": ("The gate over a head given as many extra parameters "
                                "(selection, not capacity)")}
READS = {"ruled out": "the paper's gain ruled out",
         "consistent": "consistent with the paper's gain",
         "undecided": "the paper's gain neither shown nor ruled out"}


def _cell(r, reading: bool) -> str:
    ci = "" if math.isnan(r.ci_lo) else f" [{r.ci_lo:+.3f}, {r.ci_hi:+.3f}]"
    read = f", {READS[r.reading]}" if reading and r.reading in READS else ""
    return f"{r.regime} Δ {r.delta:+.3f}{ci}{read}"


def answer_sentences(frame: pd.DataFrame) -> list[str]:
    """One sentence per headline comparison of :func:`forest_frame`: its verdict on each data
    set, the mean paired Δ test SRCC and interval per regime, and the reading against the
    paper's gain (once, where every regime reads alike) — e.g. ``The gate … over the
    baseline: better on the world (frozen Δ +0.041 [+0.024, +0.073]; last stage Δ +0.079
    [+0.036, +0.122]), consistent with the paper's gain; …``."""
    out = []
    for comp, sub in frame.groupby("comparison", sort=False):
        parts = []
        for (data, verdict), cells in sub.groupby(["data", "verdict"], sort=False):
            same = cells["reading"].nunique(dropna=False) == 1
            text = (f"{verdict} on {'the world' if data == 'world' else data} ("
                    + "; ".join(_cell(r, not same) for r in cells.itertuples()) + ")")
            if same and cells["reading"].iloc[0] in READS:
                text += f", {READS[cells['reading'].iloc[0]]}"
            parts.append(text)
        out.append(f"{ASKS.get(comp, comp)}: " + "; ".join(parts) + ".")
    return out


def lead_sentence(frame: pd.DataFrame) -> str:
    """The answer in one line: did QFM-IQM beat its baseline on LIVEC (each regime measured,
    with its reading against the paper's gain), and where any gain was detected at all."""
    fb = frame[(frame["comparison"] == "full vs baseline") & (frame["data"] == "LIVEC")]
    if fb.empty:
        first = "QFM-IQM against its baseline on LIVEC is not measured yet"
    else:
        won = fb[fb["verdict"] == "better"]
        regimes = "; ".join(f"{r.regime}: {r.verdict}, {READS.get(r.reading, 'no reading')}"
                            for r in fb.itertuples())
        first = ("On LIVEC's human opinion scores QFM-IQM " +
                 ("beat its baseline in " + ", ".join(won["regime"]) if len(won) else
                  "did not beat its baseline in any regime measured") + f" ({regimes})")
    gains = frame[frame["verdict"] == "better"]
    if gains.empty:
        second = "no comparison detected a gain anywhere"
    else:
        where = {}
        for r in gains.itertuples():
            where.setdefault(r.comparison, []).append(f"{r.data} {r.regime}")
        second = "gains were detected only for " + "; ".join(
            f"{c} ({', '.join(w)})" for c, w in where.items())
    return f"{first}; {second}."


def scope_sentence(frame: pd.DataFrame, plan: Plan = PLAN) -> str:
    """How sure, and what is not measured: seeds, intervals, families, the yardstick, and the
    regimes with no rows yet."""
    ran = set(zip(frame["data"], frame["regime"]))
    missing = [f"{d}, {g}" for _, d, g in CELLS if (d, g) not in ran]
    seeds = sorted({int(n) for n in frame["n"]})
    text = (f"How sure: paired seeds ({' or '.join(map(str, seeds))} per comparison), 95 % "
            f"intervals (bootstrap-t from {plan.bootstrap_t_from} seeds, t below), verdicts "
            f"Holm-adjusted within each group × metric; the yardstick is the paper's reported "
            f"gain, +{plan.yardstick:.3f} test SRCC on LIVEC (the analysis plan).")
    if missing:
        text += f" Not measured yet: {'; '.join(missing)}."
    return text


def answer_block(frame: pd.DataFrame, plan: Plan = PLAN) -> Table:
    """The intro's answer: :func:`lead_sentence`, then :func:`answer_sentences` as a list
    (each comparison's question in bold) and :func:`scope_sentence` under it, as glue-able
    HTML."""
    items = []
    sentences = answer_sentences(frame)
    for comp, sentence in zip(frame["comparison"].drop_duplicates(), sentences):
        ask = ASKS.get(comp, comp)
        items.append(f"<li><strong>{html.escape(ask)}</strong>"
                     f"{html.escape(sentence[len(ask):])}</li>")
    lead, scope = lead_sentence(frame), scope_sentence(frame, plan)
    markup = (f'<div class="qfm-answer"><p class="qfm-lead"><strong>In short:</strong> '
              f'{html.escape(lead)}</p><ul>{"".join(items)}</ul>'
              f"<p>{html.escape(scope)}</p></div>")
    return Table(markup, pd.DataFrame({"answer": [lead, *sentences, scope]}))
