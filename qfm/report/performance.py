"""The book's Performance page: the benchmark JSON files as tables, figures and glued values.

``benchmarks/*.py`` store one JSON object each as ``benchmarks/results/<name>.json``, every
one with the same ``machine`` record (``harness.Record``: cores, threads, GPU, load average
before and after, times). A missing or unreadable file is "not measured yet", never an error;
``gpu_check`` counts only when it ran on a GPU (absent, "no CUDA" or a CPU dry run: "not run
yet"). Every value is shown, and every table says once under what load it was measured (a
column and a note, :data:`LOAD_NOTE`). No measurement happens here. The pipeline's time per
DVC stage: :mod:`qfm.report.pipeline_stages`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from qfm.report.tables import Table, html_table, note

NOT_MEASURED = "not measured yet"
NOT_RUN = "not run yet"  # gpu_check until it runs on a GPU
BENCHMARKS = ("step_cost_cached", "step_cost", "predict_throughput", "loader_throughput",
              "cache_throughput", "tuning_stability", "pipeline_stages",
              "pipeline_stages_before", "gpu_check")
CPU_DEFAULT = ("step_cost_cached", "step_cost")  # claim the CPU default (predict: shipped)
SHORT = {"tf_efficientnet_lite0": "Lite0", "deit3_small_patch16_224": "DeiT-III S"}
LOAD_NOTE = ("load / cores: the highest 1-minute load average around the run, on the CPU "
             "cores; “loaded” = above the cores: other jobs took CPU time, so absolute rates "
             "and times are slower than the code's own, while a ratio of two interleaved "
             "sides still compares like with like.")

STEP_CACHED_FLOOR = 3.0  # the cached step's target: its design's own passes, not fused (page)

# (key, benchmark, label, how to read its ratio, target, "max" = at most / "min" = at least)
RATIOS = (
    # the study's step on cached tokens: its design's floor, ~3 head passes (forward, backward
    # for the adversarial direction, perturbed forward, backward) against the baseline's one
    ("step_cached", "step_cost_cached", "study step (cached tokens): QFM ÷ baseline",
     ("ratio_median",), STEP_CACHED_FLOOR, "max"),
    ("step_image", "step_cost", "image-model step: QFM ÷ baseline", ("ratio_median",),
     1.5, "max"),
    ("predict_shipped", "predict_throughput", "predict ÷ backbone, shipped model, torch",
     ("profiles", "shipped", "ratio_predict_over_backbone"), 0.9, "min"),
    ("predict_shipped_onnx", "predict_throughput",
     "predict ÷ model, shipped model, ONNX Runtime",
     ("profiles", "shipped", "ratio_predict_onnx_over_model_onnx"), 0.9, "min"),
    ("predict_paper", "predict_throughput", "predict ÷ backbone, paper profile",
     ("profiles", "paper", "ratio_predict_over_backbone"), 0.8, "min"),
    ("loader_cache", "loader_throughput", "loader ÷ model, resize cache",
     ("ratio_with_cache",), 2.0, "min"),
    ("loader_no_cache", "loader_throughput", "loader ÷ model, no cache",
     ("ratio_without_cache",), 2.0, "min"),
    ("gpu_predict", "gpu_check", "GPU: predict ÷ backbone",
     ("predict", "ratio_predict_over_backbone"), 0.8, "min"),
)


def load_results(folder: str | Path) -> dict[str, dict | None]:
    """Every known benchmark's JSON under ``folder`` (None where absent or unreadable)."""
    out: dict[str, dict | None] = {}
    for name in BENCHMARKS:
        try:
            out[name] = json.loads((Path(folder) / f"{name}.json").read_text())
        except (OSError, ValueError):
            out[name] = None
    return out


def lookup(obj: dict | None, path: tuple[str, ...]):
    """``obj[path[0]][path[1]]…``, None where a key is missing."""
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _machine(r: dict | None) -> dict:  # the harness's machine record
    return (r or {}).get("machine") or {}


def machine_load(r: dict | None) -> tuple[float | None, int | None]:
    """(highest 1-minute load average around a benchmark, CPU cores), None where unknown;
    a timed pipeline's own loads (``run``, recorded while it ran) before ``machine``'s."""
    m, run = _machine(r), (r or {}).get("run") or {}
    pair = (run.get("load_average_start"), run.get("load_average_end"))
    if not any(pair):
        pair = (m.get("load_average_before"), m.get("load_average_after"))
    loads = [float(v[0]) for v in pair if isinstance(v, (list, tuple)) and v]
    cores = m.get("cpu_cores")
    return (max(loads) if loads else None), (int(cores) if cores else None)


def is_loaded(r: dict | None) -> bool:
    """Whether a benchmark ran with a load average above the machine's core count."""
    load, cores = machine_load(r)
    return bool(r) and load is not None and cores is not None and load > cores


def load_text(r: dict | None) -> str:
    """``"3.4 / 2 loaded"`` (load / cores): the load column of the tables ("" unknown)."""
    load, cores = machine_load(r)
    return "" if load is None or cores is None else \
        f"{load:.1f} / {cores}" + (" loaded" if is_loaded(r) else "")


def gpu_ran(r: dict | None) -> bool:
    """Whether ``gpu_check`` ran on a GPU (not absent, not "no CUDA", not a CPU dry run)."""
    return bool(r) and bool(_machine(r).get("gpu")) and not (r.get("dry_run") or r.get("status"))


def _model(name, size=None) -> str:
    return SHORT.get(name, str(name)) + (f" {size} px" if size else "")


def _conditions(name: str, path: tuple[str, ...], r: dict) -> str:
    """What a ratio ran on, in a few words (model, size, batch)."""
    if name == "step_cost_cached":
        width = r.get("cached_width")
        tokens = f"{1 + r['grid'] ** 2} × {width}" if r.get("grid") else width
        return f"{_model(r.get('backbone'))} tokens ({tokens}), batch {r.get('batch')}"
    if name == "step_cost":
        return f"{_model(r.get('backbone'), r.get('img_size'))}, batch {r.get('batch')}"
    if name == "predict_throughput":
        p = lookup(r, path[:2]) or {}
        when = f", measured {str(p['measured'])[:10]}" if p.get("carried_over") else ""
        return f"{_model(p.get('backbone'), p.get('img_size'))}, " \
               f"{p.get('crops_per_image')} crops{when}"
    if name == "loader_throughput":
        return f"{_model(r.get('backbone'), r.get('img_size'))}, batch {r.get('batch')}, " \
               f"{r.get('workers')} worker" + ("s" if r.get("workers") != 1 else "")
    return _machine(r).get("gpu") or ""


def ratio_table(results: dict[str, dict | None]) -> pd.DataFrame:
    """The measured ratios against their targets (:data:`RATIOS`).

    Returns:
        Columns ``key, benchmark, ratio_name, ratio, target, kind, met, conditions, load,
        loaded``; ratio NaN, met None where the benchmark has not run (conditions say why).
    """
    rows = []
    for key, name, label, path, target, kind in RATIOS:
        r = results.get(name)
        value = lookup(r, path)
        missing = NOT_RUN if name == "gpu_check" else NOT_MEASURED
        ran = gpu_ran(r) if name == "gpu_check" else not (r is None or r.get("status")
                                                           or r.get("dry_run"))
        if not ran or value is None:
            why = (r or {}).get("status") or ("only a CPU dry run" if (r or {}).get("dry_run")
                                              else "")
            rows.append((key, name, label, math.nan, target, kind, None,
                         f"{missing} ({why})" if why else missing, "", False))
            continue
        value = float(value)
        met = value <= target if kind == "max" else value >= target
        rows.append((key, name, label, value, target, kind, met, _conditions(name, path, r),
                     load_text(r), is_loaded(r)))
    df = pd.DataFrame(rows, columns=["key", "benchmark", "ratio_name", "ratio", "target",
                                     "kind", "met", "conditions", "load", "loaded"])
    df["kind"] = df["kind"].map({"max": "at most", "min": "at least"})
    return df


def verdict(met) -> str:  # "met", "missed" or not measured yet (None)
    return {True: "met", False: "missed"}.get(met, NOT_MEASURED)


def ratio_shown(results: dict[str, dict | None]) -> Table:
    """The ratio table (:func:`ratio_table`) as the page shows it: six short columns, the load
    flagged once."""
    ratios = ratio_table(results)
    return html_table(pd.DataFrame({
        "ratio": ratios["ratio_name"], "measured": ratios["ratio"],
        "target": [f"{'≤' if k == 'at most' else '≥'} {t:g}" for k, t in
                   zip(ratios["kind"], ratios["target"])],
        "verdict": [verdict(m) if m is not None else "" for m in ratios["met"]],
        "model": ratios["conditions"], "load / cores": ratios["load"]}), {"measured": ".2f"},
        notes=LOAD_NOTE)


def ratio_figure(results: dict[str, dict | None], path: str | Path):
    """Each measured ratio as a bar (green: target met, red: missed) beside its target, on a
    log scale; a ratio not measured shows why. Saved as a PNG at ``path`` and returned open
    (the notebook glues it; pyplot's inline backend shows it there)."""
    ratios = ratio_table(results)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    y = np.arange(len(ratios))
    measured = ratios["ratio"].notna()
    colors = np.array(["tab:green" if m is True else "tab:red" for m in ratios["met"]],
                      dtype=object)
    ax.barh(y[measured], ratios["ratio"][measured], color=colors[measured], alpha=0.8)
    ax.scatter(ratios["target"], y, marker="|", s=400, color="k", zorder=3, label="target")
    for yi, row in zip(y, ratios.itertuples()):
        text = f"{row.ratio:.2f}" if not np.isnan(row.ratio) else row.conditions
        ax.text(max(0 if np.isnan(row.ratio) else row.ratio, row.target) * 1.08, yi, text,
                va="center", fontsize=8)
    ax.set_yticks(y, [f"{n} ({k} {t:g})" for n, k, t in
                      zip(ratios["ratio_name"], ratios["kind"], ratios["target"])], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.1, np.nanmax(np.r_[ratios["ratio"], ratios["target"]]) * 4)
    ax.set_xlabel("ratio (log scale); green: target met, red: missed")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return fig


GPU_COLUMNS = {"images_per_s": ("images/s", ".0f"),  # gpu_check's keys → (column, format)
               "images_per_s_gpu_resident": ("data on GPU", ".0f"),
               "fed_share": ("loader keeps up", ".0%"), "peak_memory_gib": ("peak GiB", ".1f"),
               "gpu_busy_share_nvidia_smi": ("GPU busy", ".0%")}


def gpu_table(result: dict | None) -> Table:
    """One row per training configuration of ``gpu_check`` (six columns), or one line: not
    run yet (absent, no CUDA, or a dry run, whose CPU numbers are no GPU's)."""
    rows = (result or {}).get("training") or []
    if not gpu_ran(result) or not rows:
        return note(NOT_RUN)
    table = []
    for r in rows:
        flags = [f"batch {r.get('batch')}", "compile" if r.get("compile") is True else "",
                 "channels-last" if r.get("channels_last") is True else ""]
        why = "" if "images_per_s" in r else f", {r.get('error') or r.get('skipped')}"
        table.append({"config": f"{r.get('config')} ({', '.join(f for f in flags if f)}"
                                f"{why})",
                      **{col: r.get(k) for k, (col, _) in GPU_COLUMNS.items()}})
    return html_table(pd.DataFrame(table), dict(GPU_COLUMNS.values()),
                      notes=f"{_machine(result).get('gpu')}; load: {load_text(result)}")


def measured_at(r: dict | None) -> str:
    """When a benchmark ran (a timed pipeline: when its log starts), ISO."""
    return str(((r or {}).get("run") or {}).get("started") or _machine(r).get("finished")
               or "")


def machine_table(results: dict[str, dict | None]) -> pd.DataFrame:
    """Where, when and under what load each benchmark ran (five columns)."""
    rows = []
    for name in BENCHMARKS:
        r = results.get(name)
        if r is None or (name == "gpu_check" and not gpu_ran(r)):
            rows.append({"benchmark": name, "measured": NOT_RUN if name == "gpu_check"
                         else NOT_MEASURED})
            continue
        m = _machine(r)
        rows.append({"benchmark": name, "measured": measured_at(r)[:16].replace("T", " "),
                     "load / cores": load_text(r), "threads": str(r.get("omp_num_threads") or
                     "") if r.get("run") else str(m.get("omp_num_threads") or
                                                  m.get("torch_threads") or ""),
                     "seconds": r.get("total_seconds") if r.get("run") else m.get("seconds")})
    return pd.DataFrame(rows, columns=["benchmark", "measured", "load / cores", "threads",
                                       "seconds"])


def machine_shown(results: dict[str, dict | None]) -> Table:
    """:func:`machine_table` as the page shows it, with the load note."""
    return html_table(machine_table(results), {"seconds": ".0f"}, notes=LOAD_NOTE)


def value_text(value, spec: str = ".2f") -> str:
    """``value`` formatted, :data:`NOT_MEASURED` where it is None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_MEASURED
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def cpu_default_model(results: dict[str, dict | None]) -> str:
    """The model the CPU-default benchmarks name, e.g. ``tf_efficientnet_lite0 at 128 px``
    (each benchmark's own where they differ)."""
    runs = {n: results.get(n) or {} for n in CPU_DEFAULT}
    seen = {n: f"{r['backbone']} at {r.get('img_size')} px" for n, r in runs.items()
            if r.get("backbone")}
    if len(set(seen.values())) == 1:
        return next(iter(seen.values()))
    return "; ".join(f"{k}: {v}" for k, v in seen.items()) or NOT_MEASURED


def summary_values(results: dict[str, dict | None]) -> dict[str, str]:
    """The values the page's prose quotes, as text (:data:`NOT_MEASURED` where absent): each
    ratio (:data:`RATIOS`' keys) and its ``<key>_verdict``, the rates behind them, the CPU
    default's model, the pipeline's total, date and load, the machine. Loaded or not. The rest
    of ``qfm predict``'s: :func:`qfm.report.performance_predict.predict_values`."""
    out = {}
    for row in ratio_table(results).itertuples():
        out[row.key] = value_text(row.ratio)
        out[f"{row.key}_verdict"] = verdict(row.met)
    out["cpu_default_model"] = cpu_default_model(results)
    out["step_image_params_m"] = value_text(lookup(results, ("step_cost", "backbone_params_m")),
                                            ".1f")
    lt = results.get("loader_throughput") or {}
    out["loader_workers"] = value_text(lt.get("workers"), "d")
    out["loader_model_ips"] = value_text(lt.get("model_images_per_s"), ".2f")
    for k in ("no_cache", "cache_png", "cache_jpg"):
        out[f"loader_{k}_ips"] = value_text(lookup(lt, ("loaders", k, "images_per_s")), ".0f")
    ps = results.get("pipeline_stages") or {}
    total = sum(s.get("seconds") or 0 for s in ps.get("stages") or [])
    out["pipeline_total_minutes"] = value_text(total / 60 if total else None, ".0f")
    out["pipeline_date"] = value_text(measured_at(ps)[:10] or None)
    out["pipeline_load"] = load_text(ps) or NOT_MEASURED
    out["pipeline_source"] = value_text(ps.get("source")) + (" (smoke)" if ps.get("smoke")
                                                             else "")
    out["pipeline_lock"] = lock_text(ps.get("dvc_lock"))
    second = ps.get("second_repro") or {}
    out["pipeline_second"] = (NOT_MEASURED if second.get("idle") is None else
                              "idle, nothing left to run" if second["idle"] else
                              f"would run {', '.join(second['out_of_date'])} again")
    measured = [r for r in results.values() if r is not None and not r.get("dry_run")]
    loads = [v for r in measured for v in (machine_load(r)[0],) if v is not None]
    cores = {_machine(r).get("cpu_cores") for r in measured if not _machine(r).get("gpu")}
    threads = {_machine(r).get("omp_num_threads") for r in measured} - {None}
    out["cpu_cores"] = ", ".join(map(str, sorted(cores - {None}))) or NOT_MEASURED
    out["load_range"] = f"{min(loads):.1f}–{max(loads):.1f}" if loads else NOT_MEASURED
    out["omp_threads"] = ", ".join(sorted(map(str, threads))) or NOT_MEASURED
    gpu = results.get("gpu_check")
    out["gpu_status"] = _machine(gpu).get("gpu") if gpu_ran(gpu) else NOT_RUN
    out.update({} if gpu_ran(gpu) else {"gpu_predict": NOT_RUN, "gpu_predict_verdict": NOT_RUN})
    return out


def lock_text(lock: dict | None) -> str:
    """Whether a fresh copy's ``dvc repro`` left ``dvc.lock`` as committed: ``unchanged``, or
    the outputs whose bytes changed (:data:`NOT_MEASURED` before the check existed)."""
    if not lock:
        return NOT_MEASURED
    if lock.get("unchanged"):
        return "unchanged: every output was rewritten with the committed bytes"
    outs = [c["out"] for c in lock.get("changed_outs") or []]
    return f"changed in {len(outs)} outputs ({', '.join(outs)})"
