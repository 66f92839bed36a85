"""The Performance page's pipeline timing: wall time per DVC stage (the ``pipeline_stages``
benchmark, ``benchmarks/pipeline_stages.py``), what each expensive stage's time buys, whether
the stages measured are those of the current ``dvc.yaml``, and the stage figure.

The counts of the cost notes (variants, seeds, tuning seeds, upstream steps) come from
``params.yaml`` as read now; when and under what load the pipeline ran come from the benchmark's
own record (:mod:`qfm.report.performance`). No measurement happens here.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from qfm.report.performance import NOT_MEASURED, is_loaded, load_text, measured_at
from qfm.report.tables import Table, html_table, note

EXPENSIVE = 0.05  # a stage taking at least this share of the pipeline gets a cost note
COSTS = {  # what a stage's time buys (params.yaml fills the braces)
    "world": "renders the embedded data set (images, pseudo-MOS, splits)",
    "features": "the ImageNet upstream over every world image, once: the study's cached tokens",
    "upstream": "trains the toy upstream ({steps} steps), for the toy-vs-ImageNet ablation only",
    "features_toy": "the toy upstream's tokens of every world image (the ablation only)",
    "tune": "grid search on validation over {knobs}, {seeds} tuning seeds each",
    "study": "{variants} variants × {n_seeds} seeds = {runs} rows; runs that would train "
             "identically (λ_qfm = 0: QFM variants as gate) train once",
}


def stage_table(result: dict | None) -> pd.DataFrame:
    """Seconds per DVC stage from ``pipeline_stages`` (empty when not measured)."""
    rows = (result or {}).get("stages") or []
    return pd.DataFrame(rows, columns=["stage", "seconds", "status"])


def stage_costs(stages: pd.DataFrame, params: dict | None = None) -> list[str]:
    """A short "what it costs" note per expensive stage (:data:`EXPENSIVE` of the total),
    "" for the others; ``params`` (params.yaml as read) fills in the counts."""
    params = params or {}
    total = stages["seconds"].fillna(0).sum()
    out = []
    for row in stages.itertuples():
        base, _, group = str(row.stage).partition("@")
        text = COSTS.get(base, "")
        if not total or (row.seconds or 0) < EXPENSIVE * total or not text:
            out.append("" if row.status == "ran" else str(row.status))
            continue
        study = params.get("study") or {}
        tune, g = study.get("tune") or {}, (study.get("groups") or {}).get(group) or {}
        n_var, n_seeds = len(g.get("variants") or []), len(g.get("seeds") or study.get("seeds")
                                                            or [])
        runs = n_var * n_seeds
        out.append(text.format(
            steps=(params.get("upstream") or {}).get("steps", "its"), variants=n_var,
            knobs=", ".join(k for k in tune if k not in ("seeds", "extend")) or "knobs",
            seeds=len(tune.get("seeds") or []), n_seeds=n_seeds, runs=runs,
            each=row.seconds / max(1, runs)) if base != "study" or runs else
            "variants × seeds of one study group on cached tokens")
    return out


def stage_shown(result: dict | None, params: dict | None = None, extra: str = "") -> Table:
    """The stage table as the page shows it: minutes, share, what the expensive ones cost,
    and a total row; its note: when, under what load, and ``extra`` (:func:`stage_note`)."""
    stages = stage_table(result)
    if stages.empty:
        return note(NOT_MEASURED)
    seconds = stages["seconds"].fillna(0)
    total = seconds.sum()
    shown = pd.DataFrame({"stage": stages["stage"], "minutes": seconds / 60,
                          "share": seconds / total if total else math.nan,
                          "what it costs": stage_costs(stages, params)})
    shown.loc[len(shown)] = ["total", total / 60, 1.0 if total else math.nan, ""]
    loaded = (", so slower than on idle cores" if is_loaded(result) else "")
    return html_table(shown, {"minutes": ".1f", "share": ".0%"}, notes=(
        f"Measured {measured_at(result)[:10] or 'on an unknown date'}; highest 1-minute load / "
        f"cores {load_text(result) or 'not recorded'}{loaded}. {extra}").strip())




def stage_note(stages: pd.DataFrame, dvc_file: str | Path = "dvc.yaml") -> str:
    """Whether the measured stages are the stages of the current pipeline (``dvc.yaml``)."""
    current = set(yaml.safe_load(Path(dvc_file).read_text())["stages"])
    measured = {s.split("@")[0] for s in stages["stage"]} if len(stages) else set()
    gone, new = sorted(measured - current), sorted(current - measured)
    text = ("Every stage measured is a stage of the current pipeline." if not gone else
            f"These times were measured before the stages {', '.join(gone)} left the "
            f"pipeline: rerun benchmarks/pipeline_stages.py for the current one.")
    return text + (f" Stages of the current pipeline not in this measurement: "
                   f"{', '.join(new)}." if measured and new else "")


def page_stage_table(result: dict | None, params_file: str | Path = "params.yaml",
                     dvc_file: str | Path = "dvc.yaml") -> Table:
    """The stage table of the page: :func:`stage_shown` with the counts of ``params_file``
    and :func:`stage_note` on ``dvc_file``."""
    params = yaml.safe_load(Path(params_file).read_text())  # not qfm.config: the stage's deps
    return stage_shown(result, params, stage_note(stage_table(result), dvc_file))


def stage_figure(result: dict | None, path: str | Path):
    """Minutes per stage as horizontal bars ("not measured yet" when absent). Saved as a PNG
    at ``path`` and returned open (the notebook glues it; the inline backend shows it)."""
    stages = stage_table(result)
    fig, ax = plt.subplots(figsize=(7, max(1.5, 0.22 * len(stages) + 0.8)))
    if len(stages):
        ax.barh(stages["stage"], stages["seconds"].fillna(0) / 60, color="tab:blue", alpha=0.8)
        ax.invert_yaxis()
        ax.set_xlabel("minutes")
        ax.tick_params(axis="y", labelsize=7)
    else:
        ax.text(0.5, 0.5, NOT_MEASURED, ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return fig
