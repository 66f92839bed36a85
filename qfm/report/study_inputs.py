"""Everything the figures notebook reads, read once: params.yaml, the study's result files, the
committed LIVEC and fine-tuning studies and the benchmark results the book quotes.

:func:`read_inputs` takes the notebook's parameters (paths) and returns a :class:`StudyInputs`;
the book's verdicts (:mod:`qfm.report.verdicts`), answer lines (:mod:`qfm.report.answers`),
tables and figures (:mod:`qfm.report.study_views`, :mod:`qfm.report.livec_views`,
:mod:`qfm.report.world_views`) read that object and nothing else from disk, except the world's
images, its cached tokens and the default head (:mod:`qfm.report.world_figures`,
:mod:`qfm.study.head_check`) and the committed studies' provenance (whether they are current).
A LIVEC or fine-tuning study never measured on this checkout reads as empty rows (its tables
say "not measured yet"); the world study's files and the world fine-tuning group's rows must
exist. JSON only (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from qfm.config import RunConfig, load_params, read_params
from qfm.files import read_json
from qfm.report import livec as livec_report
from qfm.report.analysis_plan import PLAN, PLAN_FILE, Plan, load
from qfm.report.study import load_rows
from qfm.study import record

FT_GROUP = "finetune"  # the fine-tuning regime's group: qfm.study.finetune.GROUP (torch-free)
PathLike = str | Path


@dataclass
class StudyInputs:
    """What the figures notebook reads (paths as given, files as read)."""

    params: Path  # params.yaml
    raw: dict  # params.yaml as read
    cfg: RunConfig  # params.yaml as a run configuration (the tuned keys' defaults)
    study_dir: Path  # tune.json, <group>.json per study group, unseen_photo.json
    world: Path  # the embedded default's folder
    features: Path  # the cached upstream tokens
    head: Path  # the default model's head
    measured: Path  # the committed LIVEC study
    measured_ft: Path  # LIVEC with the upstream's last stage trained
    groups: dict[str, list[str]]  # the main group and the sweep's groups → their variants
    rows_all: pd.DataFrame  # every run row of ``groups``
    rows: pd.DataFrame  # the main group's rows
    toy: pd.DataFrame  # the baseline on the toy upstream (group figures.toy_group)
    tune: dict  # results/study/tune.json
    unseen: dict  # results/study/unseen_photo.json
    world_ft_rows: pd.DataFrame  # the world's fine-tuning group (committed)
    livec_rows: pd.DataFrame  # the LIVEC study's rows (empty: never measured)
    livec_ft_rows: pd.DataFrame  # LIVEC's fine-tuning rows (empty: never measured)
    livec_tune: dict | None  # measured/livec/tune.json
    livec_head: dict | None  # measured/livec/default_head.json
    tokens: dict  # benchmarks/results/clive_tokens.json
    coverage: dict  # interval coverage at ten seeds (benchmarks/interval_coverage.py)
    coverage5: dict  # the same at five seeds
    architecture: dict | None  # benchmarks/results/architecture_choices.json (None: not run)
    plan: Plan = PLAN  # the analysis plan (analysis_plan.yaml)
    plan_path: Path = Path(PLAN_FILE)
    measured_whole: Path = Path("measured/livec_whole")  # LIVEC, the whole upstream trained
    whole_index: dict | None = None  # its livec_whole.json (None: never measured)
    whole_rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # its current rows
    default_rule: dict | None = None  # results/study/default_rule.json (the default's regime)
    stability: dict | None = None  # benchmarks/results/tuning_stability.json (None: not run)

    @property
    def fig(self) -> dict:
        """params.yaml's ``figures`` section."""
        return self.raw["figures"]

    @property
    def variants(self) -> list[str]:
        """The main group's variants."""
        return self.groups[self.fig["group"]]

    @property
    def livec_variants(self) -> list[str]:
        return list(self.raw["livec"]["variants"])

    @property
    def whole_variants(self) -> list[str]:
        """The whole-upstream regime's variants (none where params.yaml has no ``whole``)."""
        return list((self.raw.get("whole") or {}).get("variants", []))

    @property
    def ft_variants(self) -> list[str]:
        return list(self.raw["study"]["groups"][FT_GROUP]["variants"])


def _optional(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def read_inputs(params: PathLike, study_dir: PathLike, world: PathLike, features: PathLike,
                head: PathLike, measured: PathLike, measured_ft: PathLike,
                measured_wft: PathLike, clive_tokens: PathLike, coverage: PathLike,
                architecture: PathLike, plan: PathLike = PLAN_FILE,
                measured_whole: PathLike = "measured/livec_whole",
                stability: PathLike = "benchmarks/results/tuning_stability.json") -> StudyInputs:
    """Read every input of the figures notebook (its parameters, same names).

    Args:
        params: params.yaml (sections figures, study, livec, finetune and the run's).
        study_dir: the study's results; world, features, head: the embedded default, its
            cached tokens, the default model's head (paths kept, read later).
        measured, measured_ft, measured_wft: the committed LIVEC study, LIVEC's and the
            world's fine-tuning regime.
        clive_tokens, coverage, architecture: benchmark results (``coverage``'s five-seed
            twin is ``<coverage>_n5.json``; ``architecture`` may be absent).
        plan: the analysis plan (``analysis_plan.yaml``).
        measured_whole: LIVEC's whole-upstream regime (its index ``livec_whole.json``).
        stability: the frozen LIVEC tuning rerun on float-rounding-perturbed tokens
            (``benchmarks/tuning_stability.py``; may be absent).
    """
    raw = read_params(params)
    fig = raw["figures"]
    groups = {g: list(raw["study"]["groups"][g]["variants"])
              for g in dict.fromkeys([fig["group"], *fig["sweep_groups"]])}
    rows_all = load_rows(study_dir, groups)
    study_dir, measured, measured_ft = Path(study_dir), Path(measured), Path(measured_ft)
    ft_file = measured_ft / "finetune.json"
    whole_index = _optional(Path(measured_whole) / "livec_whole.json")
    return StudyInputs(
        params=Path(params), raw=raw, cfg=load_params(params), study_dir=study_dir,
        world=Path(world), features=Path(features), head=Path(head), measured=measured,
        measured_ft=measured_ft, groups=groups, rows_all=rows_all,
        rows=rows_all[rows_all["group"] == fig["group"]],
        toy=load_rows(study_dir, [fig["toy_group"]]),
        tune=read_json(study_dir / "tune.json"),
        unseen=read_json(study_dir / "unseen_photo.json"),
        world_ft_rows=load_rows(measured_wft, [FT_GROUP]),
        livec_rows=livec_report.rows_frame(record.load_rows(measured)),
        livec_ft_rows=livec_report.rows_frame(read_json(ft_file)["rows"]
                                              if ft_file.is_file() else []),
        livec_tune=_optional(measured / "tune.json"),
        livec_head=_optional(measured / "default_head.json"),
        tokens=read_json(clive_tokens), coverage=read_json(coverage),
        coverage5=read_json(str(coverage).replace(".json", "_n5.json")),
        architecture=_optional(Path(architecture)), plan=load(plan), plan_path=Path(plan),
        measured_whole=Path(measured_whole), whole_index=whole_index,
        whole_rows=livec_report.rows_frame((whole_index or {}).get("rows", []),
                                           "livec_whole"),
        default_rule=_optional(study_dir / "default_rule.json"),
        stability=_optional(Path(stability)))


def overview_values(inputs: StudyInputs) -> dict:
    """The study's size as the prose quotes it: seeds, runs and groups (numbers), the
    baseline's epoch cap, and the training images of the main group and of the sweep's first
    group (text, thousands separated)."""
    rows, fig = inputs.rows, inputs.fig
    sweep0 = inputs.rows_all[inputs.rows_all["group"] == fig["sweep_groups"][0]]
    return {"n_seeds": len(rows["seed"].unique()), "n_runs": len(inputs.rows_all),
            "n_groups": len(inputs.groups),
            "epochs": int(rows.loc[rows["variant"] == "baseline", "max_epochs"].max()),
            **{name: f"{int(sub['train_images'].median()):,}"
               for name, sub in (("main_train_images", rows), ("sweep_train_images", sweep0))}}


def input_files(inputs: StudyInputs) -> list[Path]:
    """The files the book's numbers are made from (the Reproducibility page hashes them):
    the world's table and splits, the cached tokens, the default head, the study's and the
    LIVEC study's JSON."""
    world = inputs.world
    return [world / "table.csv", *sorted((world / "splits").glob("split_*.csv")),
            inputs.features, inputs.head, *sorted(inputs.study_dir.glob("*.json")),
            *sorted(inputs.measured.glob("*.json"))]
