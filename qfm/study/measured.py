"""Results measured on a data set the repository cannot ship (CLIVE), committed with git.

The ``clive`` stage runs the study where the data is (:func:`qfm.paths.find_dataset`) and
writes ``measured/<name>/``: the run rows, the tuning record, the default model's head and
``provenance.json`` (commit, command, date, machine, a fingerprint of the label values and
of the image list, a fingerprint of the code and parameters that made them). Where the data
is absent the stage changes nothing and says so; the committed results stand, and the book
compares their code fingerprint with the current one (:func:`status`), so a stale result is
shown as stale, never mixed silently with fresh ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

from qfm import paths
from qfm.files import code_version, read_json

# the code a measured result depends on (relative to the repository root): what the stage's
# command imports (tests/system/test_pipeline_deps.py checks the stage's deps cover it)
CODE = ("qfm/__init__.py", "qfm/config.py", "qfm/files.py", "qfm/paths.py", "qfm/core",
        "qfm/data", "qfm/study/__init__.py", "qfm/study/batches.py", "qfm/study/measured.py",
        "qfm/study/real.py", "qfm/study/runs.py", "qfm/study/stages.py", "qfm/study/tokens.py")


def code_fingerprint(params: dict, root: str | Path | None = None, extra: tuple = ()) -> str:
    """sha256 over the source files of :data:`CODE` (+ ``extra``: a stage built on this one)
    and the parameters that shape the runs."""
    root = Path(root) if root else paths.home()
    h = hashlib.sha256()
    for item in CODE + tuple(extra):
        p = root / item
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


def machine() -> dict:
    """The machine a measurement ran on (no host name, no path)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(terse=True), "python": platform.python_version(),
            "cpu": platform.machine(), "cores": os.cpu_count(),
            "load_average_start": [round(x, 2) for x in load] if load else None}


def provenance(data: dict, params: dict, seconds: float, command: str | None = None,
               extra: tuple = ()) -> dict:
    """What a measured result was made from and with.

    Args:
        data: the data set's fingerprint (:func:`qfm.study.real.fingerprint`).
        params: the parameters that shaped the runs (also in the code fingerprint).
        seconds: wall time of the whole measurement.
        command: the command that ran (default: this process's).
    """
    code = code_version()
    if command is None:  # never a machine path: the notebook's kernel says its stage
        prog = Path(sys.argv[0]).name
        command = "dvc repro clive (papermill notebooks/clive.ipynb)" \
            if prog.startswith("ipykernel") else " ".join(["qfm" if prog == "qfm" else prog,
                                                           *sys.argv[1:]])
    return {"commit": code.get("git") or None, "dirty": bool(code.get("dirty")),
            "command": command,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "seconds": round(seconds, 1), "data": data,
            "params": params, "code_fingerprint": code_fingerprint(params, extra=extra)}


def status(out_dir: str | Path, params: dict, extra: tuple = ()) -> dict:
    """Whether ``out_dir`` holds measured results and whether the current code and
    parameters are those that made them.

    Returns:
        ``{"present": bool, "stale": bool, "provenance": {...} | None, "why": str}``.
    """
    prov_file = Path(out_dir) / "provenance.json"
    if not prov_file.is_file():
        return {"present": False, "stale": False, "provenance": None,
                "why": "not measured yet (run the clive stage where the data is)"}
    prov = read_json(prov_file)
    now = code_fingerprint(params, extra=extra)
    stale = prov.get("code_fingerprint") != now
    why = ("the code or parameters changed since they were measured: rerun the clive stage "
           "where the data is" if stale else "measured with the current code and parameters")
    return {"present": True, "stale": stale, "provenance": prov, "why": why}


def clive_section(raw: dict) -> tuple[dict, dict]:
    """(params.yaml's ``clive`` section, the study section it implies for the tuner and the
    group: CLIVE's own seeds, tuning seeds, features and the world's tuning grids)."""
    from qfm.config import ConfigError

    cl = raw.get("clive")
    if not isinstance(cl, dict):
        raise ConfigError("clive: section missing in params.yaml")
    for key in ("root", "splits", "resize", "views", "view_crop", "variants", "tune_seeds"):
        if key not in cl:
            raise ConfigError(f"clive.{key}: missing")
    tune = {**raw["study"]["tune"], "seeds": list(cl["tune_seeds"])}
    study = {"features": "livec", "seeds": list(range(int(cl["splits"]))),
             "workers": int(cl.get("workers", 2)), "tune": tune,
             "groups": {"livec": {"spurious": 0.0, "variants": list(cl["variants"])}}}
    return cl, study


def shaping_params(raw: dict) -> dict:
    """The parameters a measured result depends on (its code fingerprint includes them)."""
    keys = ("shared", "model", "train", "qfm", "distill", "variants", "clive")
    return {k: raw.get(k) for k in keys} | {"study.tune": raw["study"]["tune"]}


def run_clive(params_path: str | Path = "params.yaml", out_dir: str | Path | None = None,
              progress: bool = True) -> dict:
    """The ``clive`` stage: the study on CLIVE where the data is; otherwise nothing changes.

    Writes ``out_dir`` (default ``measured/livec``): ``tune.json``, ``livec.json`` (one row
    per run), ``default_head.safetensors`` (+ sidecar: the default model's head, refit on
    every image) and ``provenance.json``.

    Returns:
        ``{"status": "measured" | "no data", ...}``.
    """
    import time

    from qfm.config import load_params, read_params, to_dict
    from qfm.core.checkpoint import sidecar
    from qfm.files import write_json
    from qfm.study import real, stages

    t0 = time.perf_counter()
    raw = read_params(params_path)
    cl, study = clive_section(raw)
    out = Path(out_dir) if out_dir else paths.measured_dir("livec")
    root = paths.find_dataset("livec", cl["root"])
    if root is None:
        out.mkdir(parents=True, exist_ok=True)  # the stage's output, empty until measured
        st = status(out, shaping_params(raw))
        msg = (f"clive: no CLIVE copy found (clive.root: {cl['root']}; QFM_DATA, data/livec, "
               f"../shared/data/livec): {out} unchanged — {st['why']}")
        print(msg, flush=True)
        return {"status": "no data", "message": msg, **st}
    base = load_params(params_path)
    src = real.source("livec", root, int(cl["splits"]))
    recipe = real.TokenRecipe(int(cl["resize"]), int(cl["views"]), int(cl["view_crop"]))
    feats = paths.features_dir() / "livec.safetensors"
    data = real.fingerprint(src.table)
    want = {"model": to_dict(base.model), "recipe": vars(recipe), "data": data}
    cached = read_json(sidecar(feats)) if sidecar(feats).is_file() else {}  # no tokens read
    if "recipe" in cached:  # a cache made before a recipe field existed has its default
        cached["recipe"] = {**vars(real.TokenRecipe()), **cached["recipe"]}
    if not feats.is_file() or any(cached.get(k) != v for k, v in want.items()):
        real.extract(base.model, root, src.table, recipe, feats, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    keep_notice(root, out)
    code = code_fingerprint(shaping_params(raw))
    reused = []  # a step whose file carries the current code fingerprint is not rerun
    if _current(out / "tune.json", code):
        tuned, reused = read_json(out / "tune.json"), reused + ["tune"]
    else:
        tuned = stages.tune(params_path, out / "tune.json", progress, study=study, source=src)
        _stamp(out / "tune.json", code)
    if _current(out / "livec.json", code):
        rows, reused = read_json(out / "livec.json")["rows"], reused + ["livec"]
    else:
        rows = stages.run_group(params_path, "livec", out / "livec.json", out / "tune.json",
                                None, progress, study=study, source=src)
        _stamp(out / "livec.json", code)
    head = refit_default(params_path, study, src, rows, tuned, out / "default_head.safetensors",
                         progress)
    prov = provenance(data, shaping_params(raw), time.perf_counter() - t0)
    prov["default_head"] = {k: head[k] for k in ("variant", "epochs", "images", "val_srcc")}
    prov["reused_steps"] = reused
    write_json(prov, out / "provenance.json")
    return {"status": "measured", "provenance": prov}


def refit_default(params_path, study: dict, src, rows: list[dict], tuned: dict,
                  out: str | Path, progress: bool = True) -> dict:
    """The default model's head, by rule: the variant with the best mean validation SRCC over
    the seeds, trained again on **every** image for as many epochs as its runs chose on
    validation (median best epoch + 1), with its tuned values. Nothing is selected on the
    refit (it has no held-out part): its sidecar carries the 10-split validation numbers.

    Returns:
        The head's metadata.
    """
    import numpy as np
    import pandas as pd

    from qfm.config import load_params, read_params, to_dict
    from qfm.core.checkpoint import save_tensors
    from qfm.study import stages
    from qfm.study.runs import make_specs, run_specs

    raw, base = read_params(params_path), load_params(params_path)
    frame = pd.DataFrame(rows)
    variant = stages.best_variant(rows)
    mine = frame[frame["variant"] == variant]
    epochs = int(np.median(mine["best_epoch"])) + 1
    everything = pd.DataFrame({"image": src.table["image"]})
    split = pd.concat([everything.assign(split=p) for p in ("train", "val", "test")])
    teacher = (raw["variants"][variant] or {}).get("teacher")
    chosen = tuned["chosen"]
    names = [teacher, variant] if teacher else [variant]
    per = {v: {**chosen.get(v, {}), "train.epochs": epochs, "train.patience": 0,
               "train.eval_every": epochs} for v in names}
    if teacher:  # the teacher's own epochs, chosen the same way
        t = frame[frame["variant"] == teacher]
        per[teacher]["train.epochs"] = per[teacher]["train.eval_every"] = \
            int(np.median(t["best_epoch"])) + 1 if len(t) else epochs
    specs = make_specs(raw, base, names, [0], 0.0, per_variant=per, split_tables={0: split})
    for spec in specs:  # a steps-matched control trains its chosen epochs like any other
        spec.match_steps = False
    res = run_specs(specs, str(paths.features_dir() / f"{study['features']}.safetensors"), src,
                    1, progress)[-1]
    meta = {"kind": "head", "config": to_dict(specs[-1].cfg), "variant": variant,
            "epochs": epochs, "images": int(len(src.table)), "dataset": "livec",
            "val_srcc": float(mine["val_srcc"].mean()),
            "val_srcc_by_variant": frame.groupby("variant")["val_srcc"].mean().round(4).to_dict(),
            "chosen_on": f"the variant with the best mean validation SRCC over "
                         f"{mine['seed'].nunique()} CLIVE splits, refit on all "
                         f"{len(src.table)} images for the median best epoch + 1",
            "trained_on": "LIVE In the Wild Challenge (CLIVE), 930 of 1,162 images, MOS 0-100",
            # how a photo becomes the tokens the head saw: qfm predict does the same
            "preprocess": {"short_side": int(raw["clive"]["resize"]), "crops": 1}}
    save_tensors(res["state"], out, meta)
    return meta


def load_rows(out_dir: str | Path) -> list[dict]:
    """The run rows of a measured study (empty when it was never measured)."""
    f = Path(out_dir) / "livec.json"
    return read_json(f)["rows"] if f.is_file() else []


def provenance_table(out_dir: str | Path):
    """The provenance of a measured result as a two-column table (for the notebook/book)."""
    import pandas as pd

    f = Path(out_dir) / "provenance.json"
    if not f.is_file():
        return pd.DataFrame({"what": ["status"], "value": ["not measured yet"]})
    p = read_json(f)
    m, d = p.get("machine") or {}, p.get("data") or {}
    rows = [("commit", (p.get("commit") or "–")[:12] + (" (dirty)" if p.get("dirty") else "")),
            ("command", p.get("command")), ("date", p.get("date")),
            ("machine", f"{m.get('cores')} cores, {m.get('platform')}"),
            ("wall time", f"{p.get('seconds', 0) / 60:.1f} min"),
            ("images", d.get("images")), ("labels sha256", (d.get("labels_sha256") or "")[:16]),
            ("image list sha256", (d.get("image_list_sha256") or "")[:16]),
            ("code fingerprint", (p.get("code_fingerprint") or "")[:16])]
    return pd.DataFrame(rows, columns=["what", "value"])


def keep_notice(root: str | Path, out: str | Path) -> Path | None:
    """Copy the data set's copyright notice, in full, beside results measured on it (CLIVE's
    licence asks for the notice in all copies and for two citations where results are shown)."""
    from qfm.files import atomic_write

    readme = Path(root) / "README.txt"
    if not readme.is_file():
        return None
    text = readme.read_text(errors="replace")
    start, end = text.find("COPYRIGHT NOTICE STARTS"), text.find("COPYRIGHT NOTICE ENDS")
    if start < 0 or end < 0:
        return None
    start, end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
    notice = ("Results in this folder were measured on the LIVE In the Wild Image Quality "
              "Challenge Database (no image of it is included). Its notice, in full:\n\n"
              + text[start:end if end > 0 else None].rstrip() + "\n")
    return atomic_write(Path(out) / "NOTICE.txt", lambda tmp: Path(tmp).write_text(notice))


def _current(path: Path, code: str) -> bool:
    """Whether a step's result file exists and was made by the current code and params."""
    return path.is_file() and read_json(path).get("code_fingerprint") == code


def _stamp(path: Path, code: str) -> None:
    """Record in a step's result file the code fingerprint that made it."""
    from qfm.files import write_json

    write_json({**read_json(path), "code_fingerprint": code}, path)
