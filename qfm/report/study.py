"""What the book reports about the study: its result files read into frames, the verdicts,
and the tables built from them (formatted by :func:`qfm.report.tables.html_table`).

Reads ``results/study/`` (written by the stages ``tune``, ``study@<group>`` and ``default``);
trains and measures nothing. Every comparison is paired by seed against the baseline and
judged by :mod:`qfm.report.verdict` from its bootstrap interval, so no verdict is ever typed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qfm.files import read_json
from qfm.report.glossary import metric_label
from qfm.report.tables import MISSING, Table, ci_text, html_table, mean_sd
from qfm.report.verdict import bootstrap_ci, compare, verdict

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
               reference: str = "baseline") -> pd.DataFrame:
    """:func:`qfm.report.verdict.compare` of ``variants`` (reference excluded) against ``reference``,
    on the variants that ran, with the Δ [CI] text added (column ``delta_ci``)."""
    ran = [v for v in variants if v != reference and v in set(rows["variant"])]
    out = compare(rows, ran, reference, metric)
    out["delta_ci"] = [ci_text(r.delta, r.ci_lo, r.ci_hi) for r in out.itertuples()]
    return out


def answer(row, metric: str = "test_srcc") -> str:
    """One line: the verdict, then the evidence — ``better (Δ test SRCC +0.012, 95 % CI
    [+0.004, +0.020], 10 paired seeds)``."""
    if np.isnan(row.ci_lo):
        return f"{row.verdict} (Δ {metric_label(metric)} {row.delta:+.3f}, " \
               f"{row.n} paired seed{'s' if row.n != 1 else ''}: too few for an interval)"
    return (f"{row.verdict} (Δ {metric_label(metric)} {row.delta:+.3f}, 95 % CI "
            f"[{row.ci_lo:+.3f}, {row.ci_hi:+.3f}], {row.n} paired seeds)")


def delta_table(cmp: pd.DataFrame, describe: dict | None = None, metric: str = "test_srcc"
                ) -> Table:
    """variant | (what it is) | paired Δ vs baseline [95 % CI] | seeds ahead | verdict."""
    df = pd.DataFrame({"variant": cmp["variant"]})
    if describe is not None:
        df["what it is"] = [describe.get(v, "") for v in cmp["variant"]]
    df[f"Δ {metric_label(metric)} vs baseline [95 % CI]"] = cmp["delta_ci"]
    df["seeds ahead"] = [f"{w}/{n}" for w, n in zip(cmp["wins"], cmp["n"])]
    df["verdict"] = cmp["verdict"]
    return html_table(df, numeric=[df.columns[-3], "seeds ahead"])


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


def verdict_record(rows: pd.DataFrame, groups: dict[str, list],
                   metrics=("test_srcc", "heldout_srcc")) -> dict:
    """The verdicts of every group as a DVC metrics mapping (``results/verdicts.json``).

    Returns:
        ``{group: {"spurious": s, variant: {metric: {mean, sd, delta, ci_lo, ci_hi, n,
        verdict}}}}``; the baseline carries mean and sd only.
    """
    out = {}
    for g, variants in groups.items():
        sub = rows[rows["group"] == g]
        rec = {"spurious": float(sub["spurious"].iloc[0])}
        for m in metrics:
            base = sub.loc[sub["variant"] == "baseline", m]
            rec.setdefault("baseline", {})[m] = {"mean": float(base.mean()),
                                                 "sd": float(base.std(ddof=1))
                                                 if len(base) > 1 else None}
            for r in comparison(sub, variants, m).itertuples():
                rec.setdefault(r.variant, {})[m] = {
                    "mean": r.mean, "sd": None if np.isnan(r.sd) else r.sd,
                    "delta": r.delta, "ci_lo": None if np.isnan(r.ci_lo) else r.ci_lo,
                    "ci_hi": None if np.isnan(r.ci_hi) else r.ci_hi, "n": r.n,
                    "verdict": r.verdict}
        out[g] = rec
    return out


def paired_frame(rows: pd.DataFrame, variants, metric: str = "test_srcc") -> pd.DataFrame:
    """Per-seed paired differences against the baseline: ``variant, seed, delta``."""
    from qfm.report.verdict import paired

    frames = [paired(rows, v, "baseline", metric).assign(variant=v)[["variant", "seed",
                                                                      "delta"]]
              for v in variants if v != "baseline" and v in set(rows["variant"])]
    return pd.concat(frames, ignore_index=True)


def sweep_frame(rows: pd.DataFrame, variants, metric: str = "test_srcc") -> pd.DataFrame:
    """Paired Δ vs the baseline at each spurious strength: ``spurious, variant, delta,
    ci_lo, ci_hi, n, verdict``."""
    frames = []
    for s, sub in rows.groupby("spurious"):
        cmp = comparison(sub, variants, metric)
        frames.append(cmp.assign(spurious=s))
    return pd.concat(frames, ignore_index=True)


def mean_ci_frame(rows: pd.DataFrame, by: str, metric: str, variant: str | None = None
                  ) -> pd.DataFrame:
    """Mean of ``metric`` per value of ``by`` with a bootstrap 95 % interval of the mean."""
    sub = rows if variant is None else rows[rows["variant"] == variant]
    out = []
    for key, g in sub.groupby(by, sort=False):
        lo, hi = bootstrap_ci(g[metric].dropna())
        out.append({by: key, "mean": float(g[metric].mean()), "ci_lo": lo, "ci_hi": hi,
                    "n": int(g[metric].notna().sum())})
    return pd.DataFrame(out)


def sweep_table(sweep: pd.DataFrame, base: pd.DataFrame) -> Table:
    """One row per spurious strength and variant: the baseline's own test SRCC there, the
    variant's paired Δ against it [95 % CI] and the verdict."""
    base = base.set_index("spurious")
    df = pd.DataFrame({
        "spurious strength": [f"{s:g}" for s in sweep["spurious"]],
        "baseline test SRCC [95 % CI]": [
            f"{base.at[s, 'mean']:.3f} [{base.at[s, 'ci_lo']:.3f}, {base.at[s, 'ci_hi']:.3f}]"
            for s in sweep["spurious"]],
        "variant": sweep["variant"],
        "Δ test SRCC vs baseline [95 % CI]": sweep["delta_ci"],
        "verdict": sweep["verdict"]})
    return html_table(df.sort_values(["spurious strength", "variant"], kind="stable"),
                      numeric=["spurious strength", "baseline test SRCC [95 % CI]",
                               "Δ test SRCC vs baseline [95 % CI]"])


def best_last_table(rows: pd.DataFrame, variants) -> Table:
    """Per variant: runs, and the share whose best validation epoch is their last."""
    out = []
    for v in variants:
        sub = rows[rows["variant"] == v]
        if len(sub):
            out.append({"variant": v, "runs": len(sub), "epochs": int(sub["epochs"].max()),
                        "best epoch = last epoch": float(sub["best_is_last"].mean())})
    return html_table(pd.DataFrame(out), {"best epoch = last epoch": ".0%"})


def diagnostics_table(rows: pd.DataFrame) -> Table:
    """QFM diagnostics per QFM variant (mean ± sd over runs, epoch means within a run)."""
    have = [c for c in QFM_DIAGNOSTICS if c in rows]
    qfm = rows.dropna(subset=have[:1]) if have else rows.iloc[:0]
    out = []
    for v, sub in qfm.groupby("variant", sort=False):
        out.append({"variant": v, **{metric_label(c): mean_sd(sub[c], ".2f" if c ==
                                                                 "candidates" else ".3f")
                                     for c in have}})
    if not out:
        return html_table(pd.DataFrame({"variant": [MISSING]}))
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


def share_direction(rows: pd.DataFrame, variant: str = "full") -> tuple[str, object]:
    """Is ``variant``'s share lower or higher than the baseline's? From the paired interval.

    Returns:
        (``"lower"`` / ``"higher"`` / ``"no difference detected"``, the comparison row).
    """
    r = next(compare(rows, [variant], "baseline", "share").itertuples())
    word = {"better": "higher", "worse": "lower"}.get(r.verdict, "no difference detected")
    return word, r


def ladder_frame(rows: pd.DataFrame, ladder) -> pd.DataFrame:
    """The ablation ladder: each rung's mean test SRCC (bootstrap 95 % interval of the mean)
    and its paired Δ against the rung below.

    Returns:
        ``variant, mean, ci_lo, ci_hi, n, step_delta, step_lo, step_hi, step_verdict``.
    """
    out = []
    for i, v in enumerate(ladder):
        vals = rows.loc[rows["variant"] == v, "test_srcc"]
        lo, hi = bootstrap_ci(vals)
        row = {"variant": v, "mean": float(vals.mean()), "ci_lo": lo, "ci_hi": hi,
               "n": int(len(vals)), "step_delta": np.nan, "step_lo": np.nan,
               "step_hi": np.nan, "step_verdict": ""}
        if i:
            c = next(compare(rows, [v], ladder[i - 1]).itertuples())
            row.update(step_delta=c.delta, step_lo=c.ci_lo, step_hi=c.ci_hi,
                       step_verdict=verdict(c.ci_lo, c.ci_hi))
        out.append(row)
    return pd.DataFrame(out)


def ladder_table(frame: pd.DataFrame) -> Table:
    """Rung | test SRCC mean [95 % CI] | Δ against the rung below [95 % CI] | verdict."""
    prev = [MISSING] + list(frame["variant"].iloc[:-1])
    df = pd.DataFrame({
        "variant": frame["variant"],
        "test SRCC, mean [95 % CI]": [f"{r.mean:.3f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}]"
                                      for r in frame.itertuples()],
        "compared with": prev,
        "paired Δ [95 % CI]": [ci_text(r.step_delta, r.step_lo, r.step_hi)
                               for r in frame.itertuples()],
        "verdict": [r.step_verdict or MISSING for r in frame.itertuples()]})
    return html_table(df, numeric=["test SRCC, mean [95 % CI]", "paired Δ [95 % CI]"])


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
