"""The whole-upstream regime's candidate default model: its best variant refit on every photo.

:func:`refit_whole` (``qfm whole --refit``) reads the regime's current split rows
(:mod:`qfm.study.whole`), takes the variant the default rule's first step takes
(:mod:`qfm.study.default_rule`: the best mean validation SRCC over its splits) and trains it
again, with the sitting's machinery (:func:`qfm.study.whole_run.train_whole`), on all CLIVE
photos — as the frozen study refits its head (:func:`qfm.study.livec.refit_default`). The
split rows' fingerprint does not cover this module (no split run executes it); the refit's
sidecar carries its own run's fingerprint and the splits it read, and the ``default`` stage
refuses a refit read from fewer splits than the regime has now.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from qfm import paths
from qfm.config import RunConfig, load_params, override, read_params, to_dict
from qfm.core.checkpoint import save_tensors
from qfm.core.inference import resolve_device
from qfm.files import FileError, read_json
from qfm.study import real
from qfm.study.default_rule import MIN_SPLITS, REGIMES
from qfm.study.whole import Sitting, write_survey
from qfm.study.whole_rows import Job, RunPlan, parse_view, section
from qfm.study.whole_run import SMOKE, smoke_view, train_whole

# the regime's refit on every photo, in its record: the file the default rule looks for
REFIT = Path(next(f for name, _, f in REGIMES if name == "whole upstream")).name


def refit_whole(params_path: str | Path = "params.yaml", out_dir: str | Path | None = None,
                *, device: str | None = None, smoke: bool = False,
                min_splits: int = MIN_SPLITS, progress: bool = True) -> dict:
    """The regime's candidate default model (``qfm whole --refit``): its variant with the best
    mean validation SRCC over its current split rows — step 1 of
    :mod:`qfm.study.default_rule` — trained again on **every** CLIVE photo, as the frozen
    study refits its head (:func:`qfm.study.livec.refit_default`): the variant's knobs, for
    the median best epoch + 1 of its split runs, nothing held out, nothing selected, seed 0;
    scored in the test view its split runs chose most often. A student's teacher is refit
    first the same way, and scores the student's views. Writes ``<record>/default.safetensors``
    (every weight; sidecar: the choice, the epochs, the view, the splits it read, how
    ``qfm predict`` must prepare a photo), which the ``default`` stage ships when the rule
    picks this regime.

    Returns:
        The sidecar.
    """
    raw = read_params(params_path)
    w = section(raw)
    raw["shared"] = {**(raw.get("shared") or {}), **({"smoke": True} if smoke else {})}
    smoke = bool(raw["shared"].get("smoke"))
    out = Path(out_dir) if out_dir else paths.runs_dir() / "whole_smoke" if smoke \
        else paths.measured_dir("livec_whole")
    frozen_file = paths.measured_dir("livec") / "tune.json"
    if not frozen_file.is_file():
        raise FileNotFoundError(f"{frozen_file}: missing — run the livec stage first")
    root = paths.find_dataset("livec", raw["livec"]["root"])
    if root is None:
        raise FileNotFoundError(f"livec.root: no CLIVE copy found ({raw['livec']['root']}; "
                                f"QFM_DATA, data/livec, ../shared/data/livec)")
    src = real.source("livec", root, int(raw["livec"]["splits"]))
    plan = RunPlan(raw, w, read_json(frozen_file)["chosen"], out, real.fingerprint(src.table))
    rows = pd.DataFrame(write_survey(plan, set(), False)["rows"])
    if rows.empty:
        raise FileError(f"{out}: no current split row to refit from (`qfm whole` first)")
    means = rows.groupby("variant")["val_srcc"].mean()
    variant = means.idxmax()  # as the default rule's step 1 reads the regime
    mine = rows[rows["variant"] == variant]
    if mine["seed"].nunique() < min_splits:
        raise FileError(f"{out}: {variant}, the regime's best by validation, has rows on "
                        f"{mine['seed'].nunique()} splits; a refit needs {min_splits} "
                        f"(`qfm whole` first)")
    dev = resolve_device(device or w.device)
    base = override(load_params(params_path), {"shared.smoke": smoke})
    sit = Sitting(raw, base, plan, src, root, dev, 0, progress)
    photos = src.table.reset_index(drop=True)
    if smoke:
        photos = photos.sample(min(SMOKE["train"], len(photos)), random_state=0)
    t0 = time.perf_counter()

    def fit(v: str) -> tuple[Job, RunConfig, dict, str]:
        """Refit ``v`` (its teacher first): (its job, config, weights, test view)."""
        runs = rows[rows["variant"] == v]
        if runs.empty:
            raise FileError(f"{out}: {v} (a teacher) has no current split row to refit from")
        tv, teacher, tjob = plan.teacher_of(v), None, None
        if tv:
            tjob, tcfg, tstate, _ = fit(tv)
            teacher = (to_dict(tcfg.model), tstate)
        epochs = int(np.median(runs["best_epoch"])) + 1
        chosen = list(runs["test_view"])  # the most chosen view; ties: whole.test_views' order
        view = max(dict.fromkeys([*w.test_views, *chosen]), key=chosen.count)
        split_job = plan.job(v, 0)
        refit = {"epochs": epochs, "view": view, "splits": sorted(runs["seed"].tolist())}
        params = {**split_job.params, "teacher": tjob.params if tjob else None, "refit": refit}
        job = Job(v, 0, {**split_job.knobs, "epochs": epochs}, f"refit/{v}", params, tjob)
        cfg = sit.config(job)
        shown = smoke_view(view) if smoke else view
        _, _, state = train_whole(job, cfg, {"train": photos}, root, dev, teacher,
                                  views=1 if smoke else w.views, test_views=[shown],
                                  patience=0, workers=w.workers, decoded=sit.decoded,
                                  progress=progress)
        return job, cfg, state, shown

    job, cfg, state, view = fit(variant)
    kind, n = parse_view(view)
    crop = int(job.knobs["crop"]) if not smoke else min(int(job.knobs["crop"]), SMOKE["crop"])
    pre = ({"short_side": n, "crops": 1, "crop": n} if kind == "whole" else
           {"short_side": int(raw["livec"]["resize"]), "crops": n, "crop": crop})
    meta = {"kind": "whole_refit", "config": to_dict(cfg), "variant": variant,
            "regime": "whole upstream", "epochs": int(job.knobs["epochs"]),
            "images": int(len(photos)), "dataset": "livec", "test_view": view,
            "splits": sorted(mine["seed"].tolist()), "val_srcc": float(mine["val_srcc"].mean()),
            "val_srcc_by_variant": means.round(4).to_dict(),
            "chosen_on": f"the whole-upstream variant with the best mean validation SRCC over "
                         f"{mine['seed'].nunique()} CLIVE splits, refit on all {len(photos)} "
                         f"images for the median best epoch + 1",
            "trained_on": f"LIVE In the Wild Challenge (CLIVE), {len(photos)} images, MOS "
                          f"0-100, the whole upstream trained from pixels",
            "preprocess": pre, "code_fingerprint": job.code, "data": plan.data,
            "teacher": job.teacher.name if job.teacher else None,
            "seconds": round(time.perf_counter() - t0, 1)}
    save_tensors(state, out / REFIT, meta)
    if progress:
        print(f"whole: refit {variant} on {len(photos)} photos for {meta['epochs']} epochs "
              f"({view}) → {out / REFIT}", flush=True)
    return meta
