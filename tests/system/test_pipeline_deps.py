"""Every module a DVC stage's code imports is a dependency of that stage, so that ``dvc status``
never calls a stage up to date after the code it ran has changed.

Derived, not listed: for each stage of ``dvc.yaml`` the entry points are read from its command
— notebooks it runs (their code cells), ``python -c "…"`` snippets, ``python file.py`` /
``python -m module`` and ``qfm <command>`` (the ``cmd_*`` function the CLI dispatches to, with
the CLI helpers it calls) — and the ``qfm`` modules they import are followed transitively
through ``qfm/`` with :mod:`ast` (imports inside functions included: they run when the
function does). Each module file, each package ``__init__.py`` on the way and each notebook or
script run must be one of the stage's ``deps`` or inside a folder that is.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "qfm"


# --- what a piece of code imports ------------------------------------------------------------

def imported_names(source: str, package: str | None = None) -> set[str]:
    """Dotted names imported anywhere in ``source`` (``from a import b`` gives ``a`` and
    ``a.b``: ``b`` may be a module). ``package``: the importing module's package, for
    relative imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = (package or "").split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of module ``name`` under ``root`` (None: not a module, e.g. a function)."""
    base = root.joinpath(*name.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def closure(names: set[str], root: Path = ROOT) -> set[Path]:
    """Files of the ``qfm`` modules ``names`` import, transitively, with the package
    ``__init__.py`` files that importing them runs."""
    seen: set[Path] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):  # qfm, qfm.data, qfm.data.readers
            f = module_file(".".join(parts[:k]), root)
            if f is None or f in seen:
                continue
            seen.add(f)
            pkg = ".".join(parts[:k]) if f.name == "__init__.py" else ".".join(parts[:k - 1])
            todo += sorted(imported_names(f.read_text(), pkg))
    return seen


# --- a stage's entry points ------------------------------------------------------------------

def notebook_source(path: Path) -> str:
    """The code cells of a notebook, IPython magics and shell lines left out."""
    nb = nbformat.read(path, as_version=4)
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines += [ln for ln in cell.source.splitlines()
                      if not ln.lstrip().startswith(("%", "!"))]
            lines.append("")
    return "\n".join(lines)


def cli_function_source(argv: list[str]) -> tuple[str, str]:
    """Source of the ``cmd_*`` function ``qfm argv…`` runs, plus the module-level helpers of
    its module (``qfm.cli`` or ``qfm.cli_data``) it calls (transitively), and the top-level
    imports of both; and that module's file (relative to the repository)."""
    import argparse

    import qfm.cli as cli

    parser, func = cli.build_parser(), None
    for word in argv:  # walk the sub-commands: qfm data cache → data → cache
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                   None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
        func = parser.get_defaults("func") if hasattr(parser, "get_defaults") else \
            parser._defaults.get("func")
    assert func is not None, f"qfm {' '.join(argv)}: no such command"
    import sys

    top, helpers = [], {}
    for module in {cli, sys.modules[func.__module__]}:  # qfm.cli and the command's own module
        tree = ast.parse(Path(module.__file__).read_text())
        top += [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        helpers.update({n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)})
    sources, todo, done = [ast.unparse(n) for n in top], [func.__name__], set()
    while todo:
        name = todo.pop()
        if name in done or name not in helpers:
            continue
        done.add(name)
        sources.append(ast.unparse(helpers[name]))
        todo += [n.func.id for n in ast.walk(helpers[name]) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name)]
    own = Path(sys.modules[func.__module__].__file__).resolve().relative_to(ROOT).as_posix()
    return "\n\n".join(sources), own


def entry_points(cmd: str, root: Path = ROOT) -> tuple[set[str], set[str]]:
    """(qfm modules imported by the code ``cmd`` runs, files it runs that must be deps)."""
    names: set[str] = set()
    files: set[str] = set()
    outputs = set(re.findall(r"papermill\s+\S+\.ipynb\s+(\S+\.ipynb)", cmd))
    for nb in re.findall(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.ipynb)", cmd):
        if nb not in outputs and (root / nb).is_file():  # an input notebook (papermill's
            # executed copy is an output, even where a committed one exists)
            files.add(nb)
            names |= imported_names(notebook_source(root / nb))
    for snippet in re.findall(r"python3?\s+-c\s+\"((?:[^\"\\]|\\.)*)\"", cmd) + \
            re.findall(r"python3?\s+-c\s+'([^']*)'", cmd):
        names |= imported_names(snippet)
    for command in re.split(r"&&|\|\||;|\|", cmd):
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        words = [w for w in words if not re.match(r"^[A-Z_][A-Z0-9_]*=", w)]  # env settings
        if not words:
            continue
        prog = Path(words[0]).name
        if prog == PACKAGE:  # the console script: qfm/cli.py, only this command's imports
            source, own = cli_function_source(words[1:])
            files |= {f"{PACKAGE}/cli.py", own}
            names |= imported_names(source, PACKAGE)
        elif re.fullmatch(r"python[\d.]*", prog) and len(words) > 1:
            if words[1] == "-m" and len(words) > 2:
                names.add(words[2])
                f = module_file(words[2], root)
                if f is not None and f.is_relative_to(root):
                    files.add(f.relative_to(root).as_posix())
            elif words[1].endswith(".py") and (root / words[1]).is_file():
                files.add(words[1])
                names |= imported_names((root / words[1]).read_text())
    return names, files


def required(cmd: str, root: Path = ROOT) -> set[str]:
    """Every file (relative to ``root``) the stage command ``cmd`` runs or imports from qfm."""
    names, files = entry_points(cmd, root)
    return files | {f.relative_to(root).as_posix() for f in closure(names, root)}


def missing_deps(stage: dict, root: Path = ROOT) -> list[str]:
    """Files the stage needs that none of its ``deps`` (file or folder) covers."""
    body = stage.get("do", stage)
    cmd = body["cmd"] if isinstance(body["cmd"], str) else " && ".join(body["cmd"])
    deps = [str(d if isinstance(d, str) else next(iter(d))).rstrip("/")
            for d in body.get("deps") or []]
    covered = lambda f: any(f == d or f.startswith(d + "/") for d in deps)  # noqa: E731
    return sorted(f for f in required(cmd, root) if not covered(f))


def stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


# --- the checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(stages()))
def test_every_module_a_stage_imports_is_a_declared_dependency(name):
    missing = missing_deps(stages()[name])
    assert not missing, f"dvc.yaml stage {name}: add to deps: {', '.join(missing)}"


def test_the_check_finds_what_each_kind_of_entry_point_imports():
    """The checker itself: a stage that runs `qfm world`, a notebook and a `python -c` with
    no deps misses the modules each imports (so the test above can fail)."""
    world = required("OMP_WAIT_POLICY=PASSIVE qfm world --out data/world")
    assert {"qfm/cli.py", "qfm/config.py", "qfm/data/world.py", "qfm/__init__.py",
            "qfm/data/__init__.py"} <= world
    assert "qfm/core/engine.py" not in world  # other sub-commands' imports are not counted
    snippet = required('python -c "from qfm.core.checkpoint import export_checkpoint; '
                       "export_checkpoint('a', 'b')\"")
    assert {"qfm/core/checkpoint.py", "qfm/files.py"} <= snippet
    perf = required("papermill notebooks/performance.ipynb book/executed/x.ipynb -p seed 0")
    assert {"notebooks/performance.ipynb", "qfm/report/performance.py"} <= perf
    assert "book/executed/x.ipynb" not in perf
    stage = {"cmd": "qfm data cache --dataset koniq10k --root x", "deps": ["qfm/data"]}
    assert missing_deps(stage) == sorted({"qfm/__init__.py", "qfm/cli.py", "qfm/config.py",
                                          "qfm/paths.py", "qfm/files.py", "qfm/cli_data.py"}
                                         & required(stage["cmd"]))
    assert "qfm/paths.py" in missing_deps(stage)


def test_every_study_group_has_one_stage():
    """``study.groups`` = the ``study`` foreach's groups + ``finetune`` (stage world_finetune,
    whose committed rows are where the figures read them): a group added to params.yaml but not
    to dvc.yaml would never run."""
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    groups = set(yaml.safe_load((ROOT / "params.yaml").read_text())["study"]["groups"])
    each = dvc["study"]["foreach"]
    assert len(each) == len(set(each)) and "finetune" not in each
    assert set(each) | {"finetune"} == groups
    ft = dvc["world_finetune"]
    assert "-p group finetune" in ft["cmd"] and "-p out_dir measured/world_finetune" in ft["cmd"]
    assert all(next(iter(o.values()))["cache"] is False for o in ft["outs"])


def test_every_uncached_out_is_committed_to_git():
    """A ``cache: false, persist: true`` out (world_finetune's rows, the toy upstream's weights)
    is what a clone gets in place of a run: git must not ignore it, or the clone reruns the
    stage after all (the book's HTML, uncached but not persisted, is a build folder)."""
    uncached = []
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        for out in (stage.get("do") or stage).get("outs", []):
            opts = next(iter(out.values())) if isinstance(out, dict) else {}
            if opts.get("cache") is False and opts.get("persist"):
                uncached.append(next(iter(out)))
    assert {"models/upstream.safetensors", "measured/world_finetune/finetune.json"} <= set(uncached)
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *uncached], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert not ignored, f"committed outs ignored by git: {ignored}"
