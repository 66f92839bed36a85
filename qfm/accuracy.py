"""The Results page's full-CPU-budget tables: read the committed accuracy benchmarks.

``benchmarks/qfm_experiment.py`` trains each variant on several seeds at the baseline's full
CPU budget and writes one JSON (``benchmarks/results/qfm_experiment.json``; with ``--set`` a
tuning point under ``benchmarks/results/tuning/``). This module turns those files into the
tables ``notebooks/figures.ipynb`` shows — a missing file is "not measured yet", never an
error. No training or measurement happens here (``qfm.performance`` is its twin for speed).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qfm.checkpoint import read_json
from qfm.metrics import summarize

ORDER = ("baseline", "gate", "gate_qfm", "full")  # benchmarks/qfm_experiment.py's variants


def budget_frames(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The full-CPU-budget experiment (``benchmarks/qfm_experiment.py``'s JSON), or None.

    Returns:
        ``(runs, spread)``: one row per variant and seed (test SRCC/PLCC, validation SRCC,
        semantic-noise share, optimisation steps, training seconds), and per variant the
        mean ± std over seeds (steps: mean; seconds: median, as runs may share a busy machine).
        None when the file is absent (the book then says "not measured yet").
    """
    path = Path(path)
    if not path.is_file():
        return None
    data = read_json(path)
    rows = []
    for name, per_seed in data["runs"].items():
        for seed, r in zip(data["seeds"], per_seed):
            rows.append({"model": name, "seed": seed, "srcc": r["test"]["srcc"],
                         "plcc": r["test"]["plcc"], "val_srcc": r["val_srcc"],
                         "share": r["share"].get("selected", r["share"]["upstream"]),
                         "base_rate": r["base_rate"], "train_seconds": r["train_seconds"],
                         "steps": r.get("steps", float("nan"))})
    runs = pd.DataFrame(rows)
    order = [m for m in ORDER if m in set(runs["model"])]
    order += sorted(set(runs["model"]) - set(order))
    spread = []
    for name in order:
        sub = runs[runs["model"] == name]
        s, p, h = summarize(sub["srcc"]), summarize(sub["plcc"]), summarize(sub["share"])
        spread.append({"model": name, "seeds": s["n"], "srcc_mean": s["mean"],
                       "srcc_std": s["std"], "plcc_mean": p["mean"], "plcc_std": p["std"],
                       "share_mean": h["mean"], "share_std": h["std"],
                       "steps": float(sub["steps"].mean()),
                       "train_seconds": float(sub["train_seconds"].median())})
    return runs, pd.DataFrame(spread)


def _row(variant: str, setting: str, per_seed: list[dict]) -> dict:
    """One tuning-table row: mean validation and test SRCC over the given runs."""
    n = len(per_seed)
    return {"variant": variant, "setting": setting, "seeds": n,
            "val_srcc": sum(r["val_srcc"] for r in per_seed) / n,
            "test_srcc": sum(r["test"]["srcc"] for r in per_seed) / n}


def tuning_table(folder: str | Path, reference: str | Path | None = None) -> pd.DataFrame:
    """Validation-based tuning at the full CPU budget: one row per tried setting.

    ``folder`` holds ``benchmarks/qfm_experiment.py`` outputs run with ``--set KEY=VALUE``
    (one setting each); ``reference`` is the main experiment, whose runs on the same seeds give
    the row of ``params.yaml``'s own values (and the baseline's, for context). A setting is
    chosen by ``val_srcc`` (mean over seeds); test SRCC is shown beside it, never used to
    choose.
    """
    rows, seeds = [], set()
    sources = sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []
    for path in sources:
        data = read_json(path)
        seeds |= set(data["seeds"])
        setting = ", ".join(f"{k}={v}" for k, v in data["settings"].items())
        rows += [_row(name, setting, per_seed) for name, per_seed in data["runs"].items()]
    if rows and reference is not None and Path(reference).is_file():
        ref = read_json(reference)
        for name in sorted({r["variant"] for r in rows} | {"baseline"}):  # baseline: context
            per_seed = [r for s, r in zip(ref["seeds"], ref["runs"].get(name, [])) if s in seeds]
            if per_seed:
                rows.append(_row(name, "params.yaml", per_seed))
    out = pd.DataFrame(rows, columns=["variant", "setting", "seeds", "val_srcc", "test_srcc"])
    return out.sort_values(["variant", "val_srcc"], ascending=[True, False], ignore_index=True)


def selection_table(path: str | Path) -> pd.DataFrame:
    """The baseline's budget choice (``benchmarks/baseline_select.py``'s JSON), best first.

    One row per candidate: its settings on top of the budget, mean validation SRCC over seeds
    (what chose), the per-seed values, and mean test SRCC (shown, never used to choose). Empty
    when the file is absent.
    """
    cols = ["candidate", "settings", "seeds", "val_srcc", "val_per_seed", "test_srcc"]
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=cols)
    rows = []
    for c in read_json(path)["candidates"]:
        runs = c["runs"]
        rows.append({"candidate": c["name"], "settings": ", ".join(c["settings"]) or "(budget)",
                     "seeds": len(runs),
                     "val_srcc": sum(r["val_srcc"] for r in runs) / len(runs),
                     "val_per_seed": " / ".join(f"{r['val_srcc']:.3f}" for r in runs),
                     "test_srcc": sum(r["test_srcc"] for r in runs) / len(runs)})
    return pd.DataFrame(rows, columns=cols).sort_values("val_srcc", ascending=False,
                                                        ignore_index=True)
