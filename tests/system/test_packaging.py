"""The install story: environment.yml agrees with pyproject.toml; README and CI agree."""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser, as a package (a dependency of pytest there)
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    py = _pyproject()["project"]
    wanted = {_name(r): r.replace(" ", "") for r in py["dependencies"]}
    for reqs in py["optional-dependencies"].values():  # every extra: conda gets all
        for r in reqs:
            if not r.startswith("qfm"):
                wanted[_name(r)] = r.replace(" ", "")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = {_name(r): r.replace(" ", "") for r in pip}
    assert have == wanted


def test_environment_python_is_one_pyproject_allows():
    low = _pyproject()["project"]["requires-python"].removeprefix(">=")
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pinned = next(d for d in env["dependencies"] if isinstance(d, str) and
                  d.startswith("python="))
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(pinned.split("=")[1]) >= as_tuple(low)


def test_readme_first_lines_are_the_two_setup_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1:]
    run, test = block[0], block[1]
    assert "pip install -e" in run and run.endswith("dvc repro")
    assert "pip install -e" in test and "pytest" in test
    assert lines.index("```bash") < 5, "the set-up commands must be the README's first lines"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci and "sed -n 2p" in ci


def test_dvc_config_is_offline():
    cfg = ROOT / ".dvc" / "config"
    text = cfg.read_text() if cfg.is_file() else ""
    assert re.search(r"analytics\s*=\s*false", text)
    assert re.search(r"check_update\s*=\s*false", text)
