"""The rooms of qfm/ and who may import whom (shared/ARCHITECTURE.md): no import cycles,
``predict`` reaches neither training nor the study nor the report, data knows no model, the
core knows no study, runs or report, nothing imports the CLI, and the JSON-only report modules
import no torch. Imports inside functions count: they run when the function does."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QFM = ROOT / "qfm"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in QFM.rglob("*.py")}


def imports(name: str) -> set[str]:
    """qfm modules (and third-party top-level names) that module ``name`` imports."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names
                    if f"{node.module}.{a.name}" in MODULES}
    return {m if m in MODULES or not m.startswith("qfm") else m.rsplit(".", 1)[0]
            for m in out}


GRAPH = {m: {i for i in imports(m) if i in MODULES and i != m} for m in MODULES}


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        for i in GRAPH[m]:
            if i not in seen:
                seen.add(i)
                todo.append(i)
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if n.startswith("qfm") and n.count(".") >= 1 and n not in graph:
                continue
            if n == "qfm" or n.endswith("__init__"):
                continue
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if state.get(n) is None:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if state.get(m) is None:
            found = visit(m)
            if found:
                return found
    return None


def _no_pkg(graph):  # a package's __init__ ("qfm", "qfm.core") is no edge of a cycle
    pkgs = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    return {m: {n for n in deps if n not in pkgs} for m, deps in graph.items()}


def test_no_import_cycles():
    cycle = find_cycle(_no_pkg(GRAPH))
    assert cycle is None, " → ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("entry", ["qfm.predict", "qfm.scorer"])
def test_predict_reaches_no_training_study_or_report(entry):
    reach = closure(entry)
    bad = sorted(m for m in reach if m.startswith(("qfm.core.engine", "qfm.study", "qfm.runs",
                                                    "qfm.report", "qfm.losses", "qfm.cli")))
    assert not bad, f"{entry} imports {bad}"


def test_predict_at_run_time_imports_no_training_code(tmp_path):
    import subprocess

    code = ("import sys, qfm.predict, qfm.core.inference; "
            "bad = [m for m in sys.modules if m.startswith(('qfm.core.engine', 'qfm.study', "
            "'qfm.runs', 'qfm.report'))]; print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


ENTRY_MODULES = {"__init__.py", "cli.py", "cli_data.py", "config.py", "knobs.py", "paths.py",
                 "files.py", "paper.py", "predict.py", "scorer.py",
                 "onnx_runtime.py"}  # predict's optional ONNX Runtime path

RULES = [  # (importer prefix, forbidden prefixes)
    ("qfm.data", ("qfm.core", "qfm.study", "qfm.runs", "qfm.report", "qfm.predict")),
    ("qfm.core", ("qfm.data", "qfm.study", "qfm.runs", "qfm.report", "qfm.predict")),
    ("qfm.core.checkpoint", ("qfm.models", "qfm.core.engine")),
    ("qfm.losses.qfm", ("qfm.core.engine",)),
    ("qfm.losses.distill", ("qfm.core.engine",)),
    ("qfm.report", ("qfm.core.engine", "qfm.runs.train")),
    ("qfm.runs", ("qfm.report", "qfm.study")),
    ("qfm.study", ("qfm.report", "qfm.runs")),
    ("qfm.config", tuple(f"qfm.{m}" for m in ("cli", "core", "data", "files", "models", "losses",
                                              "paths", "paper", "predict", "report", "runs",
                                              "scorer", "study"))),  # the knob table only
    ("qfm.knobs", ("qfm.",)),
    # the method's rooms: torch, timm and config only (the caller loads weights)
    ("qfm.models", ("qfm.data", "qfm.study", "qfm.runs", "qfm.report", "qfm.core",
                    "qfm.losses", "qfm.paths", "qfm.files", "qfm.predict")),
    ("qfm.losses", ("qfm.data", "qfm.study", "qfm.runs", "qfm.report", "qfm.core",
                    "qfm.models", "qfm.paths", "qfm.files", "qfm.predict")),
    ("qfm.files", ("qfm.core", "qfm.data", "qfm.study", "qfm.runs", "qfm.report")),
]


@pytest.mark.parametrize("who,never", RULES, ids=[r[0] for r in RULES])
def test_rooms_import_only_downwards(who, never):
    for m in MODULES:
        if m == who or m.startswith(who + "."):
            bad = sorted(i for i in GRAPH[m] if i.startswith(never))
            assert not bad, f"{m} imports {bad}"


def test_nothing_imports_the_cli():
    for m, deps in GRAPH.items():
        if not m.startswith("qfm.cli"):
            assert not {d for d in deps if d.startswith("qfm.cli")}, m


@pytest.mark.parametrize("name", ["qfm.report.tables", "qfm.report.verdict", "qfm.report.study",
                                  "qfm.report.tuning", "qfm.report.glossary",
                                  "qfm.report.performance", "qfm.report.figures",
                                  "qfm.report.predictions"])
def test_json_report_modules_import_no_torch(name):
    reach = {name} | closure(name)
    third = set().union(*(imports(m) for m in reach))
    assert not {t for t in third if t == "torch" or t.startswith("torch.")}, name


def test_the_top_of_qfm_holds_only_entry_modules_and_no_module_is_long():
    top = sorted(p.name for p in QFM.glob("*.py"))
    assert set(top) <= ENTRY_MODULES, sorted(set(top) - ENTRY_MODULES)
    for p in QFM.rglob("*.py"):
        assert len(p.read_text().splitlines()) <= 350, f"{p.relative_to(ROOT)} over 350 lines"
