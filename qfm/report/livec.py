"""The LIVEC study as the book reports it: its committed rows (``measured/livec/``) read into a
frame, its verdicts (the world's functions, group ``livec``), every variant's SRCC and PLCC
(mean ± sd and median over the splits, as the paper reports), ours beside the published
numbers, best-epoch facts, the token-recipe facts (``benchmarks/results/clive_tokens.json``)
and the default model's head. JSON only (no torch); reads nothing the notebook does not pass.
"""

from __future__ import annotations

import pandas as pd

from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.claims import INTERACTION, verdict_record
from qfm.report.tables import MISSING, Table, html_table, mean_sd, note

GROUP = "livec"
# the honest caption of every table of ours beside published numbers
OURS_SETTING = ("CPU, frozen ImageNet EfficientNet-Lite0, head-only training, 930 of 1,162 "
                "images, our random 80/20 splits")
CITATION = (
    'D. Ghadiyaram and A. C. Bovik, "Massive Online Crowdsourced Study of Subjective and '
    'Objective Picture Quality," IEEE Transactions on Image Processing 25(1):372–387, 2016; '
    'D. Ghadiyaram and A. C. Bovik, "LIVE In the Wild Image Quality Challenge Database," '
    "2015 (LIVE, UT Austin).")


def rows_frame(rows: list[dict], group: str = GROUP) -> pd.DataFrame:
    """The measured run rows as a frame with ``group`` and ``spurious`` set (empty frame when
    never measured)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    return df.assign(group=group, spurious=0.0)


def record(rows: pd.DataFrame, variants, ladder=(), plan: Plan = PLAN, group: str = GROUP
           ) -> dict:
    """The LIVEC group of the verdict record (or of any one group's rows, e.g. the fine-tuning
    regime's), judged by exactly the world's functions (:func:`qfm.report.claims.verdict_record`,
    the same families); ``{}`` when never measured.
    """
    if rows.empty:
        return {}
    ran = [v for v in variants if v in set(rows["variant"])]
    rec = verdict_record(rows.assign(group=group), {group: ran}, ladder, plan=plan)
    rec.pop(INTERACTION, None)  # one strength: no sweep
    return rec[group]


def stats_frame(rows: pd.DataFrame, variants) -> pd.DataFrame:
    """Per variant: splits, test SRCC and PLCC as mean, sd and median over the splits."""
    out = []
    for v in variants:
        sub = rows[rows["variant"] == v] if len(rows) else rows
        if sub.empty:
            continue
        r = {"variant": v, "splits": int(sub["seed"].nunique())}
        for m in ("test_srcc", "test_plcc"):
            x = sub[m].dropna()
            r |= {f"{m}_mean": float(x.mean()), f"{m}_sd": float(x.std(ddof=1)),
                  f"{m}_median": float(x.median())}
        out.append(r)
    return pd.DataFrame(out)


def stats_table(rows: pd.DataFrame, variants, setting: str | None = None) -> Table:
    """Every variant's test SRCC and PLCC: mean ± sd and median over the splits (``setting``:
    how they were trained, default the frozen study's)."""
    if rows.empty:
        return note("not measured yet: the LIVEC study has not run on this checkout")
    s = stats_frame(rows, variants)
    df = pd.DataFrame({
        "variant": s["variant"], "splits": s["splits"],
        "SRCC mean ± sd": [mean_sd(rows.loc[rows["variant"] == v, "test_srcc"])
                           for v in s["variant"]],
        "SRCC median": s["test_srcc_median"],
        "PLCC mean ± sd": [mean_sd(rows.loc[rows["variant"] == v, "test_plcc"])
                           for v in s["variant"]],
        "PLCC median": s["test_plcc_median"]})
    return html_table(df, numeric=["SRCC mean ± sd", "PLCC mean ± sd"],
                      notes="test part of each split; PLCC after the 4-parameter logistic "
                            "fit; " + (setting or OURS_SETTING))


def published_frame(rows: pd.DataFrame, published: pd.DataFrame,
                    ours=("baseline", "gate", "gate_qfm", "full")) -> pd.DataFrame:
    """Our variants' medians over the splits above the published and previously measured
    numbers (:data:`qfm.paper.PUBLISHED_LIVEC`), one row each: scorer, SRCC, PLCC, setting,
    source."""
    mine = []
    if not rows.empty:
        s = stats_frame(rows, ours)
        mine = [{"scorer": f"ours: {r.variant}", "srcc": r.test_srcc_median,
                 "plcc": r.test_plcc_median, "setting": OURS_SETTING + ", median",
                 "source": "this book (measured/livec/livec.json)"} for r in s.itertuples()]
    return pd.concat([pd.DataFrame(mine, columns=published.columns), published],
                     ignore_index=True)


def published_table(rows: pd.DataFrame, published: pd.DataFrame, ours=("baseline", "gate",
                                                                      "gate_qfm", "full")
                    ) -> Table:
    """:func:`published_frame` as the book's table (ours "not measured yet" where absent)."""
    df = published_frame(rows, published, ours)
    if rows.empty:
        df = pd.concat([pd.DataFrame([{"scorer": "ours", "srcc": float("nan"),
                                       "plcc": float("nan"), "setting": "not measured yet",
                                       "source": "–"}]), df], ignore_index=True)
    return html_table(df.rename(columns={"srcc": "SRCC", "plcc": "PLCC"}),
                      notes="not one protocol: the published rows fine-tune a ViT-S on a GPU "
                            "over all 1,162 images; ours train a head on a frozen CPU "
                            "upstream over 930 images and our own splits")


def best_epoch_facts(rows: pd.DataFrame) -> dict:
    """Over the runs trained (a row that repeats another's run, ``same_as``, counts once): the
    share whose best validation epoch is the last one allowed, the share stopped early, the
    median best epoch (1-based) and the usual epoch cap (a step-matched run has its own)."""
    if "same_as" in rows:
        rows = rows[rows["same_as"].isna()]
    if rows.empty:
        return {}
    return {"runs": int(len(rows)), "best_last": float(rows["best_is_last"].mean()),
            "stopped_early": float(rows["stopped_early"].mean()),
            "best_epoch_median": float(rows["best_epoch"].median()) + 1,
            "max_epochs": int(rows["max_epochs"].mode().max())}


def best_epoch_text(facts: dict) -> str:
    """One sentence of :func:`best_epoch_facts` (or "not measured yet")."""
    if not facts:
        return "not measured yet"
    return (f"{facts['best_last']:.0%} of the {facts['runs']} runs trained have their best "
            f"epoch at the last one allowed (mostly {facts['max_epochs']}); "
            f"{facts['stopped_early']:.0%} "
            f"stopped early on validation; median best epoch {facts['best_epoch_median']:g}")


def default_facts(sidecar: dict | None) -> dict:
    """The default model's head as the Results page states it (from ``default_head.json``):
    variant, validation SRCC, images refit on, epochs; ``{}`` when absent."""
    if not sidecar:
        return {}
    meta = sidecar.get("meta", sidecar)
    return {"variant": meta.get("variant", MISSING),
            "val_srcc": f"{float(meta['val_srcc']):.3f}" if "val_srcc" in meta else MISSING,
            "images": int(meta["images"]) if "images" in meta else MISSING,
            "epochs": int(meta["epochs"]) if "epochs" in meta else MISSING}


def tokens_frame(tokens: dict) -> pd.DataFrame:
    """The token recipes tried (``clive_tokens.json``): upstream, input, validation SRCC
    (mean ± sd), test SRCC, chosen — validation chose, test is shown only."""
    out = []
    for r in tokens["recipes"]:
        out.append({"upstream": r["upstream"], "input": r["input"],
                    "validation SRCC": f"{r['val_srcc']:.3f} ± {r['val_srcc_sd']:.3f}",
                    "test SRCC": f"{r['test_srcc']:.3f} ± {r['test_srcc_sd']:.3f}",
                    "chosen": "chosen" if r["recipe"] == tokens["chosen"] else ""})
    return pd.DataFrame(out)


def tokens_table(tokens: dict) -> Table:
    """:func:`tokens_frame` as the book's table, with how it was measured."""
    return html_table(tokens_frame(tokens), numeric=["validation SRCC", "test SRCC"],
                      notes=tokens["how"])


def token_glue(tokens: dict) -> dict[str, str]:
    """``{recipe: validation SRCC as text}`` for the Method page's sentence."""
    return {r["recipe"]: f"{r['val_srcc']:.3f}" for r in tokens["recipes"]}


def status_text(st: dict) -> str:
    """The measurement's status as a reader sees it: a warning when stale."""
    if not st.get("present"):
        why = st.get("why") or "not measured yet"
        return why[0].upper() + why[1:]
    if st.get("stale"):
        return ("Warning — stale: " + st["why"] + ". The numbers below are those of the "
                "measurement described in the provenance table, not of the current code.")
    return "Current: " + st.get("why", "")


def stability_changed(stability: dict) -> str:
    """Which tuned variants' choices changed when the frozen LIVEC tuning was rerun on tokens of
    the upstream held channels-last (``benchmarks/results/tuning_stability.json``), e.g.
    ``3 of 6 tuned variants (full, gate_params, gate_qfm)``."""
    tuned = sorted(stability.get("largest_change_by_variant") or {})
    changed = [v for v in tuned if v in (stability.get("changed_choices") or {})]
    if not changed:
        return f"none of {len(tuned)} tuned variants"
    return f"{len(changed)} of {len(tuned)} tuned variants ({', '.join(changed)})"
