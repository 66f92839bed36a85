"""The book's Performance page: read the benchmark JSON files and turn them into tables.

``benchmarks/*.py`` store one JSON object each as ``benchmarks/results/<name>.json``
(``benchmarks/run_all.py`` runs them all), every one with the same ``machine`` record
(:class:`harness.Record`: cores, threads, GPU, load average before and after, times). This
module reads whatever is there — a missing or unreadable file is "not measured yet", never an
error — and builds the tables ``notebooks/performance.ipynb`` shows. No measurement happens
here.

Two rules keep the page honest:

* ``gpu_check`` counts only when it ran on a GPU: absent, "no CUDA" or a CPU dry run reads
  :data:`NOT_RUN` wherever the page would quote it.
* A benchmark whose 1-minute load average exceeded the machine's cores (:func:`is_loaded`)
  ran on a loaded machine: its absolute rates and times are not quoted (the page says why),
  its within-run ratios are quoted with the load beside them, and the tables flag it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

NOT_MEASURED = "not measured yet"
NOT_RUN = "not run yet"  # gpu_check until it runs on a GPU
BENCHMARKS = ("step_cost", "predict_throughput", "loader_throughput", "pipeline_stages",
              "gpu_check")

# (benchmark, label, how to read its ratio, target, "max" = at most / "min" = at least)
RATIOS = (
    ("step_cost", "QFM-IQM step ÷ baseline step", ("ratio_median",), 1.5, "max"),
    ("predict_throughput", "predict ÷ backbone, CPU default",
     ("profiles", "default", "ratio_predict_over_backbone"), 0.8, "min"),
    ("predict_throughput", "predict ÷ backbone, paper profile",
     ("profiles", "paper", "ratio_predict_over_backbone"), 0.8, "min"),
    ("loader_throughput", "loader ÷ model, resize cache",
     ("ratio_with_cache",), 2.0, "min"),
    ("loader_throughput", "loader ÷ model, no cache",
     ("ratio_without_cache",), 2.0, "min"),
    ("gpu_check", "GPU: predict ÷ backbone", ("predict", "ratio_predict_over_backbone"),
     0.8, "min"),
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


def _get(obj: dict | None, path: tuple[str, ...]):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _machine(r: dict | None) -> dict:
    return (r or {}).get("machine") or {}


def machine_load(r: dict | None) -> tuple[float | None, int | None]:
    """(highest 1-minute load average recorded around a benchmark, CPU cores), None where
    the result does not say."""
    m = _machine(r)
    loads = [v[0] if isinstance(v, (list, tuple)) and v else v
             for v in (m.get("load_average_before"), m.get("load_average_after"))]
    loads = [float(v) for v in loads if isinstance(v, (int, float))]
    cores = m.get("cpu_cores")
    return (max(loads) if loads else None), (int(cores) if cores else None)


def is_loaded(r: dict | None) -> bool:
    """Whether a benchmark ran with a load average above the machine's core count (other
    jobs took CPU time from it: its absolute numbers say more about them than about qfm)."""
    load, cores = machine_load(r)
    return bool(r) and load is not None and cores is not None and load > cores


def _load_note(r: dict) -> str:
    load, cores = machine_load(r)
    return f"load {load:.1f} on {cores} cores"


def gpu_ran(r: dict | None) -> bool:
    """Whether ``gpu_check`` ran on a GPU (not absent, not "no CUDA", not a CPU dry run)."""
    return bool(r) and bool(_machine(r).get("gpu")) and not r.get("dry_run") \
        and not r.get("status")


def _conditions(name: str, r: dict) -> str:
    """One line saying what a benchmark ran on (model, batch, threads, load)."""
    m = _machine(r)
    bits = {
        "step_cost": lambda: f"{r.get('backbone')} {r.get('img_size')} px, batch "
                             f"{r.get('batch')}, {r.get('repeats')} pairs",
        "predict_throughput": lambda: f"batch {r.get('batch')}, workers "
                                      f"{_get(r, ('profiles', 'default', 'predict_workers'))}",
        "loader_throughput": lambda: f"{r.get('backbone')} {r.get('img_size')} px, batch "
                                     f"{r.get('batch')}, {r.get('workers')} worker(s)",
        "gpu_check": lambda: m.get("gpu") or ("CPU dry run" if r.get("dry_run") else ""),
    }.get(name, lambda: "")()
    threads = m.get("omp_num_threads") or m.get("torch_threads")
    tail = f"threads {threads}" if threads is not None else ""
    if m.get("load_average_before"):
        tail += f", load {float(m['load_average_before'][0]):.1f}"
    return ", ".join(b for b in (bits, tail) if b)


def ratio_table(results: dict[str, dict | None]) -> pd.DataFrame:
    """The measured ratios against their targets.

    Returns:
        Columns ``benchmark, ratio_name, ratio, target, kind ("at most"/"at least"), met
        (True/False/None), conditions``; ratio NaN and conditions :data:`NOT_MEASURED` where
        the benchmark has not run.
    """
    rows = []
    for name, label, path, target, kind in RATIOS:
        r = results.get(name)
        value = _get(r, path)
        if name == "gpu_check" and not gpu_ran(r):
            why = (r or {}).get("status") or ("only a CPU dry run" if (r or {}).get("dry_run")
                                              else "")
            rows.append((name, label, math.nan, target, kind, None,
                         f"{NOT_RUN} ({why})" if why else NOT_RUN, False))
            continue
        if r is None or value is None or r.get("status") or r.get("dry_run"):
            why = (r or {}).get("status") or (f"{NOT_MEASURED} (only a CPU dry run)"
                                              if (r or {}).get("dry_run") else NOT_MEASURED)
            rows.append((name, label, math.nan, target, kind, None, why, False))
            continue
        value = float(value)
        met = value <= target if kind == "max" else value >= target
        cond = _conditions(name, r)
        if is_loaded(r):
            cond = f"loaded machine ({_load_note(r)}): {cond}"
        rows.append((name, label, value, target, kind, met, cond, is_loaded(r)))
    df = pd.DataFrame(rows, columns=["benchmark", "ratio_name", "ratio", "target", "kind",
                                     "met", "conditions", "loaded"])
    df["kind"] = df["kind"].map({"max": "at most", "min": "at least"})
    return df


def notebook_seconds(folder: str | Path) -> pd.DataFrame:
    """Wall time of every executed notebook under ``folder`` (papermill's own record).

    Returns:
        Columns ``notebook`` (path under ``folder``, no suffix: ``train/baseline-s0``),
        ``seconds``, ``failed`` (papermill recorded an exception); unexecuted ones are left out.
    """
    rows = []
    for path in sorted(Path(folder).rglob("*.ipynb")):
        meta = json.loads(path.read_text()).get("metadata", {}).get("papermill", {})
        if meta.get("duration") is not None:
            rows.append({"notebook": path.relative_to(folder).with_suffix("").as_posix(),
                         "seconds": float(meta["duration"]),
                         "failed": bool(meta.get("exception"))})
    return pd.DataFrame(rows, columns=["notebook", "seconds", "failed"])


def stage_table(result: dict | None) -> pd.DataFrame:
    """Seconds per DVC stage from ``pipeline_stages`` (empty when not measured)."""
    rows = (result or {}).get("stages") or []
    return pd.DataFrame(rows, columns=["stage", "seconds", "status"])


def gpu_table(result: dict | None) -> pd.DataFrame:
    """One row per training configuration of ``gpu_check`` (empty when not measured)."""
    cols = ["config", "batch", "compile", "channels_last", "images_per_s",
            "images_per_s_gpu_resident", "fed_share", "gpu_busy_share_nvidia_smi",
            "peak_memory_gib", "partial"]
    if not gpu_ran(result):  # one row that says so (a dry run's CPU numbers are no GPU's)
        return pd.DataFrame([{c: NOT_RUN if c == "config" else None for c in cols}],
                            columns=cols)
    table = []
    for r in (result or {}).get("training") or []:
        row = {c: r.get(c) for c in cols}
        if "images_per_s" not in r:  # failed or skipped: say why in the name
            row["config"] = f"{r.get('config')} ({r.get('error') or r.get('skipped')})"
        table.append(row)
    return pd.DataFrame(table, columns=cols)


def machine_table(results: dict[str, dict | None]) -> pd.DataFrame:
    """Where and under what load each benchmark ran."""
    rows = []
    for name in BENCHMARKS:
        r = results.get(name)
        if name == "gpu_check" and not gpu_ran(r):
            rows.append({"benchmark": name, "measured": NOT_RUN})
            continue
        if r is None:
            rows.append({"benchmark": name, "measured": NOT_MEASURED})
            continue
        m = _machine(r)
        load = m.get("load_average_before")
        rows.append({"benchmark": name, "measured": m.get("finished") or "",
                     "loaded": is_loaded(r), "cpu_cores": m.get("cpu_cores"), "gpu": m.get("gpu") or "",
                     "load_1min": load[0] if load else None,
                     "omp_threads": m.get("omp_num_threads"),
                     "torch_threads": m.get("torch_threads"), "seconds": m.get("seconds")})
    return pd.DataFrame(rows)


def _fmt(value, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_MEASURED
    return format(value, spec) if isinstance(value, (int, float)) else str(value)


def summary_values(results: dict[str, dict | None]) -> dict[str, str]:
    """The numbers the page's prose quotes, as text (:data:`NOT_MEASURED` where absent).

    Keys: one per ratio (``step_cost``, ``predict_default``, ``predict_paper``,
    ``loader_cache``, ``loader_no_cache``, ``gpu_predict``), the loader's images/s, the
    pipeline's total, and the machine (cores, load range, threads).
    """
    ratios = ratio_table(results)
    keys = ("step_cost", "predict_default", "predict_paper", "loader_cache", "loader_no_cache",
            "gpu_predict")
    out = {}
    for k, row in zip(keys, ratios.itertuples()):  # a loaded machine's ratio: with its load
        out[k] = _fmt(row.ratio) + (f" (loaded machine: {_load_note(results[row.benchmark])})"
                                    if row.loaded else "")
    lt = results.get("loader_throughput") or {}
    out["loader_workers"] = _fmt(lt.get("workers"), "d")
    out["loader_model_ips"] = _rate(lt, lt.get("model_images_per_s"), ".2f")
    for k in ("no_cache", "cache_png", "cache_jpg"):
        out[f"loader_{k}_ips"] = _rate(lt, _get(lt, ("loaders", k, "images_per_s")), ".0f")
    pt = results.get("predict_throughput") or {}
    for prof in ("default", "paper"):
        for key, field in (("predict", "predict_images_per_s"),
                           ("backbone", "backbone_images_per_s"),
                           ("decode", "decode_crop_images_per_s_one_process")):
            out[f"predict_{prof}_{key}_ips"] = _rate(pt, _get(pt, ("profiles", prof, field)),
                                                     ".3g")
    out["predict_default_backbone"] = _fmt(_get(pt, ("profiles", "default", "backbone")))
    ps = results.get("pipeline_stages") or {}
    out["pipeline_total_minutes"] = _rate(ps, ps["total_seconds"] / 60 if ps.get(
        "total_seconds") else None, ".1f")
    out["pipeline_source"] = _fmt(ps.get("source")) + (" (smoke)" if ps.get("smoke") else "")
    measured = [r for r in results.values() if r is not None and not r.get("dry_run")]
    loads = []
    for r in measured:
        m = _machine(r)
        loads += [m[k][0] for k in ("load_average_before", "load_average_after") if m.get(k)]
    cores = {_machine(r).get("cpu_cores") for r in measured if not _machine(r).get("gpu")}
    threads = {_machine(r).get("omp_num_threads") for r in measured} - {None}
    cores -= {None}
    out["cpu_cores"] = ", ".join(map(str, sorted(cores))) or NOT_MEASURED
    out["load_range"] = f"{min(loads):.1f}–{max(loads):.1f}" if loads else NOT_MEASURED
    out["omp_threads"] = ", ".join(sorted(map(str, threads))) or NOT_MEASURED
    gpu = results.get("gpu_check")
    out["gpu_status"] = _machine(gpu).get("gpu") if gpu_ran(gpu) else NOT_RUN
    if not gpu_ran(gpu):
        out["gpu_predict"] = NOT_RUN
    return out


def _rate(r: dict, value, spec: str) -> str:
    """An absolute rate or time, or why it is not quoted (measured on a loaded machine)."""
    if value is not None and is_loaded(r):
        return "withheld (loaded machine)"  # the page says once why, and the load
    return _fmt(value, spec)


def stage_note(stages: pd.DataFrame, dvc_file: str | Path = "dvc.yaml") -> str:
    """Whether every measured stage is a stage of the current pipeline (``dvc.yaml``)."""
    import yaml

    current = set(yaml.safe_load(Path(dvc_file).read_text())["stages"])
    gone = sorted({s.split("@")[0] for s in stages["stage"]} - current) if len(stages) else []
    if not gone:
        return "Every stage measured is a stage of the current pipeline."
    return (f"These times were measured before the stages {', '.join(gone)} left the "
            f"pipeline: rerun benchmarks/pipeline_stages.py for the current one.")
