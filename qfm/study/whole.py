"""The whole-upstream regime on CLIVE: every run trains all of the upstream and the head.

The frozen study (:mod:`qfm.study.livec`) trains heads on cached tokens of a frozen ImageNet
Lite0, the fine-tuning regime (:mod:`qfm.study.finetune`) the upstream's last stage too; here
each run trains the whole of Lite0 (from its ImageNet weights) with the head, from the photos,
as the paper fine-tunes its backbone. The splits are the frozen study's (seed k = CLIVE split
k), so runs pair across regimes; each variant keeps the QFM knobs and the head's rate the frozen
study tuned (``measured/livec/tune.json``); the regime's own knobs left ``auto`` in params.yaml's
``whole`` are chosen on CLIVE's tuning split over one grid, the same for every variant.

Tuning (``whole.tune``): every knob of :data:`~qfm.study.whole_rows.TUNABLE` set to
``auto`` is chosen over the Cartesian grid ``whole.tune.grid`` by the mean validation SRCC of
runs on the tuning split(s) (``tune.seeds``: validation = photos that are no split's test
photo), capped at ``tune.epochs``; ``by: variant`` gives each variant its own best point of that
one grid, ``by: all`` one point for every variant. A student runs at its teacher's point
(``student: teacher``: it is its teacher's recipe plus distillation, at 3x the cost) or is
tuned too (``student: own``; its tuning runs learn from its teacher's).

Three modules: this one, the sitting (what to run, in which order, with which teacher);
:mod:`qfm.study.whole_run`, one run (:func:`~qfm.study.whole_run.train_whole`);
:mod:`qfm.study.whole_rows`, the plan and the record. Runs are many and long on a CPU (each
row keeps its wall time, ``run.seconds``; ``qfm whole --device cuda`` on a GPU): each row is
written as its run ends, and a rerun does what is left (``--max-runs``, ``--only``,
``--seeds`` cut a sitting short). A student (``full``) learns from the same split's
``gate_qfm`` run at its selected weights, kept in ``runs/whole/teachers/`` (not in the record).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from qfm import paths
from qfm.config import (
    ConfigError,
    RunConfig,
    flatten,
    load_params,
    override,
    read_params,
    split_variant,
    to_dict,
)
from qfm.core.checkpoint import load_tensors, save_tensors
from qfm.core.inference import resolve_device
from qfm.files import read_json, write_json
from qfm.study import real, record
from qfm.study.whole_rows import (
    Job,
    RunPlan,
    check,
    known,
    parse_seeds,
    row_file,
    save_row,
    section,
    survey,
    write_index,
)
from qfm.study.whole_run import SMOKE, smoke_view, train_whole


class Spent(Exception):
    """This sitting's ``--max-runs`` is spent."""


class Sitting:
    """One call of :func:`run_whole`: runs what the plan needs and the record lacks."""

    def __init__(self, raw: dict, base: RunConfig, plan: RunPlan, src: real.RealSource,
                 root: Path, device: torch.device, max_runs: int, progress: bool):
        self.raw, self.base, self.plan, self.src, self.root = raw, base, plan, src, root
        self.device, self.max_runs, self.progress, self.ran = device, max_runs, progress, 0
        self.teachers = {plan.teacher_of(v) for v in raw["variants"]} - {None}
        self.weights = paths.runs_dir() / ("whole_smoke" if base.shared.smoke else "whole") \
            / "teachers"  # a teacher's selected weights: too big for the record
        self.tuning: dict[int, pd.DataFrame] = {}
        self.decoded: dict = {}  # every photo decoded once a sitting, shared by its runs
        plan.ensure = self.ensure

    def ensure(self, job: Job) -> None:
        """Run ``job`` unless its row is current."""
        status, why = check(row_file(self.plan.out, job.name), job.code, self.plan.data)
        if status != "current":
            self.run(job, f"stale: {why}" if status == "stale" else "")

    def teacher(self, job: Job) -> tuple[dict, dict]:
        """A teacher's selected weights and their metadata: kept from its run, else it runs
        (again) now."""
        f = self.weights / f"{job.name}.safetensors"
        current = check(row_file(self.plan.out, job.name), job.code, self.plan.data)[0]
        if current == "current" and f.is_file():
            tensors, meta = load_tensors(f)
            if meta.get("code_fingerprint") == job.code and meta.get("data") == self.plan.data:
                return tensors, meta
        self.run(job, "a student's teacher, whose weights were not kept here"
                 if current == "current" else "")
        return load_tensors(f)

    def config(self, job: Job) -> RunConfig:
        """The run's configuration: the variant with the frozen study's tuned values, its
        seed, the head's rate and the crop side."""
        over, _ = split_variant(self.raw["variants"][job.variant])
        cfg = override(self.base, {**self.plan.frozen.get(job.variant, {}), **flatten(over),
                                   "shared.seed": job.seed})
        lr = cfg.train.lr if job.knobs["lr_head"] == "frozen" else job.knobs["lr_head"]
        return override(cfg, {"train.lr": float(lr), "model.img_size": int(job.knobs["crop"])})

    def parts(self, job: Job) -> dict[str, pd.DataFrame]:
        """The run's photos by part: its CLIVE split's, or its tuning seed's tuning split."""
        if job.tuning and job.seed not in self.tuning:
            reported = list(range(len(self.src.splits)))  # no test photo of any split validates
            self.tuning[job.seed] = self.src.tuning_split(reported, job.seed)[0]
        frame = self.tuning[job.seed] if job.tuning else self.src.splits[job.seed]
        out, table = {}, self.src.table
        for p in ("train", "val", "test"):
            df = table[table["image"].isin(set(frame.loc[frame["split"] == p, "image"]))]
            if len(df) and self.base.shared.smoke:
                df = df.sample(min(SMOKE[p], len(df)), random_state=0)
            if len(df):
                out[p] = df.reset_index(drop=True)
        return out

    def run(self, job: Job, why: str = "") -> None:
        """Train ``job`` (its teacher first, if need be) and write its row."""
        w, teacher, tmeta = self.plan.w, None, {}
        if job.teacher is not None:
            tensors, tmeta = self.teacher(job.teacher)
            teacher = (tmeta["model"], tensors)
        if self.max_runs and self.ran >= self.max_runs:
            raise Spent
        self.ran += 1
        print(f"whole: {job.name}: run" + (f" again ({why})" if why else ""), flush=True)
        cfg = self.config(job)
        test_views = [w.test_view] if w.test_view != "auto" else w.test_views
        row, preds, state = train_whole(
            job, cfg, self.parts(job), self.root, self.device, teacher, views=1 if
            self.base.shared.smoke else w.views, test_views=[smoke_view(v) for v in test_views]
            if self.base.shared.smoke else test_views, patience=w.patience, workers=w.workers,
            decoded=self.decoded, progress=self.progress)
        row.update(code_fingerprint=job.code, data=self.plan.data)
        if job.teacher is not None:
            row["teacher"] = {"run": job.teacher.name, "weights_sha256": tmeta.get("sha256")}
        if job.variant in self.teachers:  # its selected weights: a student's teacher
            save_tensors(state, self.weights / f"{job.name}.safetensors",
                         {"kind": "whole_teacher", "model": to_dict(cfg.model),
                          "code_fingerprint": job.code, "data": self.plan.data})
        save_row(self.plan.out, job.name, row, preds)
        if not job.tuning:
            self.index()

    def index(self, variants: tuple | list = (), seeds: tuple | list = ()) -> dict:
        """Rewrite ``livec_whole.json`` from the rows (see :func:`survey`)."""
        self.planned = getattr(self, "planned", set()) | {
            f"rows/{v}_s{s}" for s in seeds for v in self.plan.order(variants)}
        return write_survey(self.plan, self.planned)


def write_survey(plan: RunPlan, planned: set[str], write: bool = True) -> dict:
    """The record's state (current, stale, missing rows), written as the index unless not
    ``write`` (no data: nothing changes)."""
    found = [f.stem.rsplit("_s", 1)[0] for f in (plan.out / "rows").glob("*.json")]
    names = list(dict.fromkeys(plan.w.variants + [n.split("/")[1].rsplit("_s", 1)[0]
                                                   for n in sorted(planned)] + found))
    codes = plan.codes([v for v in names if v in (plan.raw.get("variants") or {})])
    state = survey(plan.out, codes, plan.data, sorted(planned))
    if write:
        tuned = {v: plan.job(v, 0).knobs for v in codes}
        write_index(plan.out, state, {"data": plan.data, "knobs": tuned,
                                      "frozen_tuned_from": "measured/livec/tune.json"})
    return state


def run_whole(params_path: str | Path = "params.yaml", out_dir: str | Path | None = None, *,
              only: str | list | None = None, seeds: str | list | None = None,
              max_runs: int = 0, device: str | None = None, smoke: bool = False,
              if_data: bool = False, survey_only: bool = False, progress: bool = True) -> dict:
    """The regime's runs that the record lacks (``qfm whole``; stage ``livec_whole``).

    Args:
        only: variants to run (default ``whole.variants``); a student's teacher runs too.
        seeds: CLIVE splits to run (``"5-9"``, ``"0,2"``; default ``whole.seeds``).
        max_runs: stop after this many runs (0: all); a rerun goes on from there.
        device: ``cpu`` | ``cuda`` | ``auto`` (default ``whole.device``).
        smoke: a few steps on a few photos of two splits (also ``shared.smoke``), into
            ``runs/whole_smoke`` unless ``out_dir``.
        if_data: without a CLIVE copy, report the record and change nothing; else that is
            an error.
        survey_only: train nothing: rewrite the index (which rows are current, stale,
            missing) and return — the DVC stage, since the runs take hours each on a CPU and
            are made by explicit, resumable sittings (``qfm whole``, e.g. ``--device cuda``).
    Returns:
        ``{"status": "measured" | "partial" | "surveyed" | "no data", "ran": n, "rows",
        "stale", "missing"}``.
    """
    raw = read_params(params_path)
    w = section(raw)
    if "livec" not in raw:
        raise ConfigError("livec: section missing in params.yaml (CLIVE's root and splits)")
    raw["shared"] = {**(raw.get("shared") or {}), **({"smoke": True} if smoke else {})}
    smoke, n = bool(raw["shared"].get("smoke")), int(raw["livec"]["splits"])
    if isinstance(only, str):
        only = [v.strip() for v in only.split(",") if v.strip()]
    variants = known(raw, only, "--only") if only else w.variants
    key = "--seeds" if seeds is not None else "whole.seeds"
    seeds = parse_seeds(seeds, w.seeds)
    for s in seeds:
        if not 0 <= s < n:
            raise ConfigError(f"{key}: {s} is no CLIVE split (livec.splits: {n})")
    seeds = seeds[:2] if smoke else seeds
    if max_runs < 0:
        raise ConfigError(f"--max-runs: {max_runs}: expected 0 (all) or more")
    out = Path(out_dir) if out_dir else paths.runs_dir() / "whole_smoke" if smoke \
        else paths.measured_dir("livec_whole")
    frozen_file = paths.measured_dir("livec") / "tune.json"
    frozen = read_json(frozen_file)["chosen"] if frozen_file.is_file() else None
    root = paths.find_dataset("livec", raw["livec"]["root"])
    if root is None:
        where = f"livec.root: {raw['livec']['root']}; QFM_DATA, data/livec, ../shared/data/livec"
        if not if_data:
            raise FileNotFoundError(f"livec.root: no CLIVE copy found ({where})")
        out.mkdir(parents=True, exist_ok=True)  # the stage's output, as committed
        st = write_survey(RunPlan(raw, w, frozen, out, None), set(), False) if frozen else {}
        print(f"whole: no CLIVE copy found ({where}): {out} unchanged — "
              f"{len(st.get('rows', []))} current rows, {len(st.get('stale', []))} stale",
              flush=True)
        return {"status": "no data", "ran": 0, **st}
    if frozen is None:
        raise FileNotFoundError(f"{frozen_file}: missing — run the livec stage first (its "
                                f"tuned values are this regime's)")
    dev = resolve_device(device or w.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device or w.device}: no CUDA device here (use cpu)")
    src = real.source("livec", root, n)
    plan = RunPlan(raw, w, frozen, out, real.fingerprint(src.table))
    out.mkdir(parents=True, exist_ok=True)
    record.keep_notice(root, out)
    base = override(load_params(params_path), {"shared.smoke": smoke})
    sit, status = Sitting(raw, base, plan, src, root, dev, max_runs, progress), "measured"
    st = sit.index(variants, seeds)
    if survey_only:
        print(f"whole: {len(st['rows'])} current rows, {len(st['stale'])} stale, "
              f"{len(st['missing'])} to run in {out} (`qfm whole` runs them)", flush=True)
        return {"status": "surveyed", "ran": 0, **st}
    try:
        if plan.auto:  # the regime's knobs first, every variant over the same grid
            chosen = {v: plan.points[plan.chosen(v, run=True)] for v in plan.order(variants)}
            old = read_json(out / "tune.json") if (out / "tune.json").is_file() else {}
            write_json({"by": w.tune.by, "student": w.tune.student, "grid": w.tune.grid, "seeds": w.tune.seeds,
                        "chosen": {**old.get("chosen", {}), **chosen},
                        "val_srcc_by_point": {**old.get("val_srcc_by_point", {}),
                                              **plan.means}}, out / "tune.json")
        for s in seeds:  # split by split: a stopped sitting leaves whole pairs
            for v in plan.order(variants):
                sit.ensure(plan.job(v, s, run=True))
    except Spent:
        status = "partial"
    st = sit.index()
    print(f"whole: {sit.ran} run(s) in this sitting; {len(st['rows'])} current rows in {out}"
          + (f"; {len(st['missing'])} to run (rerun to go on)" if st["missing"] else ""),
          flush=True)
    return {"status": status, "ran": sit.ran, **st}
