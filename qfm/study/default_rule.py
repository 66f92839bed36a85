"""Which regime the shipped scorer comes from: one rule over every LIVEC regime measured.

The default model (``models/default.safetensors``) is the variant and regime with the best
mean validation SRCC on CLIVE — never test. Two steps, so that each regime keeps its own rule:

1. in each regime (:data:`REGIMES`: frozen upstream, last stage, whole upstream), the variant
   with the best mean validation SRCC over that regime's splits (the frozen study's default
   head is chosen the same way, :func:`qfm.study.livec.refit_default`);
2. among those winners, the regime whose winner has the best mean validation SRCC on the
   splits every competing regime ran (paired by split). A regime competes once its winner has
   :data:`MIN_SPLITS` splits; a tie keeps the earlier regime of :data:`REGIMES` (the cheaper).

The chosen (regime, variant) must exist as a model refit on all CLIVE photos; the frozen
study's is ``measured/livec/default_head.safetensors``. Where the rule picks a regime whose
refit is not built, :func:`choose` says so in one line naming the command that builds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qfm.files import FileError, read_json

# (name, its record, its winner's refit on all photos): paths under the measured folder
REGIMES = (("frozen", "livec/livec.json", "livec/default_head.safetensors"),
           ("last stage", "livec_finetune/finetune.json", None),
           ("whole upstream", "livec_whole/livec_whole.json", "livec_whole/default.safetensors"))
BUILD = {"frozen": "its head refit on all photos, which the livec stage builds",
         "last stage": "a refit of the last-stage regime (not built yet)",
         "whole upstream": "its refit on all photos, which `qfm whole --refit` builds"}
MIN_SPLITS = 5  # a regime competes once its winner has this many splits


def rows(measured: str | Path) -> pd.DataFrame:
    """Every CLIVE run's (regime, variant, seed, val_srcc) from the committed records (a
    record not there: no rows of that regime)."""
    out = []
    for name, rel, _ in REGIMES:
        path = Path(measured) / rel
        if not path.is_file():
            continue
        for r in read_json(path).get("rows", []):
            if r.get("val_srcc") is not None and np.isfinite(r["val_srcc"]):
                out.append({"regime": name, "variant": r["variant"], "seed": int(r["seed"]),
                            "val_srcc": float(r["val_srcc"])})
    return pd.DataFrame(out, columns=["regime", "variant", "seed", "val_srcc"])


def winners(frame: pd.DataFrame) -> pd.DataFrame:
    """Step 1: each regime's variant with the best mean validation SRCC over its own splits
    (regime, variant, splits, val_srcc_own)."""
    out = []
    for name, _, _ in REGIMES:
        got = frame[frame["regime"] == name]
        if not len(got):  # shown, not competing
            out.append({"regime": name, "variant": None, "splits": 0,
                        "val_srcc_own": float("nan")})
            continue
        means = got.groupby("variant")["val_srcc"].mean()
        best = means.idxmax()
        out.append({"regime": name, "variant": best,
                    "splits": int(got.loc[got["variant"] == best, "seed"].nunique()),
                    "val_srcc_own": float(means[best])})
    return pd.DataFrame(out, columns=["regime", "variant", "splits", "val_srcc_own"])


def choose(measured: str | Path, min_splits: int = MIN_SPLITS) -> dict:
    """Step 2: the regime (and its winner) the default model comes from, with the table.

    Returns:
        ``regime``, ``variant``, ``val_srcc`` (on the common splits), ``common_splits``,
        ``refit`` (the chosen model's file, None: not built), ``table`` (a row per regime:
        its winner, splits, mean over its splits, mean over the common splits, competes),
        ``rule`` (this rule in a sentence).
    """
    frame = rows(measured)
    win = winners(frame)
    if not len(frame):
        raise FileError(f"{measured}: no CLIVE record (measured/livec/livec.json) to choose "
                        f"the default model from")
    win["competes"] = win["splits"] >= min_splits
    seeds = [set(frame.loc[(frame["regime"] == r.regime) & (frame["variant"] == r.variant),
                           "seed"]) for r in win.itertuples() if r.competes]
    common = sorted(set.intersection(*seeds)) if seeds else []
    win["val_srcc_common"] = [
        float(frame.loc[(frame["regime"] == r.regime) & (frame["variant"] == r.variant)
                        & frame["seed"].isin(common), "val_srcc"].mean())
        if r.competes and common else float("nan") for r in win.itertuples()]
    pool = win[win["competes"]]
    if not len(pool) or not common:
        raise FileError(f"{measured}: no regime has {min_splits} splits in common to choose "
                        f"the default model")
    best = pool.loc[pool["val_srcc_common"].idxmax()]  # first of the ties: the earlier regime
    refit = {n: f for n, _, f in REGIMES}[best["regime"]]
    refit = str(Path(measured) / refit) if refit else None
    if refit and not Path(refit).is_file():  # a refit the regime has, not built here yet
        refit = None
    return {"regime": best["regime"], "variant": best["variant"],
            "val_srcc": round(float(best["val_srcc_common"]), 4), "common_splits": common,
            "refit": refit, "build": BUILD.get(best["regime"]),
            "table": [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                           round(v, 4) if isinstance(v, float) else
                           bool(v) if isinstance(v, (bool, np.bool_)) else v)
                       for k, v in r.items()} for r in win.to_dict("records")],
            "rule": (f"in each LIVEC regime the variant with the best mean validation SRCC "
                     f"over its splits; among regimes with >= {min_splits} splits, the one "
                     f"whose winner is best on the {len(common)} splits they share")}
