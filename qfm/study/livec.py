"""The study on LIVE In the Wild (CLIVE, ``livec``): real human opinion scores.

The ``livec`` stage runs it where the data is (:func:`run_livec`): the frozen upstream's tokens
of every photo (:mod:`qfm.study.real`), the tuner and the group on CLIVE's own splits, and the
default model's head refit on every photo (:func:`refit_default`). Its results are committed in
``measured/livec/`` with their record (:mod:`qfm.study.record`), so a clone without the data
shows them, flagged stale when the code moved on.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from qfm import paths
from qfm.config import ConfigError, load_params, read_params, to_dict
from qfm.core.checkpoint import save_tensors, sidecar
from qfm.files import read_json, write_json
from qfm.study import real, record, stages, tune
from qfm.study.runner import make_specs, run_specs


def livec_section(raw: dict) -> tuple[dict, dict]:
    """(params.yaml's ``livec`` section, the study section it implies for the tuner and the
    group: CLIVE's own seeds, tuning seeds, features and the world's tuning grids)."""
    cl = raw.get("livec")
    if not isinstance(cl, dict):
        raise ConfigError("livec: section missing in params.yaml")
    for key in ("root", "splits", "resize", "views", "view_crop", "variants", "tune_seeds"):
        if key not in cl:
            raise ConfigError(f"livec.{key}: missing")
    tune = {**raw["study"]["tune"], "seeds": list(cl["tune_seeds"])}
    study = {"features": "livec", "seeds": list(range(int(cl["splits"]))),
             "workers": int(cl.get("workers", 2)), "tune": tune,
             "groups": {"livec": {"spurious": 0.0, "variants": list(cl["variants"])}}}
    return cl, study


def shaping_params(raw: dict) -> dict:
    """The parameters a measured result depends on (its code fingerprint includes them)."""
    keys = ("shared", "model", "train", "qfm", "distill", "variants", "livec")
    return {k: raw.get(k) for k in keys} | {"study.tune": raw["study"]["tune"]}


def run_livec(params_path: str | Path = "params.yaml", out_dir: str | Path | None = None,
              progress: bool = True) -> dict:
    """The ``clive`` stage: the study on CLIVE where the data is; otherwise nothing changes.

    Writes ``out_dir`` (default ``measured/livec``): ``tune.json``, ``livec.json`` (one row
    per run), ``livec.predictions.json`` (each run's test predictions,
    :func:`qfm.study.stages.write_predictions`), ``default_head.safetensors`` (+ sidecar: the
    default model's head, refit on every image) and ``provenance.json``.

    Returns:
        ``{"status": "measured" | "no data", ...}``.
    """
    t0 = time.perf_counter()
    raw = read_params(params_path)
    cl, study = livec_section(raw)
    out = Path(out_dir) if out_dir else paths.measured_dir("livec")
    root = paths.find_dataset("livec", cl["root"])
    if root is None:
        out.mkdir(parents=True, exist_ok=True)  # the stage's output, empty until measured
        st = record.status(out, shaping_params(raw))
        msg = (f"clive: no CLIVE copy found (livec.root: {cl['root']}; QFM_DATA, data/livec, "
               f"../shared/data/livec): {out} unchanged — {st['why']}")
        print(msg, flush=True)
        return {"status": "no data", "message": msg, **st}
    base = load_params(params_path)
    src = real.source("livec", root, int(cl["splits"]))
    recipe = real.TokenRecipe(int(cl["resize"]), int(cl["views"]), int(cl["view_crop"]))
    feats = paths.features_dir() / "livec.safetensors"
    data = real.fingerprint(src.table)
    want = {"model": to_dict(base.model), "recipe": vars(recipe), "data": data}
    cached = read_json(sidecar(feats)) if sidecar(feats).is_file() else {}  # no tokens read
    if "recipe" in cached:  # a cache made before a recipe field existed has its default
        cached["recipe"] = {**vars(real.TokenRecipe()), **cached["recipe"]}
    if not feats.is_file() or any(cached.get(k) != v for k, v in want.items()):
        real.extract(base.model, root, src.table, recipe, feats, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    record.keep_notice(root, out)
    code = record.code_fingerprint(shaping_params(raw))
    reused = []  # a step whose file carries the current code fingerprint is not rerun
    if record.is_current(out / "tune.json", code):
        tuned, reused = read_json(out / "tune.json"), reused + ["tune"]
    else:
        tuned = tune.tune(params_path, out / "tune.json", progress, study=study, source=src)
        record.stamp(out / "tune.json", code)
    if record.is_current(out / "livec.json", code) and \
            stages.predictions_path(out / "livec.json").is_file():
        rows, reused = read_json(out / "livec.json")["rows"], reused + ["livec"]
    else:
        rows = stages.run_group(params_path, "livec", out / "livec.json", out / "tune.json",
                                None, progress, study=study, source=src)
        record.stamp(out / "livec.json", code)
    head = refit_default(params_path, study, src, rows, tuned, out / "default_head.safetensors",
                         progress)
    prov = record.provenance(data, shaping_params(raw), time.perf_counter() - t0)
    prov["default_head"] = {k: head[k] for k in ("variant", "epochs", "images", "val_srcc")}
    prov["reused_steps"] = reused
    write_json(prov, out / "provenance.json")
    return {"status": "measured", "provenance": prov}


def refit_default(params_path, study: dict, src, rows: list[dict], tuned: dict,
                  out: str | Path, progress: bool = True) -> dict:
    """The default model's head, by rule: the variant with the best mean validation SRCC over
    the seeds, trained again on **every** image for as many epochs as its runs chose on
    validation (median best epoch + 1), with its tuned values. Nothing is selected on the
    refit (it has no held-out part): its sidecar carries the 10-split validation numbers.

    Returns:
        The head's metadata.
    """
    raw, base = read_params(params_path), load_params(params_path)
    frame = pd.DataFrame(rows)
    variant = stages.best_variant(rows)
    mine = frame[frame["variant"] == variant]
    epochs = int(np.median(mine["best_epoch"])) + 1
    everything = pd.DataFrame({"image": src.table["image"]})
    split = pd.concat([everything.assign(split=p) for p in ("train", "val", "test")])
    teacher = (raw["variants"][variant] or {}).get("teacher")
    chosen = tuned["chosen"]
    names = [teacher, variant] if teacher else [variant]
    per = {v: {**chosen.get(v, {}), "train.epochs": epochs, "train.patience": 0,
               "train.eval_every": epochs} for v in names}
    if teacher:  # the teacher's own epochs, chosen the same way
        t = frame[frame["variant"] == teacher]
        per[teacher]["train.epochs"] = per[teacher]["train.eval_every"] = \
            int(np.median(t["best_epoch"])) + 1 if len(t) else epochs
    specs = make_specs(raw, base, names, [0], 0.0, per_variant=per, split_tables={0: split})
    for spec in specs:  # a steps-matched control trains its chosen epochs like any other
        spec.match_steps = False
    res = run_specs(specs, str(paths.features_dir() / f"{study['features']}.safetensors"), src,
                    1, progress)[-1]
    meta = {"kind": "head", "config": to_dict(specs[-1].cfg), "variant": variant,
            "epochs": epochs, "images": int(len(src.table)), "dataset": "livec",
            "val_srcc": float(mine["val_srcc"].mean()),
            "val_srcc_by_variant": frame.groupby("variant")["val_srcc"].mean().round(4).to_dict(),
            "chosen_on": f"the variant with the best mean validation SRCC over "
                         f"{mine['seed'].nunique()} CLIVE splits, refit on all "
                         f"{len(src.table)} images for the median best epoch + 1",
            "trained_on": "LIVE In the Wild Challenge (CLIVE), 930 of 1,162 images, MOS 0-100",
            # how a photo becomes the tokens the head saw: qfm predict does the same
            "preprocess": {"short_side": int(raw["livec"]["resize"]), "crops": 1}}
    save_tensors(res["state"], out, meta)
    return meta
