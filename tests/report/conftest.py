"""A small figures-notebook input on disk, shaped like the pipeline's: a params file, the study's
``results/study/`` (tune.json, one JSON per group, unseen_photo.json), the committed LIVEC and
fine-tuning studies (``measured/``) and the benchmark results the book quotes. Synthetic rows:
gate and gate_qfm clearly ahead of the baseline, the gate_qfm − gate edge growing with the
spurious strength. No world images, tokens or head (the torch views are tested apart)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from qfm.report.study_inputs import StudyInputs, read_inputs
from qfm.report.verdicts import verdict_record

MAIN = ["baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full"]
SWEEP = ["baseline", "gate", "gate_qfm"]
FT = ["baseline", "gate", "gate_qfm", "full"]
LIFT = {"gate": 0.02, "gate_static": 0.0, "gate_params": 0.003, "gate_qfm": 0.025, "full": 0.03}
PARAMS = {
    "figures": {"group": "main", "intro": ["full", "gate_qfm", "gate", "gate_static",
                                           "gate_params"],
                "ladder": ["baseline", "gate", "gate_qfm", "full"], "sweep": ["gate_qfm"],
                "sweep_groups": ["sweep_zero", "spurious_full"], "toy_group": "toy",
                "curves": ["baseline", "full"], "example_content": "c_01", "split": 0,
                "pairs_batch": 8, "pairs_shown": 2},
    "study": {"tune": {"seeds": [100, 101], "rho": {"grid": [0.0, 0.01]}},
              "groups": {"main": {"spurious": 0.0, "variants": MAIN},
                         "sweep_zero": {"spurious": 0.0, "variants": SWEEP},
                         "spurious_full": {"spurious": 1.0, "variants": SWEEP},
                         "toy": {"spurious": 0.0, "variants": ["baseline"]},
                         "finetune": {"spurious": 0.0, "variants": FT}}},
    "livec": {"variants": FT},
    "finetune": {"stages": 1, "livec": {"resize": 384}},
    "whole": {"variants": FT, "crop": 224},
}



def _trial(knob: str, variant: str, value: float, val: float, **others) -> dict:
    return {"knob": knob, "variant": variant, knob: value, **others, "val_srcc": val,
            "best_is_last": 0.0}


# tune.json as the stage writes it: learning rates per variant, then λ_qfm on gate_qfm
TUNE = {"seeds": [100, 101],
        "chosen": {"baseline": {"train.lr": 1e-3}, "gate": {"train.lr": 2e-3},
                   "gate_qfm": {"train.lr": 2e-3, "qfm.lambda_qfm": 0.3, "qfm.rho": 0.01}},
        "knobs": [{"knob": "train.lr", "on": "baseline", "value": 1e-3, "status": "tuned"},
                  {"knob": "train.lr", "on": "gate", "value": 2e-3, "status": "tuned"},
                  {"knob": "qfm.lambda_qfm", "on": "gate_qfm", "value": 0.3,
                   "status": "tuned"},
                  {"knob": "qfm.rho", "on": "gate_qfm", "value": 0.01,
                   "status": "fixed by params.yaml"}],
        "trials": [*(_trial("train.lr", "baseline", lr, val) for lr, val in
                     ((5e-4, 0.70), (1e-3, 0.74), (2e-3, 0.72))),
                   *(_trial("train.lr", "gate", lr, val) for lr, val in
                     ((1e-3, 0.75), (2e-3, 0.78), (4e-3, 0.77))),
                   *(_trial("qfm.lambda_qfm", "gate_qfm", lam, val, **{"train.lr": 2e-3})
                     for lam, val in ((0.1, 0.78), (0.3, 0.79), (1.0, 0.785)))]}


def run_rows(variants, n: int, spurious: float = 0.0, lift: dict | None = None,
             seed: int = 0) -> list[dict]:
    """Study rows as ``results/study/<group>.json`` holds them (the columns the book reads)."""
    rng = np.random.default_rng(seed)
    base = 0.8 + 0.03 * rng.standard_normal(n)
    lift = {**LIFT, **(lift or {})}
    out = []
    for v in variants:
        qfm = v in ("gate_qfm", "full")
        for s in range(n):
            t = base[s] + lift.get(v, 0.0) + 0.004 * rng.standard_normal() - 0.05 * spurious
            out.append({"variant": v, "seed": s, "test_srcc": t, "test_plcc": t + 0.01,
                        "test_plcc_raw": t - 0.01, "heldout_srcc": t - 0.1,
                        "share": 0.3 - lift.get(v, 0.0) + 0.01 * rng.standard_normal(),
                        "share_upstream": 0.4 + 0.01 * s, "val_srcc": t + 0.02,
                        "max_epochs": 60, "train_images": 2660 + 10 * s,
                        "best_is_last": s == 0, "best_epoch": 10 + s, "epochs": 20 + s,
                        "stopped_early": s != 0,
                        "val_curve": list(np.linspace(0.5, 0.85, 8)),
                        "partner_rate": 0.5 if qfm else None, "candidates": 3.0 if qfm else None,
                        "shift_rel": 0.1 if qfm else None, "same_as": None})
    return out


def write_tree(root: Path, livec_measured: bool = True, whole_measured: bool = False) -> dict:
    """The notebook's inputs under ``root``; returns :func:`read_inputs`' arguments."""
    study = root / "results" / "study"
    study.mkdir(parents=True)
    for g, spec in PARAMS["study"]["groups"].items():
        if g == "finetune":
            continue
        grow = {"gate_qfm": 0.025 + 0.03 * spec["spurious"]}
        n = 5 if g == "toy" else 10
        (study / f"{g}.json").write_text(json.dumps(
            {"spurious": spec["spurious"], "rows": run_rows(spec["variants"], n,
                                                            spec["spurious"], grow)}))
    (study / "tune.json").write_text(json.dumps(TUNE))
    (study / "unseen_photo.json").write_text(json.dumps({"photo": "a_photo", "ladders": {
        k: {"scores": [60, 55, 50, 45, 40, 35], "srcc_level": -1.0, "ordered": k != "jpeg"}
        for k in ("gaussian_blur", "jpeg", "pixelate")}}))
    measured, measured_ft, measured_wft = (root / "measured" / n for n in
                                           ("livec", "livec_finetune", "world_finetune"))
    for d in (measured, measured_ft, measured_wft):
        d.mkdir(parents=True)
    (measured_wft / "finetune.json").write_text(json.dumps(
        {"spurious": 0.0, "rows": run_rows(FT, 5, lift={"gate": 0.03}, seed=2)}))
    if livec_measured:
        (measured / "livec.json").write_text(json.dumps({"rows": run_rows(FT, 10, seed=3)}))
        (measured / "tune.json").write_text(json.dumps(TUNE))
        (measured / "default_head.json").write_text(json.dumps(
            {"meta": {"variant": "gate", "val_srcc": 0.81234, "images": 930, "epochs": 7}}))
        (measured_ft / "finetune.json").write_text(json.dumps(
            {"rows": run_rows(FT, 5, seed=4)}))
    whole = root / "measured" / "livec_whole"
    if whole_measured:  # the whole-upstream regime: 5 splits, the gate well ahead
        whole.mkdir(parents=True)
        (whole / "livec_whole.json").write_text(json.dumps(
            {"rows": run_rows(FT, 5, lift={"gate": 0.05, "gate_qfm": 0.05, "full": 0.05},
                              seed=5), "stale": [], "missing": ["rows/full_s5"],
             "knobs": {v: {"lr_backbone": 1e-4} for v in FT}}))
    bench = root / "bench"
    bench.mkdir()
    pops = {"normal": 0.95, "exponential (skew 2)": 0.94, "lognormal sigma 0.5 (skew 1.8)": 0.93}
    for name, shift in (("interval_coverage.json", 0.0), ("interval_coverage_n5.json", 0.01)):
        (bench / name).write_text(json.dumps({"populations": {
            k: {"bootstrap_t_coverage": c - shift, "t_coverage": c - 0.03 - shift}
            for k, c in pops.items()}}))
    (bench / "clive_tokens.json").write_text(json.dumps({
        "chosen": "whole384_g3", "how": "5 seeds, validation",
        "recipes": [{"recipe": r, "upstream": "Lite0", "input": r, "val_srcc": v,
                     "val_srcc_sd": 0.01, "test_srcc": v - 0.01, "test_srcc_sd": 0.01}
                    for r, v in (("whole224_g3", 0.71), ("whole384_g3", 0.74))]}))
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    return {"params": params, "study_dir": study, "world": root / "data" / "world",
            "features": root / "data" / "features.safetensors",
            "head": root / "models" / "head.safetensors", "measured": measured,
            "measured_ft": measured_ft, "measured_wft": measured_wft,
            "clive_tokens": bench / "clive_tokens.json",
            "coverage": str(bench / "interval_coverage.json"),
            "architecture": bench / "architecture_choices.json", "measured_whole": whole,
            "stability": bench / "tuning_stability.json"}  # absent: "not measured yet"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> StudyInputs:
    """The notebook's inputs with LIVEC and its fine-tuning regime measured."""
    return read_inputs(**write_tree(tmp_path_factory.mktemp("study")))


@pytest.fixture(scope="module")
def unmeasured(tmp_path_factory) -> StudyInputs:
    """The same world study on a clone where LIVEC was never measured."""
    return read_inputs(**write_tree(tmp_path_factory.mktemp("clone"), livec_measured=False))


@pytest.fixture(scope="module")
def record(inputs) -> dict:
    """The verdict record of :func:`inputs`."""
    return verdict_record(inputs)


@pytest.fixture(scope="module")
def whole_inputs(tmp_path_factory) -> StudyInputs:
    """The notebook's inputs with the whole-upstream regime's rows committed too."""
    return read_inputs(**write_tree(tmp_path_factory.mktemp("whole"), whole_measured=True))
