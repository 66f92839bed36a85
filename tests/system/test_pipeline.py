"""The reproducibility pipeline: dvc.yaml ↔ params.yaml ↔ notebooks, and a smoke ``dvc repro``.

The smoke run copies the repository (tracked and new, non-ignored files) into a temporary
folder, writes smoke parameters there (a tiny world, one short epoch per run, a few runs) and
runs ``dvc repro``: every notebook runs end to end under papermill, and the book builds. It is
shared with ``tests/test_book.py`` (built once per session). About 2–3 minutes on 2 cores.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from qfm import config
from qfm.config import RunConfig, load_params, parse_sets, to_dict
from qfm.paper import PAPER_PROFILE, paper_flags

ROOT = Path(__file__).resolve().parents[2]
HELPER_SECTIONS = {"variants", "finetune", "whole"}  # pipeline sections that are no stage's own
# (finetune: the trained-upstream regime, read by world_finetune and livec_finetune)
STAGE_SECTION = {"livec_finetune": "finetune"}  # a stage whose params section has another name
SMOKE_WORLD = dict(photos=["astronaut", "coffee", "chelsea", "rocket"], heldout_photos=["coffee"],
                   contents_per_photo=3, distortions=["gaussian_blur", "gaussian_noise", "jpeg"],
                   levels=3, unlabelled_per_content=1, split=[0.5, 0.25, 0.25], splits=2)


def dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def params_raw() -> dict:
    return config.read_params(ROOT / "params.yaml")


def stage_notebook(stage: dict) -> str | None:
    """The notebook a stage runs (``notebooks/<name>.ipynb`` in its command), if any."""
    cmd = (stage.get("do") or stage)["cmd"]
    found = re.findall(r"notebooks/([A-Za-z0-9_]+)\.ipynb", cmd)
    assert len(set(found)) <= 1, f"one notebook per stage: {cmd}"
    return found[0] if found else None


def _extra_study_stages():
    """(group, stage) of each stage besides the ``study`` foreach that runs the study notebook
    for one more group (the world's committed world_finetune)."""
    for name, stage in dvc_yaml()["stages"].items():
        if name != "study" and stage_notebook(stage) == "study":
            yield re.search(r"-p group (\w+)", stage["cmd"]).group(1), stage


def study_pages() -> dict[str, str]:
    """Each study group's book page, as dvc.yaml writes it: ``executed/study_<group>`` for the
    ``study`` foreach, the notebook path in the command of a stage that runs one more group."""
    pages = {g: f"executed/study_{g}" for g in dvc_yaml()["stages"]["study"]["foreach"]}
    for group, stage in _extra_study_stages():
        pages[group] = re.search(r"notebooks/study\.ipynb\s+book/(\S+)\.ipynb",
                                 stage["cmd"]).group(1)
    return pages


def study_results() -> dict[str, str]:
    """Each study group's rows file: ``results/study/<group>.json`` for the ``study`` foreach,
    the ``.json`` out of a stage that runs the study notebook for one more group."""
    out = {g: f"results/study/{g}.json" for g in dvc_yaml()["stages"]["study"]["foreach"]}
    for group, stage in _extra_study_stages():
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
        out[group] = next(o for o in outs if o.endswith(".json"))
    return out


# --- structure (fast) ---------------------------------------------------------------------

def test_stage_names_match_params_sections_and_notebooks():
    stages, raw = dvc_yaml()["stages"], params_raw()
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    with_notebook = {}
    for name, stage in stages.items():
        nb = stage_notebook(stage)
        if nb is not None:
            if (name, nb) == ("world_finetune", "study"):  # one more study group, committed
                continue
            assert nb == name, f"stage {name} runs notebooks/{nb}.ipynb"
            section = STAGE_SECTION.get(name, name)
            assert section in raw or section in raw.get("study", {}), \
                f"stage {name} has a notebook but no params.yaml section (or study.{name})"
            with_notebook[name] = nb
    assert set(with_notebook) == notebooks, "every notebook is the stage of its name"
    components = {f for f in to_dict(RunConfig())}
    for section in raw:
        assert section in components | set(stages) | HELPER_SECTIONS, \
            f"params.yaml section {section!r} is neither a component nor a stage"
        if section not in components:  # the config accepts it without reading dvc.yaml
            assert section in config.PIPELINE_SECTIONS, f"add {section} to PIPELINE_SECTIONS"


def test_notebooks_committed_without_outputs_and_flat_parameters():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for c in code:
            assert c.outputs == [] and c.execution_count is None, f"{path.name}: has outputs"
        params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1, f"{path.name}: one cell tagged 'parameters'"
        tree = ast.parse(params[0].source)
        lines = params[0].source.splitlines()
        for node in tree.body:
            assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), \
                f"{path.name}: parameters are flat literals"
            assert "#" in lines[node.lineno - 1], f"{path.name}: each parameter has a comment"
        assert nb.cells[0].cell_type == "markdown", f"{path.name}: starts with its header"


def test_params_load_and_every_component_key_is_listed():
    raw = params_raw()
    load_params(ROOT / "params.yaml")
    for section, fields in to_dict(RunConfig()).items():
        missing = set(fields) - set(raw.get(section) or {})
        assert not missing, f"params.yaml {section}: list every key (-S reaches it): {missing}"


def test_study_groups_name_known_variants_and_students_have_their_teacher():
    from qfm.config import split_variant

    raw = params_raw()
    variants = raw["variants"]
    assert len(raw["study"]["seeds"]) >= 10, "the comparison needs >= 10 paired seeds"
    for name, group in raw["study"]["groups"].items():
        for v in group["variants"]:
            assert v in variants, f"study.groups.{name}: unknown variant {v}"
            _, study = split_variant(variants[v])
            if "teacher" in study:
                assert study["teacher"] in group["variants"], f"{name}: {v}'s teacher is missing"
    assert set(raw["study"]["groups"]["main"]["variants"]) >= {
        "baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full"}
    assert set(raw["livec"]["variants"]) >= {  # QFM's controls: on LIVEC (not the world's main)
        "baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full", "rho0",
        "random_partner", "random_direction", "distill", "baseline_long"}


def test_paper_profile_is_defined_once_and_its_flags_round_trip():
    text = (ROOT / "params.yaml").read_text()
    block = text[text.index("# Paper profile"):]
    assert "qfm.paper" in block and "model.backbone=" not in block  # referred to, not copied
    words = shlex.split(paper_flags())  # as the shell passes them to `dvc exp run`
    assert words[0::2] == ["-S"] * len(PAPER_PROFILE)
    assert parse_sets(words[1::2]) == PAPER_PROFILE


# --- the smoke pipeline ---------------------------------------------------------------------

def project_files() -> list[str]:
    """Tracked files and new files git does not ignore (what a clone plus this work holds)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and (ROOT / f).is_file()]


def smoke_env(root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QFM_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["QFM_HOME"] = str(root)
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    return env


def dvc(root: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=root,
                          env=smoke_env(root), capture_output=True, text=True, timeout=timeout)


def make_smoke_project(dst: Path) -> Path:
    """Copy the project to ``dst`` and write its smoke ``params.yaml``."""
    if dst.exists():
        shutil.rmtree(dst)
    for rel in project_files():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dst / rel)
    raw = params_raw()
    raw["shared"]["smoke"] = True
    raw["world"].update(SMOKE_WORLD)
    (dst / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def smoke_pipeline(tmp_path_factory) -> Path:
    """``dvc repro`` of the smoke project, once per test session."""
    root = tmp_path_factory.getbasetemp() / "smoke_pipeline"
    done = root / ".smoke-done.json"
    if done.is_file():
        return root
    make_smoke_project(root)
    t0 = time.perf_counter()
    proc = dvc(root, "repro")
    assert proc.returncode == 0, f"dvc repro failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    done.write_text(json.dumps({"seconds": time.perf_counter() - t0}))
    return root


@pytest.fixture(scope="session")
def smoke_project(tmp_path_factory):
    return smoke_pipeline(tmp_path_factory)


@pytest.mark.slow
def test_smoke_pipeline_runs_every_notebook(smoke_project):
    root = smoke_project
    executed = sorted((root / "book" / "executed").rglob("*.ipynb"))
    names = {p.relative_to(root / "book" / "executed").with_suffix("").as_posix()
             for p in executed}
    pages = study_pages()
    assert set(pages) == set(params_raw()["study"]["groups"])
    measured = {"livec", "livec_finetune"}  # the LIVEC stages: book/measured/, rerun here: no data
    expected = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} - {"study"} - measured
    # study: once per group; world_finetune's page is under book/measured/ (committed)
    assert names == expected | {p.split("/", 1)[1] for p in pages.values()
                                if p.startswith("executed/")}
    executed += [root / "book" / "measured" / f"{m}.ipynb" for m in sorted(measured)]
    executed += [root / "book" / f"{p}.ipynb" for p in pages.values()
                 if not p.startswith("executed/")]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata["papermill"]["exception"] is None or \
            nb.metadata["papermill"]["exception"] is False, path.name
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"], path.name
    results = study_results()
    assert set(results) == set(params_raw()["study"]["groups"])
    for group, rel in results.items():
        res = json.loads((root / rel).read_text())
        assert res["group"] == group and res["rows"]
        assert all(-1.0 <= r["test_srcc"] <= 1.0 for r in res["rows"])
    from qfm.core.inference import load_model

    _, meta = load_model(root / "models" / "default.safetensors", "cpu")
    assert meta["source"]["variant"] == "full" and meta["config"]["distill"]["enabled"]
    assert (root / "results" / "study" / "unseen_photo.json").is_file()
    assert (root / "book" / "_build" / "html" / "results.html").is_file()


@pytest.mark.slow
def test_smoke_pipeline_is_up_to_date_and_reports_metrics(smoke_project):
    root = smoke_project
    status = dvc(root, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {}, status.stdout
    metrics = dvc(root, "metrics", "show", "--json")
    assert metrics.returncode == 0, metrics.stderr
    assert "verdicts.json" in json.dumps(json.loads(metrics.stdout))


@pytest.mark.slow
def test_changing_a_parameter_invalidates_only_its_dependents(smoke_project, tmp_path):
    """`dvc exp run -S qfm.rho=…` would rerun exactly the stages `dvc status` lists here."""
    root = smoke_project
    params = root / "params.yaml"
    original = params.read_text()
    try:
        raw = yaml.safe_load(original)
        raw["qfm"]["rho"] = 0.1
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        changed = set(json.loads(dvc(root, "status", "--json").stdout))
        assert not changed & {"world", "weights", "features", "upstream", "features_toy"}
        assert {"tune", "world_finetune"} | {f"study@{g}" for g in raw["study"]["groups"]
                                             if g != "finetune"} <= changed
        raw["qfm"]["rho"] = yaml.safe_load(original)["qfm"]["rho"]
        raw["figures"] = {**(raw.get("figures") or {}), "_probe": 1}
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        changed = set(json.loads(dvc(root, "status", "--json").stdout))
        assert changed == {"figures"}, changed
    finally:
        params.write_text(original)


@pytest.mark.slow
def test_quick_start_ablation_exp_run_sets_rho_everywhere(smoke_project, tmp_path):
    """The Quick start's ablation, ``dvc exp run -S qfm.rho=0.1``, on a committed copy of the
    smoke project: every QFM run of the main group trains at ρ = 0.1 (but ``rho0``, whose
    variant sets ρ itself) and tune.json records ρ as fixed by params.yaml, not tuned."""
    from qfm.config import split_variant

    root = tmp_path / "exp"
    shutil.copytree(smoke_project, root, symlinks=True)
    assert yaml.safe_load((root / "params.yaml").read_text())["shared"]["smoke"] is True
    env = {**smoke_env(root), "GIT_AUTHOR_NAME": "qfm test", "GIT_COMMITTER_NAME": "qfm test",
           "GIT_AUTHOR_EMAIL": "test@example.org", "GIT_COMMITTER_EMAIL": "test@example.org"}
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "smoke project"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    proc = subprocess.run([str(Path(sys.executable).parent / "dvc"), "exp", "run", "-S",
                           "qfm.rho=0.1"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=3000)
    assert proc.returncode == 0, f"dvc exp run:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    variants = params_raw()["variants"]
    sets_rho = {v for v, e in variants.items()
                if "rho" in (split_variant(e)[0].get("qfm") or {})}
    rows = json.loads((root / "results" / "study" / "main.json").read_text())["rows"]
    qfm_rows = [r for r in rows if r["rho"] is not None and r["variant"] not in sets_rho]
    assert {r["variant"] for r in qfm_rows} >= {"gate_qfm", "full"}
    assert all(r["rho"] == pytest.approx(0.1) for r in qfm_rows), \
        sorted({(r["variant"], r["rho"]) for r in qfm_rows})
    knobs = json.loads((root / "results" / "study" / "tune.json").read_text())["knobs"]
    rho = [k for k in knobs if k["knob"] == "qfm.rho"]
    assert rho and all(k["status"] == "fixed by params.yaml" and k["value"] == pytest.approx(0.1)
                       for k in rho), rho
