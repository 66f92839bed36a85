"""What the book reports about the study: its result files read into frames, and the tables
built from them (formatted by :func:`qfm.report.tables.html_table`).

Reads ``results/study/`` (written by the stages ``tune``, ``study@<group>`` and ``default``);
trains and measures nothing. Every verdict a table shows is read from the record of
:mod:`qfm.report.claims` (paired bootstrap-t interval, its Holm-adjusted p, Wilcoxon p), so no
verdict is ever typed and none disagrees with ``results/verdicts.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qfm.files import read_json
from qfm.report.claims import INTERACTION, record_frame
from qfm.report.glossary import metric_label
from qfm.report.tables import MISSING, Table, ci_text, fmt, html_table, mean_sd
from qfm.report.analysis_plan import PLAN, Plan
from qfm.report.verdict import compare, paired, t_interval

QFM_DIAGNOSTICS = ("partner_rate", "candidates", "shift_rel")


def load_rows(study_dir: str | Path, groups) -> pd.DataFrame:
    """Every run row of the given groups (``<study_dir>/<group>.json``), one frame.

    Returns:
        One row per run with ``group`` and ``spurious`` set from the file.
    """
    frames = []
    for g in groups:
        data = read_json(Path(study_dir) / f"{g}.json")
        frames.append(pd.DataFrame(data["rows"]).assign(group=g,
                                                        spurious=float(data["spurious"])))
    return pd.concat(frames, ignore_index=True)


def comparison(rows: pd.DataFrame, variants, metric: str = "test_srcc",
               reference: str = "baseline", plan: Plan = PLAN) -> pd.DataFrame:
    """:func:`qfm.report.verdict.compare` of ``variants`` (reference excluded) against
    ``reference``, on the variants that ran (one Holm family), with the Δ [CI] text added (``delta_ci``)."""
    ran = [v for v in variants if v != reference and v in set(rows["variant"])]
    out = compare(rows, ran, reference, metric, plan)
    out["delta_ci"] = [ci_text(r.delta, r.ci_lo, r.ci_hi) for r in out.itertuples()]
    return out


def delta_table(cmp: pd.DataFrame, describe: dict | None = None, metric: str = "test_srcc"
                ) -> Table:
    """variant | (what it is) | paired Δ vs reference [95 % bootstrap-t CI] | Holm p (family) |
    Wilcoxon p | seeds ahead | verdict."""
    ref = cmp["reference"].iloc[0] if "reference" in cmp and len(cmp) else "baseline"
    df = pd.DataFrame({"variant": cmp["variant"]})
    if describe is not None:
        df["what it is"] = [describe.get(v, "") for v in cmp["variant"]]
    delta = f"Δ {metric_label(metric)} vs {ref} [95 % bootstrap-t CI]"
    df[delta] = cmp["delta_ci"]
    fam = cmp["family"] if "family" in cmp else [""] * len(cmp)
    df["Holm p (family)"] = [f"{fmt(p)} ({f})" if f else fmt(p)
                             for p, f in zip(cmp["p_holm"], fam)]
    df["Wilcoxon p"] = [fmt(p) for p in cmp["p_wilcoxon"]]
    df["seeds ahead"] = [f"{w}/{n}" for w, n in zip(cmp["wins"], cmp["n"])]
    df["verdict"] = cmp["verdict"]
    return html_table(df, numeric=[delta, "Holm p (family)", "Wilcoxon p", "seeds ahead"],
                      notes="paired by seed; verdict: the interval excludes 0 and its test's "
                            "p, Holm-adjusted within its family, is below 0.05")


def summary_table(rows: pd.DataFrame, variants, label: str = "variant") -> Table:
    """Mean ± sd over seeds per variant: test SRCC, PLCC (after logistic; raw), held-out.
    ``label`` heads the first column (what the rows are)."""
    out = []
    for v in variants:
        sub = rows[rows["variant"] == v]
        if sub.empty:
            continue
        out.append({label: v, "seeds": int(sub["seed"].nunique()),
                    **{metric_label(m): mean_sd(sub[m]) if m in sub else MISSING
                       for m in ("test_srcc", "test_plcc", "test_plcc_raw", "heldout_srcc")}})
    df = pd.DataFrame(out)
    return html_table(df, numeric=[c for c in df.columns if c != label],
                      notes="mean ± sd over seeds; PLCC after the 4-parameter logistic fit "
                            "unless marked raw; held-out = the held-out photos")


def paired_frame(rows: pd.DataFrame, variants, metric: str = "test_srcc") -> pd.DataFrame:
    """Per-seed paired differences against the baseline: ``variant, seed, delta``."""
    frames = [paired(rows, v, "baseline", metric).assign(variant=v)[["variant", "seed",
                                                                      "delta"]]
              for v in variants if v != "baseline" and v in set(rows["variant"])]
    return pd.concat(frames, ignore_index=True)


def sweep_frame(record: dict, variants, metric: str = "test_srcc", groups=None
                ) -> pd.DataFrame:
    """The record's paired Δ vs the baseline in each of ``groups`` (default: every study group
    of the record): ``spurious, variant, delta, ci_lo, ci_hi, n, verdict, delta_ci, …``."""
    keys = groups if groups is not None else [k for k in record if k != INTERACTION]
    frames = [record_frame(record[k], variants, "baseline", metric)
              .assign(spurious=record[k]["spurious"]) for k in keys]
    return pd.concat(frames, ignore_index=True)


def mean_ci_frame(rows: pd.DataFrame, by: str, metric: str, variant: str | None = None
                  ) -> pd.DataFrame:
    """Mean of ``metric`` per value of ``by`` with its 95 % t interval (NaN below
    :data:`qfm.report.verdict.MIN_SEEDS` values)."""
    sub = rows if variant is None else rows[rows["variant"] == variant]
    out = []
    for key, g in sub.groupby(by, sort=False):
        lo, hi = t_interval(g[metric].dropna())
        out.append({by: key, "mean": float(g[metric].mean()), "ci_lo": lo, "ci_hi": hi,
                    "n": int(g[metric].notna().sum())})
    return pd.DataFrame(out)


def sweep_table(sweep: pd.DataFrame, base: pd.DataFrame) -> Table:
    """One row per spurious strength and variant: the baseline's own test SRCC there, the
    variant's paired Δ against it [95 % bootstrap-t CI] and the verdict."""
    base = base.set_index("spurious")
    df = pd.DataFrame({
        "spurious strength": [f"{s:g}" for s in sweep["spurious"]],
        "baseline test SRCC [95 % t-CI]": [
            ci_text(base.at[s, 'mean'], base.at[s, 'ci_lo'], base.at[s, 'ci_hi'], ".3f")
            for s in sweep["spurious"]],
        "variant": sweep["variant"],
        "Δ test SRCC vs baseline [95 % bootstrap-t CI]": sweep["delta_ci"],
        "verdict": sweep["verdict"]})
    return html_table(df.sort_values(["spurious strength", "variant"], kind="stable"),
                      numeric=["spurious strength", "baseline test SRCC [95 % t-CI]",
                               "Δ test SRCC vs baseline [95 % bootstrap-t CI]"])


def best_last_table(rows: pd.DataFrame, variants) -> Table:
    """Per variant: runs, the share whose best validation epoch is their last (trained too
    short) and the share whose best is their first (stopped before it learned: an early dip
    outlasted the patience), a variant whose rows repeat another's runs (``same_as``) not
    listed again."""
    out, same = [], []
    for v in variants:
        sub = rows[rows["variant"] == v]
        if "same_as" in sub and len(sub) and sub["same_as"].notna().all():
            same.append(f"{v} (= {sub['same_as'].iloc[0]})")
        elif len(sub):
            out.append({"variant": v, "runs": len(sub), "epochs": int(sub["epochs"].max()),
                        "best epoch = last epoch": float(sub["best_is_last"].mean()),
                        "best epoch = first epoch": float((sub["best_epoch"] == 0).mean())})
    return html_table(pd.DataFrame(out), {"best epoch = last epoch": ".0%",
                                          "best epoch = first epoch": ".0%"},
                      notes=f"not repeated, their runs are another variant's: "
                            f"{', '.join(same)}" if same else "")


def diagnostics_table(rows: pd.DataFrame) -> Table:
    """QFM diagnostics per QFM variant (mean ± sd over runs, epoch means within a run)."""
    have = [c for c in QFM_DIAGNOSTICS if c in rows]
    qfm = rows.dropna(subset=have[:1]) if have else rows.iloc[:0]
    out = []
    for v, sub in qfm.groupby("variant", sort=False):
        out.append({"variant": v, **{metric_label(c): mean_sd(sub[c], ".2f" if c ==
                                                                 "candidates" else ".3f")
                                     for c in have}})
    if not out:  # every QFM variant's term off (λ_qfm = 0): its runs are the gate's
        off = "same_as" in rows and rows["same_as"].notna().any()
        return html_table(pd.DataFrame({"variant": [
            "none trained with a QFM term: λ_qfm = 0 was chosen, so every QFM variant ran as "
            "gate" if off else MISSING]}))
    df = pd.DataFrame(out)
    return html_table(df, numeric=[c for c in df.columns if c != "variant"],
                      notes="mean ± sd over the runs of each variant")


def unseen_table(unseen: dict) -> Table:
    """Per distortion: the default model's scores from pristine (level 0) to level 5, the
    rank correlation of level and score (−1 = perfectly ordered) and whether it is ordered."""
    out = []
    for kind, r in unseen["ladders"].items():
        row = {"distortion": kind.replace("_", " ")}
        for lev, s in enumerate(r["scores"]):
            row["pristine" if lev == 0 else f"level {lev}"] = s
        row["SRCC(level, score)"] = r["srcc_level"]
        row["ordered"] = bool(r["ordered"])
        out.append(row)
    df = pd.DataFrame(out)
    return html_table(df, {c: ".1f" for c in df.columns if c == "pristine"
                           or c.startswith("level")} | {"SRCC(level, score)": "+.2f"})


def share_frame(rows: pd.DataFrame, variants=("baseline", "full")) -> pd.DataFrame:
    """Semantic-noise share per seed: the raw upstream's and each variant's head embedding.

    Returns:
        ``source, seed, share`` (source ``upstream`` or a variant).
    """
    base = rows[rows["variant"] == variants[0]]
    frames = [pd.DataFrame({"source": "upstream", "seed": base["seed"],
                            "share": base["share_upstream"]})]
    for v in variants:
        sub = rows[rows["variant"] == v]
        frames.append(pd.DataFrame({"source": v, "seed": sub["seed"], "share": sub["share"]}))
    return pd.concat(frames, ignore_index=True)


def share_table(shares: pd.DataFrame) -> Table:
    """Mean ± sd of the semantic-noise share per source."""
    out = [{"features": "raw upstream (pooled tokens)" if s == "upstream"
            else f"{s} (its head's embedding)", "seeds": int(g["seed"].nunique()),
            "semantic-noise share": mean_sd(g["share"], ".1%")}
           for s, g in shares.groupby("source", sort=False)]
    return html_table(pd.DataFrame(out), numeric=["semantic-noise share"],
                      notes="share of the 10 % closest test pairs (in feature space) whose "
                            "quality gap exceeds 0.2; lower = less semantic noise")


def share_direction(group: dict, variant: str = "full", reference: str = "baseline"
                    ) -> tuple[str, object]:
    """Is ``variant``'s semantic-noise share lower or higher than ``reference``'s? The record's
    verdict (family ``share``).

    Args:
        group: one group of :func:`verdict_record`.
    Returns:
        (``"lower"`` / ``"higher"`` / ``"no difference detected"`` / ``"too few seeds"``, the
        comparison row).
    """
    r = next(record_frame(group, [variant], reference, "share").itertuples())
    return r.verdict, r


def ladder_frame(rows: pd.DataFrame, ladder, group: dict) -> pd.DataFrame:
    """The ablation ladder: each rung's mean test SRCC (95 % t interval of the mean) and the
    record's paired Δ against the rung below.

    Args:
        group: the group's :func:`verdict_record` entry (holds every rung's step).
    Returns:
        ``variant, mean, ci_lo, ci_hi, n, step_delta, step_lo, step_hi, step_verdict``.
    """
    out = []
    for i, v in enumerate(ladder):
        vals = rows.loc[rows["variant"] == v, "test_srcc"].dropna()
        lo, hi = t_interval(vals)
        row = {"variant": v, "mean": float(vals.mean()), "ci_lo": lo, "ci_hi": hi,
               "n": int(len(vals)), "step_delta": np.nan, "step_lo": np.nan,
               "step_hi": np.nan, "step_verdict": ""}
        if i:
            c = next(record_frame(group, [v], ladder[i - 1]).itertuples())
            row.update(step_delta=c.delta, step_lo=c.ci_lo, step_hi=c.ci_hi,
                       step_verdict=c.verdict)
        out.append(row)
    return pd.DataFrame(out)


def ladder_table(frame: pd.DataFrame) -> Table:
    """Rung | test SRCC mean [95 % t-CI] | Δ against the rung below [95 % bootstrap-t CI] |
    verdict."""
    prev = [MISSING] + list(frame["variant"].iloc[:-1])
    df = pd.DataFrame({
        "variant": frame["variant"],
        "test SRCC, mean [95 % t-CI]": [ci_text(r.mean, r.ci_lo, r.ci_hi, ".3f")
                                      for r in frame.itertuples()],
        "compared with": prev,
        "paired Δ [95 % bootstrap-t CI]": [ci_text(r.step_delta, r.step_lo, r.step_hi)
                               for r in frame.itertuples()],
        "verdict": [r.step_verdict or MISSING for r in frame.itertuples()]})
    return html_table(df, numeric=["test SRCC, mean [95 % t-CI]",
                                   "paired Δ [95 % bootstrap-t CI]"])


def seed_table(rows, metrics=("val_srcc", "test_srcc")) -> Table:
    """One row per run of a group: variant, seed, best epoch and ``metrics`` (what a study
    notebook shows for the group it ran)."""
    frame = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows
    cols = [c for c in ("variant", "seed", "best_epoch", "epochs", *metrics) if c in frame]
    return html_table(frame[cols].sort_values(["variant", "seed"]),
                      {m: ".3f" for m in metrics})


def rows_frame(rows) -> pd.DataFrame:
    """A group's rows (the list :func:`qfm.study.stages.run_group` returns) as a frame."""
    return pd.DataFrame(list(rows))


def toy_frame(rows: pd.DataFrame, toy: pd.DataFrame) -> pd.DataFrame:
    """The baseline on the ImageNet upstream beside the baseline on the toy upstream, on the
    toy group's seeds only (variants ``ImageNet upstream`` and ``toy upstream``)."""
    ups = pd.concat([rows[rows["variant"] == "baseline"].assign(variant="ImageNet upstream"),
                     toy.assign(variant="toy upstream")], ignore_index=True)
    return ups[ups["seed"].isin(set(toy["seed"]))]
