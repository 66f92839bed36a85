"""The whole-upstream regime's plan and record: its params section, its runs, the row store.

A run of :mod:`qfm.study.whole` trains all of Lite0 from pixels, long on a CPU. So each run's
row is written alone, atomically, the moment it ends (``rows/<variant>_s<seed>.json``, its test
predictions beside it in ``….csv``), with what made it: a fingerprint of the code and of the
parameters that shape its numbers (:func:`code_hash`) and the data set's fingerprint. A rerun
skips every current row and reruns stale and missing ones (a stale row is named, never used);
the index ``livec_whole.json`` (the current rows, the stale and missing ones named) is
rewritten after each row, so a sitting stopped anywhere leaves a consistent record. The
tuner's runs (``tune/…``) are kept the same way.

A row's parameters are its variant's (its ``variants`` entry, the frozen study's tuned values,
and its teacher's, for a student), the component sections and the regime's knobs — not which
variants, seeds, processes or device a sitting runs, so adding ``gate_params`` or running on
a GPU leaves the other rows current.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qfm.config import ConfigError, from_dict, to_dict
from qfm.data.table import write_csv_atomic
from qfm.files import FileError, read_json, sha256, write_json

# the code that shapes a row's numbers (relative to the repository): what a run executes
CODE = ("qfm/config.py", "qfm/knobs.py", "qfm/core", "qfm/models", "qfm/losses", "qfm/data",
        "qfm/study/real.py", "qfm/study/tokens.py", "qfm/study/whole.py",
        "qfm/study/whole_rows.py", "qfm/study/whole_run.py")
TUNABLE = ("lr_backbone", "lr_head", "epochs", "crop")  # the regime's knobs a grid may choose
RUNTIME = ("variants", "seeds", "workers", "device", "tune")  # which runs, where: no row's params
UNUSED_TRAIN = ("dataset", "split", "epochs", "patience", "eval_every", "test_crops", "workers",
                "cache", "max_images", "device", "checkpoint_every")  # whole's own, or runtime
INDEX = "livec_whole.json"
SOURCE = Path(__file__).resolve().parents[2]  # the folder holding qfm/ (paths of CODE)


@dataclass
class WholeTuneConfig:
    """The tuner: the ``whole`` knobs left ``auto``, on CLIVE's tuning split, one grid for
    every variant alike."""

    seeds: list[int] = field(default_factory=lambda: [100])  # tuning seeds (tuning_split)
    epochs: int = 20  # most epochs of a tuning run
    by: str = "variant"  # variant: each variant its best point | all: one point for all
    student: str = "teacher"  # teacher: a student runs at its teacher's point | own: tuned too
    grid: dict[str, Any] = field(
        default_factory=lambda: {"lr_backbone": [1.0e-4, 3.0e-4, 1.0e-3]})


@dataclass
class WholeConfig:
    """params.yaml's ``whole`` section (its defaults are params.yaml's: a test compares)."""

    variants: list[str] = field(default_factory=lambda: ["baseline", "gate", "gate_qfm",
                                                         "full"])
    seeds: list[int] = field(default_factory=lambda: list(range(10)))  # CLIVE's splits
    lr_backbone: float | str = "auto"  # the upstream's AdamW peak rate; auto = tuned
    lr_head: float | str = "frozen"  # frozen = the frozen study's tuned rate of the variant
    epochs: int | str = 30  # most epochs (the best validation epoch is kept)
    patience: int = 5  # stop after this many epochs without a better validation SRCC (0 = off)
    crop: int | str = 224  # side of the random training crops (and of crops:N views)
    views: int = 2  # a student's pseudo-labelled views per training photo
    test_view: str = "auto"  # whole:S | crops:N | auto (chosen on validation among test_views)
    test_views: list[str] = field(default_factory=lambda: ["whole:500", "crops:5"])
    workers: int = 2  # data-loader processes
    device: str = "auto"  # auto | cpu | cuda
    tune: WholeTuneConfig = field(default_factory=WholeTuneConfig)


def parse_view(text: str, key: str = "whole.test_views") -> tuple[str, int]:
    """``"whole:500"`` → ("whole", 500): the photo at short side 500, its centre square;
    ``"crops:5"`` → ("crops", 5): the mean over 5 crops of ``crop`` px on a grid."""
    m = re.fullmatch(r"(whole|crops):(\d+)", str(text))
    if not m or int(m.group(2)) < 1:
        raise ConfigError(f"{key}: {text!r}: expected whole:<short side> or crops:<n>")
    return m.group(1), int(m.group(2))


def section(raw: dict) -> WholeConfig:
    """The ``whole`` section, typed and checked (one-line errors name the key)."""
    if not isinstance(raw.get("whole"), dict):
        raise ConfigError("whole: section missing in params.yaml")
    w = from_dict(WholeConfig, raw["whole"], "whole")
    for key in TUNABLE:
        v = getattr(w, key)
        if isinstance(v, str) and v not in ("auto", "frozen" if key == "lr_head" else "auto"):
            raise ConfigError(f"whole.{key}: expected a number or auto, got {v!r}")
        if v == "auto" and not w.tune.grid.get(key):
            raise ConfigError(f"whole.{key}: auto needs a grid (whole.tune.grid.{key})")
    for key in w.tune.grid:
        if key not in TUNABLE:
            raise ConfigError(f"whole.tune.grid.{key}: not a tunable knob "
                              f"(known: {', '.join(TUNABLE)})")
    if w.tune.by not in ("variant", "all"):
        raise ConfigError(f"whole.tune.by: expected variant or all, got {w.tune.by!r}")
    if w.tune.student not in ("teacher", "own"):
        raise ConfigError(f"whole.tune.student: expected teacher or own, got "
                          f"{w.tune.student!r}")
    for i, v in enumerate(w.test_views):
        parse_view(v, f"whole.test_views[{i}]")
    if w.test_view != "auto":
        parse_view(w.test_view, "whole.test_view")
    known(raw, w.variants, "whole.variants")
    return w


def known(raw: dict, variants: list[str], key: str) -> list[str]:
    """``variants`` if each one and its teacher are ``variants`` entries (else a one-line error
    naming ``key``)."""
    table = raw.get("variants") or {}
    for v in variants:
        if v not in table:
            raise ConfigError(f"{key}: unknown variant {v!r} (known: {', '.join(table)})")
        t = (table[v] or {}).get("teacher")
        if t and t not in table:
            raise ConfigError(f"variants.{v}.teacher: unknown variant {t!r}")
    return list(variants)


def parse_seeds(text: str | list | None, default: list[int]) -> list[int]:
    """``"5-9"``, ``"0,2,4"`` or ``"3"`` (``--seeds``) → the seeds; None → ``default``."""
    if text is None or isinstance(text, list):
        return list(default if text is None else text)
    out = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ConfigError(f"--seeds: {text!r}: expected e.g. 5-9 or 0,2,4")
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        out += list(range(a, b + 1))
    return out


@dataclass
class Job:
    """One run: a variant on a CLIVE split (or, ``tuning``, a tuning seed) at fixed knobs."""

    variant: str
    seed: int
    knobs: dict  # lr_backbone, lr_head, epochs, crop: values (no auto)
    name: str  # its row's path under the record, less ``.json``: rows/gate_s3, tune/gate_p0_t100
    params: dict  # what its numbers depend on, besides the code (its teacher's included)
    teacher: Job | None = None
    tuning: bool = False

    @property
    def code(self) -> str:
        return code_hash(self.params)


def run_params(raw: dict, w: WholeConfig, variant: str, knobs: dict, frozen: dict,
               teacher: Job | None = None, tuning: bool = False) -> dict:
    """A run's parameters, besides the code (see the module docstring)."""
    train = {k: v for k, v in (raw.get("train") or {}).items() if k not in UNUSED_TRAIN}
    return {"sections": {k: raw.get(k) for k in ("model", "qfm", "distill")} | {"train": train},
            "smoke": bool((raw.get("shared") or {}).get("smoke")), "tuning": tuning,
            "splits": int(raw["livec"]["splits"]),
            "whole": {k: v for k, v in to_dict(w).items() if k not in RUNTIME} | knobs,
            "variant": (raw.get("variants") or {}).get(variant),
            "frozen": frozen.get(variant, {}), "teacher": teacher.params if teacher else None}


class RunPlan:
    """The runs the regime needs — knobs, names, fingerprints — and the tuner's choices, read
    from its runs' rows. It trains nothing: with ``run``, a missing or stale tuning run is
    handed to ``ensure`` (the sitting's runner) first."""

    def __init__(self, raw: dict, w: WholeConfig, frozen: dict, out: Path, data: dict | None,
                 ensure: Callable[[Job], None] | None = None):
        self.raw, self.w, self.frozen, self.out, self.data = raw, w, frozen, Path(out), data
        self.ensure = ensure
        self.auto = [k for k in TUNABLE if getattr(w, k) == "auto"]
        self.points = [dict(zip(self.auto, vals))
                       for vals in itertools.product(*(w.tune.grid[k] for k in self.auto))]
        self.fixed = {k: getattr(w, k) for k in TUNABLE if k not in self.auto}
        self.means: dict[str, list] = {}  # by variant (``*``: by all): mean val SRCC per point

    def teacher_of(self, variant: str) -> str | None:
        return ((self.raw.get("variants") or {}).get(variant) or {}).get("teacher")

    def order(self, variants: list[str]) -> list[str]:
        """``variants`` and their teachers, each teacher before its student."""
        out: list[str] = []
        for v in variants:
            chain = [v]
            while self.teacher_of(chain[-1]):
                chain.append(self.teacher_of(chain[-1]))
            out += [u for u in reversed(chain) if u not in out]
        return out

    def trial(self, variant: str, i: int, seed: int, run: bool = False) -> Job | None:
        """The tuning run of ``variant`` at grid point ``i`` on tuning seed ``seed`` (its
        teacher: the same point with ``by: all``, its own chosen point with ``by: variant``)."""
        tv, tj = self.teacher_of(variant), None
        if tv:
            ti = i if self.w.tune.by == "all" else self.chosen(tv, run)
            tj = None if ti is None else self.trial(tv, ti, seed, run)
            if tj is None:
                return None
        knobs = self.fixed | {"epochs": self.w.tune.epochs} | self.points[i]
        return Job(variant, seed, knobs, f"tune/{variant}_p{i}_t{seed}",
                   run_params(self.raw, self.w, variant, knobs, self.frozen, tj, True), tj, True)

    def chosen(self, variant: str, run: bool = False) -> int | None:
        """The grid point ``variant`` runs at: the best mean validation SRCC over the tuning
        seeds (``by: all``: and over ``whole.variants``); None while a tuning run is not
        current. With ``by: variant`` and ``student: teacher`` a student takes its teacher's
        point and has no tuning runs of its own (it is its teacher's recipe plus distillation;
        its 3x cost buys it no extra tuning)."""
        every = self.w.tune.by == "all"
        if not every and self.w.tune.student == "teacher" and self.teacher_of(variant):
            return self.chosen(self.teacher_of(variant), run)
        key = "*" if every else variant
        if key not in self.means:
            means = []
            for i in range(len(self.points)):
                vals = []
                for u in self.order(self.w.variants) if every else [variant]:
                    for t in self.w.tune.seeds:
                        job = self.trial(u, i, t, run)
                        if job is not None and run:
                            self.ensure(job)
                        if job is None or check(row_file(self.out, job.name), job.code,
                                                self.data)[0] != "current":
                            return None
                        vals.append(read_row(row_file(self.out, job.name))["val_srcc"])
                ok = [x for x in vals if x is not None and np.isfinite(x)]
                means.append(float(np.mean(ok)) if ok else -np.inf)
            self.means[key] = means
        return int(np.argmax(self.means[key]))

    def job(self, variant: str, seed: int, run: bool = False) -> Job | None:
        """The run of ``variant`` on CLIVE split ``seed`` (None: its knobs are not tuned yet)."""
        i = self.chosen(variant, run) if self.auto else None
        if self.auto and i is None:
            return None
        knobs = self.fixed | (self.points[i] if self.auto else {})
        tv = self.teacher_of(variant)
        tj = self.job(tv, seed, run) if tv else None
        if tv and tj is None:
            return None
        return Job(variant, seed, knobs, f"rows/{variant}_s{seed}",
                   run_params(self.raw, self.w, variant, knobs, self.frozen, tj), tj)

    def codes(self, variants: list[str]) -> dict[str, str]:
        """Each variant's fingerprint (a split's run's: the same for every split)."""
        jobs = {v: self.job(v, 0) for v in variants}
        return {v: j.code for v, j in jobs.items() if j is not None}


@functools.lru_cache(maxsize=4)
def _source_digest(root: Path, code: tuple[str, ...] = CODE) -> str:
    """sha256 over the files of ``code`` under ``root`` (once a process: it runs what it loaded)."""
    h = hashlib.sha256()
    for item in code:
        p = root / item
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def code_hash(params: dict, root: str | Path | None = None,
              code: tuple[str, ...] = CODE) -> str:
    """sha256 over the source files of ``code`` (:data:`CODE`; another revision's list when
    its rows are checked) and ``params`` (not the frozen study's closure: edits to code no
    run here executes leave these costly rows current)."""
    h = hashlib.sha256(_source_digest(Path(root) if root else SOURCE, tuple(code)).encode())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()


def row_file(out: Path, name: str) -> Path:
    return Path(out) / f"{name}.json"


def read_row(path: Path) -> dict:
    """A row file (a broken or foreign one: a one-line error naming it)."""
    try:
        row = read_json(path)
    except FileError as err:
        raise FileError(f"{err} — a damaged row: delete it and rerun") from None
    for key in ("variant", "seed", "code_fingerprint", "data"):
        if not isinstance(row, dict) or key not in row:
            raise FileError(f"{path}: not a row of the whole regime (no {key}): delete it and "
                            f"rerun")
    return row


def check(path: Path, code: str, data: dict | None) -> tuple[str, str]:
    """(``current`` | ``stale`` | ``missing``, why) of a row; ``data`` None: not compared."""
    if not path.is_file():
        return "missing", "not run yet"
    row = read_row(path)
    if row["code_fingerprint"] != code:
        return "stale", "the code or its parameters changed since it ran"
    if data is not None and row["data"] != data:
        return "stale", "measured on another copy of CLIVE"
    preds = path.with_suffix(".csv")
    if row.get("predictions_sha256") and (not preds.is_file()
                                          or sha256(preds) != row["predictions_sha256"]):
        return "stale", f"{preds.name}: missing or changed"
    return "current", ""


def save_row(out: Path, name: str, row: dict, preds: pd.DataFrame | None) -> Path:
    """Write a run's predictions, then its row (the row's presence = the run is complete)."""
    path = row_file(out, name)
    if preds is not None:
        write_csv_atomic(preds, path.with_suffix(".csv"))
        row = {**row, "predictions": path.with_suffix(".csv").name,
               "predictions_sha256": sha256(path.with_suffix(".csv"))}
    return write_json(row, path)


def survey(out: Path, codes: dict[str, str], data: dict | None,
           planned: list[str]) -> dict:
    """Every row under ``out/rows``: current (by its variant's fingerprint, ``codes``), stale
    (with why) and the planned ones still missing."""
    rows, stale = [], []
    for f in sorted((Path(out) / "rows").glob("*.json")):
        row = read_row(f)
        name = f"rows/{f.stem}"
        code = codes.get(row["variant"])
        st, why = check(f, code, data) if code else (
            "stale", "its variant is no params.yaml variant, or its tuning runs are not current")
        (rows.append(row) if st == "current" else stale.append({"row": name, "why": why}))
    have = {f"rows/{r['variant']}_s{r['seed']}" for r in rows}
    return {"rows": sorted(rows, key=lambda r: (r["variant"], r["seed"])), "stale": stale,
            "missing": [n for n in planned if n not in have]}


def write_index(out: Path, state: dict, extra: dict) -> Path:
    """``livec_whole.json``: the current rows (without their fingerprints), what is stale or
    missing, and ``extra`` (the tuned values, the data's fingerprint)."""
    rows = [{k: v for k, v in r.items() if k != "code_fingerprint"} for r in state["rows"]]
    return write_json({**extra, "rows": rows, "stale": state["stale"],
                       "missing": state["missing"]}, Path(out) / INDEX)
