"""The figures and performance notebooks hold no logic: a flat parameters cell (one literal and
one comment per line), imports in one cell, each cell calling qfm.report once per table, figure
or set of glued values, no file written by the notebook itself; outputs cleared; and every glue
name the book's pages read from them is glued (a literal name in a cell, or a key of the library
function whose values a cell glues, computed here on the synthetic inputs)."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from qfm.report import (
    answers,
    budget,
    livec_views,
    performance,
    performance_predict,
    plan_page,
    protocol_cost,
    protocol_page,
    study_inputs,
    study_views,
    whole_views,
    world_views,
)

ROOT = Path(__file__).resolve().parents[2]
TOKENS = ROOT / "benchmarks" / "results" / "clive_tokens.json"
NOTEBOOKS = ("figures", "performance")
HELPERS = {"figures": {"show", "show_png", "glue_all"}, "performance": set()}  # glue/display
WRITES = ("write_json", "write_text", "write_bytes", "open(", "savefig", "to_csv", "json.dump",
          "mkdir")


def cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]


def code_cells(name: str) -> list[tuple[list[str], str]]:
    return [(c.get("metadata", {}).get("tags", []), "".join(c["source"]))
            for c in cells(name) if c["cell_type"] == "code"]


def glued_by_book(name: str) -> set[str]:
    """Every glue name a book page reads from ``executed/<name>.ipynb``."""
    found = set()
    for page in (ROOT / "book").glob("*.md"):
        text = page.read_text()
        found |= set(re.findall(rf"executed/{name}\.ipynb::(\w+)", text))
        found |= set(re.findall(rf"```\{{glue\}} (\w+)\n:doc: executed/{name}\.ipynb", text))
    return found


def literal_glue(name: str) -> set[str]:
    code = "\n".join(src for _, src in code_cells(name))
    return set(re.findall(r'(?:show|glue)\("(\w+)"', code))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_outputs_are_cleared(name):
    for c in cells(name):
        if c["cell_type"] == "code":
            assert c["outputs"] == [] and c["execution_count"] is None


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_parameters_cell_is_flat_literals_one_comment_each(name):
    (src,) = [s for t, s in code_cells(name) if "parameters" in t]
    tree = ast.parse(src)
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant), \
            ast.unparse(stmt)
        assert len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
    lines = [line for line in src.splitlines() if line.strip()]
    assert len(lines) == len(tree.body) and all("  # " in line for line in lines)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_cells_call_the_library_and_write_nothing(name):
    body = [src for tags, src in code_cells(name) if "parameters" not in tags]
    for i, src in enumerate(body):
        tree = ast.parse(src)
        imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not imports or i == 0, f"an import outside the first cell:\n{src}"
        defs = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert defs <= HELPERS[name], defs
        helper_nodes = {id(x) for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                        for x in ast.walk(n)}
        for node in ast.walk(tree):
            if id(node) in helper_nodes:
                continue
            assert not isinstance(node, (ast.If, ast.IfExp, ast.JoinedStr, ast.Lambda,
                                         ast.ListComp, ast.DictComp, ast.SetComp,
                                         ast.GeneratorExp, ast.While)), ast.unparse(node)
            if isinstance(node, ast.BinOp):  # only paths: out / "x.png"
                assert isinstance(node.op, ast.Div), ast.unparse(node)
            if isinstance(node, ast.For):  # only to glue or display what a function returned
                assert all(isinstance(s, ast.Expr) and ast.unparse(s).startswith(
                    ("glue(", "display(")) for s in node.body), ast.unparse(node)
        for word in WRITES:
            assert word not in src, f"{name}: {word}"


def test_the_figures_notebook_writes_verdicts_only_through_the_library():
    uses = []
    for tags, src in code_cells("figures"):
        if "parameters" not in tags:
            uses += [ast.unparse(n) for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call)
                     and any(isinstance(a, ast.Name) and a.id == "verdicts_path"
                             for a in n.args)]
    assert uses == ["verdicts.write_verdicts(inputs, verdicts_path)"]


def value_calls(name: str) -> list[str]:
    code = "\n".join(src for _, src in code_cells(name))
    return re.findall(r"glue_all\((\w+\.\w+)\(", code)


def test_every_glue_name_the_book_reads_from_figures_is_glued(inputs, record, tmp_path):
    world = tmp_path / "world"
    world.mkdir()
    (world / "world.json").write_text(json.dumps({
        "config": {"photos": ["a"], "heldout_photos": [], "distortions": ["x"], "levels": 5,
                   "size": 64, "split": [0.7, 0.1, 0.2]},
        "contents": 3, "images": 15, "unlabelled": 0, "splits": 2}))
    check = {"variant": "full", "seed": 0, "srcc": {"test": 0.8, "held-out photos": 0.7},
             "base_rate": 0.1}
    params = ROOT / "params.yaml"
    values = {
        "study_inputs.overview_values": study_inputs.overview_values(inputs),
        "answers.intro_values": answers.intro_values(record, inputs),
        "livec_views.status_values": livec_views.status_values(inputs),
        "livec_views.facts_values": livec_views.facts_values(inputs),
        "answers.finetune_values": answers.finetune_values(record),
        "answers.livec_values": answers.livec_values(record),
        "livec_views.token_values": livec_views.token_values(dataclasses.replace(
            inputs, tokens=json.loads(TOKENS.read_text()))),  # the recipes the book names
        "study_views.coverage_values": study_views.coverage_values(inputs),
        "answers.heldout_values": answers.heldout_values(record, inputs),
        "answers.sweep_values": answers.sweep_values(record, inputs),
        "study_views.training_values": study_views.training_values(inputs),
        "study_views.tuning_values": study_views.tuning_values(inputs),
        "study_views.unseen_values": study_views.unseen_values(inputs),
        "world_views.head_values": world_views.head_values(check),
        "answers.share_values": answers.share_values(record, inputs),
        "answers.toy_values": answers.toy_values(record, inputs),
        "world_views.world_values": world_views.world_values(
            dataclasses.replace(inputs, world=world)),
        "world_views.pairs_values": world_views.pairs_values(inputs, pd.DataFrame()),
        "protocol_page.command_values": protocol_page.command_values(
            yaml.safe_load(params.read_text()), params),
        "protocol_cost.gpu_values": protocol_cost.gpu_values(),
        "plan_page.plan_values": plan_page.plan_values(inputs.plan),
        "whole_views.status_values": whole_views.status_values(inputs),
        "livec_views.stability_values": livec_views.stability_values(inputs),
    }
    assert sorted(value_calls("figures")) == sorted(values)  # each glue_all computed here
    glued = literal_glue("figures").union(*values.values())
    read = glued_by_book("figures")
    assert {"answer_table", "n_seeds", "tokens_native_g3", "coverage_normal"} <= read  # parsed
    assert not read - glued, sorted(read - glued)


def test_every_glue_name_the_book_reads_from_performance_is_glued():
    results = performance.load_results(ROOT / "benchmarks" / "results")
    glued = (literal_glue("performance") | set(performance.summary_values(results))
             | set(performance_predict.predict_values(results))
             | set(performance_predict.cache_values(results))
             | set(budget.values(results["pipeline_stages_before"],
                                 results["pipeline_stages"])))
    read = glued_by_book("performance")
    assert {"ratio_table", "stage_table", "pipeline_total_minutes", "budget_verdict",
            "predict_shipped_onnx_ips", "predict_shipped_meets_target"} <= read
    assert not read - glued, sorted(read - glued)
