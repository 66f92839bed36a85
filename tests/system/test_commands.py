"""Every shell command the README and the book show is one a reader can run as written.

Commands are read from the ```bash / ```console / ```shell blocks of ``README.md`` and
``book/*.md``, from the inline code of their task tables (a cell that starts with a command),
from ``params.yaml``'s DVC queue recipe and from the Paper protocol page's generated commands.
Each is checked against what it names: a ``qfm`` command (also under ``torchrun -m qfm.cli``)
parses with ``qfm``'s own argparse parser and every ``--set`` key is a parameter; a ``dvc``
command parses with DVC's parser, ``dvc repro STAGE`` names a stage of ``dvc.yaml`` and every
``dvc exp run -S key=value`` key exists in ``params.yaml``; ``pip install -e ".[extra]"`` names
an extra of ``pyproject.toml``; ``python -m MODULE`` / ``python FILE`` name what exists. No
command holds a placeholder (``...``, ``…``, ``/path/to``, ``<...>``). A failure quotes the
command and where it was shown.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from qfm.cli import build_parser
from qfm.config import RunConfig, flatten, to_dict

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(?:bash|console|shell|sh)[ \t]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`]+)`")
PROGRAMS = ("qfm", "dvc", "python", "python3", "pip", "torchrun", "jupyter-book", "git",
            "export", ".", "for", "do", "done")  # the last five: the shell's own
PLACEHOLDER = re.compile(r"\.\.\.|…|/path/to|<[^<>\s]+>")
SHELL_OPS = re.compile(r"\s*(?:&&|;)\s*")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]


def split_lines(block: str) -> list[str]:
    """A shell block as single commands: continuations joined, comments and prompts dropped,
    ``&&`` / ``;`` chains split."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"^\s*\$\s+", "", line)  # a console prompt
        words = shlex.split(line, comments=True)
        if words:
            text = shlex.join(words) if "&&" not in line and ";" not in line else \
                line.split(" #", 1)[0].strip()
            out.extend(c for c in SHELL_OPS.split(text) if c)
    return out


def shown_commands() -> list[tuple[str, str]]:
    """``(where, command)`` for every command the README and the book show, plus the
    params.yaml recipe and the Paper protocol page's generated commands."""
    from qfm.report import protocol_page

    found = []
    for path in doc_files():
        text, rel = path.read_text(), path.relative_to(ROOT).as_posix()
        for block in FENCE.findall(text):
            found += [(rel, c) for c in split_lines(block)]
        for line in text.splitlines():
            if line.lstrip().startswith("|"):  # a task table: `command` cells
                for code in INLINE.findall(line):
                    if code.split(" ", 1)[0] in PROGRAMS and " " in code:
                        found += [(f"{rel} (table)", c) for c in split_lines(code)]
    params_text = (ROOT / "params.yaml").read_text()
    found += [("params.yaml recipe", c)
              for c in split_lines(protocol_page.queue_recipe(params_text))]
    for name, text in protocol_page.commands(yaml.safe_load(params_text)).items():
        found += [(f"protocol page ({name})", c) for c in split_lines(text)]
    return found


def param_keys() -> set[str]:
    """Every dotted key of params.yaml (nested sections flattened)."""
    def walk(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
    return set(walk(yaml.safe_load((ROOT / "params.yaml").read_text())))


def stage_names() -> set[str]:
    """dvc.yaml's stages, with ``name@key`` for every foreach/matrix entry."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    names = set(stages)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, st in stages.items():
        each = st.get("foreach") if isinstance(st, dict) else None
        if isinstance(each, str) and each.startswith("${"):
            node = raw
            for part in each[2:-1].split("."):
                node = node[part]
            each = node
        if isinstance(each, dict):
            names |= {f"{name}@{k}" for k in each}
        elif isinstance(each, list):
            names |= {f"{name}@{k}" for k in each}
    return names


def check_qfm(args: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            ns = build_parser().parse_args(args)
        except SystemExit:
            raise AssertionError(err.getvalue().strip().splitlines()[-1]) from None
    known = set(flatten(to_dict(RunConfig())))
    for item in getattr(ns, "set", None) or []:
        key = item.split("=", 1)[0]
        assert key in known, f"--set {key}: no such parameter"


def check_dvc(args: list[str]) -> None:
    from dvc.cli import DvcParserError
    from dvc.cli.parser import get_main_parser

    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
        try:
            ns = get_main_parser().parse_args(args)
        except (SystemExit, DvcParserError):
            raise AssertionError("dvc cannot parse it") from None
    if args[:1] == ["repro"]:
        missing = set(getattr(ns, "targets", None) or []) - stage_names()
        assert not missing, f"no stage {sorted(missing)} in dvc.yaml"
    if args[:2] == ["exp", "run"]:
        keys = param_keys()
        for item in getattr(ns, "set_param", None) or []:
            key = item.split("=", 1)[0]
            assert key in keys, f"-S {key}: not in params.yaml"


def check_python(args: list[str]) -> None:
    if args[:1] == ["-m"]:
        assert importlib.util.find_spec(args[1]) is not None, f"no module {args[1]}"
        if args[1] == "qfm.cli":
            check_qfm(args[2:])
    else:
        assert (ROOT / args[0]).is_file(), f"no file {args[0]}"


def check_pip(args: list[str]) -> None:
    assert args[:1] == ["install"], "only `pip install` is shown"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for a in args[1:]:
        m = re.fullmatch(r"\.\[([\w,-]+)\]", a)
        if m:
            missing = set(m.group(1).split(",")) - set(extras)
            assert not missing, f"no extra {sorted(missing)} in pyproject.toml"


def check(command: str) -> None:
    """Raise AssertionError (with why) unless ``command`` is runnable as shown."""
    assert not PLACEHOLDER.search(command), f"placeholder {PLACEHOLDER.search(command)[0]!r}"
    words = shlex.split(command)
    prog, args = words[0], words[1:]
    assert prog in PROGRAMS, f"unknown program {prog!r} (teach tests/system/test_commands.py)"
    if prog == "qfm":
        check_qfm(args)
    elif prog == "torchrun":
        check_python(args[next(i for i, a in enumerate(args) if a == "-m"):])
    elif prog == "dvc":
        check_dvc(args)
    elif prog in ("python", "python3"):
        check_python(args)
    elif prog == "pip":
        check_pip(args)
    elif prog == "jupyter-book":
        assert args[0] == "build" and (ROOT / args[1]).is_dir(), "jupyter-book build <book>"


COMMANDS = shown_commands()


def test_commands_are_found_where_the_docs_show_them():
    where = {w.split(" ")[0] for w, _ in COMMANDS}
    assert {"README.md", "book/protocol.md", "book/ablations.md", "params.yaml"} <= where
    texts = [c for _, c in COMMANDS]
    assert "dvc exp run -S qfm.rho=0.1" in texts  # the Quick start's ablation
    assert any(c.startswith("qfm protocol --dataset") for c in texts)


@pytest.mark.parametrize("where,command", COMMANDS, ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_every_shown_command_runs_as_written(where, command):
    try:
        check(command)
    except AssertionError as err:
        pytest.fail(f"{where}: `{command}`: {err}")


@pytest.mark.parametrize("command,why", [
    ("qfm train --run-dir runs/x --set ...", "placeholder"),
    ("qfm train --set model.weights=/path/to/w.safetensors --run-dir r", "placeholder"),
    ("qfm trian --run-dir runs/x", "invalid choice"),
    ("qfm train --run-dir r --set model.nope=1", "no such parameter"),
    ("dvc exp run -S qfm.nope=1", "not in params.yaml"),
    ("dvc repro nostage", "no stage"),
    ("dvc exp rn", "cannot parse"),
    ('pip install -e ".[nope]"', "no extra"),
    ("python -m qfm.nope", "no module"),
    ("python scripts/nope.py", "no file"),
    ("make all", "unknown program"),
])
def test_the_checker_catches_what_a_reader_could_not_run(command, why):
    with pytest.raises(AssertionError, match=why):
        check(command)


def test_split_lines_joins_continuations_and_splits_chains():
    block = ("python3 -m venv .venv && . .venv/bin/activate  # one line\n"
             "qfm train --run-dir r \\\n    --set train.epochs=2   # resumable\n")
    assert split_lines(block) == ["python3 -m venv .venv", ". .venv/bin/activate",
                                  "qfm train --run-dir r --set train.epochs=2"]
