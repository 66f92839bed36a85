"""Files: atomic writes (a temporary file beside the target, then a rename), JSON, sha256, the
code version, the log of wall times and the clean-up of executed notebooks.

A killed process leaves the old file or the new one, never half of one; the temporary file
(``.<name>.<random>.tmp``) is removed when the write fails. Every module that writes a file
others read (checkpoints, JSON, tables, cached images, benchmark results) goes through here.

Bytes that reproduce: a file a DVC stage writes holds nothing that changes between two runs of
the same inputs — no wall time, date, machine or git state — so a fresh clone's ``dvc repro``
leaves ``dvc.lock`` as committed. Wall times go to :func:`log_seconds`'s file
(``logs/timings.jsonl``, ignored by git, hashed by nobody); :func:`scrub_notebook` takes
papermill's and nbclient's clock readings out of an executed notebook (``python -m qfm.files
scrub-notebook FILE...``, after papermill, and logs the notebook's duration).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from qfm import __version__


class FileError(ValueError):
    """A file qfm reads is missing or broken (the message names it)."""


def new_file_mode() -> int:
    """The mode ``open()`` would give a new file (0o666 less the umask); ``mkstemp`` gives
    0o600, which would leave outputs unreadable to everyone but their owner."""
    try:  # Linux: read the umask without changing it (os.umask is process-wide)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    Args:
        path: the file to create or replace (parent folders are created).
        write: writes the whole file to the path it is given (a ``str``).
    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())  # mkstemp's 0o600 would hide the file from others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` atomically (contents only, like :func:`shutil.copyfile`)."""
    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (sorted keys, indented)."""
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, sort_keys=True,
                                                              default=str) + "\n"))
    return path


def read_json(path: str | Path) -> dict:
    """Read a JSON file, with a one-line error naming it when missing or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise FileError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The code a checkpoint was made with: qfm's version, the git commit and whether the
    working tree had uncommitted changes (``git`` empty outside a checkout).

    Never inside a DVC stage's output: the commit a clone runs is not the one the committed
    outputs were made at, and ``dirty`` is true while DVC rewrites ``dvc.lock``. A stage's
    inputs (code included) are in ``dvc.lock`` already."""
    where = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else False
    return {"qfm": __version__, "git": commit, "dirty": dirty}


TIMINGS = Path("logs") / "timings.jsonl"  # under the project home; ignored by git, not DVC's


def timings_file() -> Path:
    """The log of wall times (``<QFM_HOME or .>/logs/timings.jsonl``)."""
    return Path(os.environ.get("QFM_HOME", ".")).resolve() / TIMINGS


def log_seconds(what: str, seconds: float, **info: Any) -> float:
    """Append one wall time to :func:`timings_file` (one JSON line, with the date), instead of
    writing it into an output DVC hashes. Best effort: a log that cannot be written is skipped.

    Args:
        what: what took that long (``features``, ``run``, ``upstream``, ``notebook``, ...).
        seconds: the wall time.
        info: what identifies it (a file, a variant and seed, ...).
    Returns:
        ``seconds``.
    """
    line = json.dumps({"what": what, "seconds": round(float(seconds), 3), **info,
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                      sort_keys=True, default=str) + "\n"
    try:
        path = timings_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        try:  # one write of one line: processes appending side by side do not interleave
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass
    return float(seconds)


def read_timings(what: str | None = None) -> list[dict]:
    """The entries of :func:`timings_file` (of one kind), oldest first; broken lines skipped."""
    path = timings_file()
    out = []
    if path.is_file():
        for text in path.read_text().splitlines():
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and (what is None or entry.get("what") == what):
                out.append(entry)
    return out


# papermill's and nbclient's clock readings in an executed notebook: its and each cell's
NOTEBOOK_CLOCK = ("start_time", "end_time", "duration")


def scrub_notebook(path: str | Path) -> Path:
    """Take the wall-clock record out of a notebook papermill executed, in place: papermill's
    ``start_time``, ``end_time`` and ``duration`` (the notebook's and each cell's),
    nbclient's ``execution`` timestamps of each cell, and the random id papermill gives the
    parameters cell it injects. Everything else — outputs, execution
    counts, papermill's parameters and status — stays, and the file keeps nbformat's layout
    (one-space indent, sorted keys), so two runs of the same inputs give the same bytes. The
    notebook's duration goes to :func:`log_seconds` (``what: notebook``).
    """
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise FileError(f"{path}: not a notebook ({err.msg}, line {err.lineno})") from None
    top = (nb.get("metadata") or {}).get("papermill") or {}
    duration = top.get("duration")

    def clean(meta: dict) -> None:
        pm = meta.get("papermill")
        if isinstance(pm, dict):
            for key in NOTEBOOK_CLOCK:
                pm.pop(key, None)
        meta.pop("execution", None)  # nbclient's iopub/shell timestamps

    clean(nb.get("metadata") or {})
    for cell in nb.get("cells") or []:
        clean(cell.get("metadata") or {})
        if "injected-parameters" in (cell.get("metadata") or {}).get("tags", []):
            cell["id"] = "injected-parameters"  # papermill draws a random id for the cell it adds
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False)  # papermill's layout
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    if duration is not None:
        try:
            name = path.resolve().relative_to(Path(os.environ.get("QFM_HOME", ".")).resolve())
        except ValueError:
            name = path
        log_seconds("notebook", float(duration), path=Path(name).as_posix())
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m qfm.files scrub-notebook FILE...`` (a DVC stage's command, after papermill)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "scrub-notebook" or len(args) < 2:
        print("usage: python -m qfm.files scrub-notebook FILE.ipynb...", file=sys.stderr)
        return 2
    try:
        for f in args[1:]:
            scrub_notebook(f)
    except FileError as err:
        print(f"qfm.files: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
