"""The knob table (qfm/knobs.py) is the one list of tunable knobs, and qfm.config's defaults are
params.yaml's: a Python user of qfm.config gets the pipeline's model."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from qfm.config import RunConfig, to_dict
from qfm.knobs import AUTO, BY_KEY, KNOBS, auto_keys

ROOT = Path(__file__).resolve().parents[2]


def knob_lists(source: str) -> list[int]:
    """Lines of literals (list, tuple, set, dict keys) naming two or more knob keys or three or
    more knob names: a second list of the tunable knobs."""
    keys, names = set(BY_KEY), {k.name for k in KNOBS}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        strings = {e.value for e in items if isinstance(e, ast.Constant)
                   and isinstance(e.value, str)}
        if len(strings & keys) >= 2 or len(strings & names) >= 3:
            found.append(node.lineno)
    return found


def test_the_knob_table_is_the_only_list_of_knobs():
    seconds = {}
    for p in sorted((ROOT / "qfm").rglob("*.py")):
        if p.name == "knobs.py":
            continue
        lines = knob_lists(p.read_text())
        if lines:
            seconds[p.relative_to(ROOT).as_posix()] = lines
    assert not seconds, f"a second list of tunable knobs (use qfm.knobs.KNOBS): {seconds}"


def test_the_check_finds_a_second_list():
    assert knob_lists('X = {"qfm.rho": "ρ", "qfm.tau": "τ"}') == [1]
    assert knob_lists('X = ("lr", "rho", "tau")') == [1]
    assert knob_lists('X = ("qfm.rho", "other")') == []


def test_the_tuner_grids_name_knobs_and_every_auto_is_one():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    grids = {k for k, v in raw["study"]["tune"].items() if isinstance(v, dict)}
    assert grids <= {k.name for k in KNOBS}
    assert set(auto_keys(raw)) <= set(BY_KEY)


def test_config_defaults_are_params_yaml():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    defaults = to_dict(RunConfig())
    differ = []
    for section, values in defaults.items():
        for key, default in values.items():
            if key not in (raw.get(section) or {}):
                continue
            value = raw[section][key]
            if value == AUTO and f"{section}.{key}" in BY_KEY:
                value = BY_KEY[f"{section}.{key}"].default
            if value != default:
                differ.append(f"{section}.{key}: params.yaml {value!r}, qfm.config {default!r}")
    assert not differ, differ
