"""The record of results measured on a data set the repository cannot ship, committed with git.

A measuring stage (``livec``, ``livec_finetune``) runs where the data is
(:func:`qfm.paths.find_dataset`) and writes ``measured/<name>/``: the run rows, the tuning record, the default model's head and
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

import pandas as pd

from qfm import paths
from qfm.files import atomic_write, code_version, read_json, write_json

# the code a measured result depends on (relative to the repository root): what the stage's
# command imports (tests/system/test_pipeline_deps.py checks the stage's deps cover it)
CODE = ("qfm/__init__.py", "qfm/config.py", "qfm/knobs.py", "qfm/files.py", "qfm/paths.py",
        "qfm/core", "qfm/models", "qfm/losses", "qfm/data", "qfm/study/__init__.py",
        "qfm/study/batches.py", "qfm/study/livec.py", "qfm/study/real.py",
        "qfm/study/record.py", "qfm/study/run.py", "qfm/study/runner.py",
        "qfm/study/stages.py", "qfm/study/tune.py",
        "qfm/study/tokens.py")


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
        command = "dvc repro livec (papermill notebooks/livec.ipynb)" \
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
                "why": "not measured yet (run the livec stage where the data is)"}
    prov = read_json(prov_file)
    now = code_fingerprint(params, extra=extra)
    stale = prov.get("code_fingerprint") != now
    why = ("the code or parameters changed since they were measured: rerun the livec stage "
           "where the data is" if stale else "measured with the current code and parameters")
    return {"present": True, "stale": stale, "provenance": prov, "why": why}


def load_rows(out_dir: str | Path) -> list[dict]:
    """The run rows of a measured study (empty when it was never measured)."""
    f = Path(out_dir) / "livec.json"
    return read_json(f)["rows"] if f.is_file() else []


def provenance_table(out_dir: str | Path):
    """The provenance of a measured result as a two-column table (for the notebook/book)."""
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


def is_current(path: Path, code: str) -> bool:
    """Whether a step's result file exists and was made by the current code and params."""
    return path.is_file() and read_json(path).get("code_fingerprint") == code


def stamp(path: Path, code: str) -> None:
    """Record in a step's result file the code fingerprint that made it."""
    write_json({**read_json(path), "code_fingerprint": code}, path)
