"""Files: atomic writes (a temporary file beside the target, then a rename), JSON, sha256, the
code version.

A killed process leaves the old file or the new one, never half of one; the temporary file
(``.<name>.<random>.tmp``) is removed when the write fails. Every module that writes a file
others read (checkpoints, JSON, tables, cached images, benchmark results) goes through here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
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
    working tree had uncommitted changes (``git`` empty outside a checkout)."""
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
