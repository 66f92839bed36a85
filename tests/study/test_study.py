"""The study: runs on cached tokens, paired verdicts, tuning on validation only."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from qfm.config import ConfigError, ModelConfig, WorldConfig
from qfm.report.verdict import bootstrap_ci, compare, paired, verdict

WORLD = dict(photos=["astronaut", "coffee", "chelsea", "rocket"], heldout_photos=["coffee"],
             contents_per_photo=4, distortions=["gaussian_blur", "gaussian_noise", "jpeg"],
             levels=3, unlabelled_per_content=1, split=[0.5, 0.25, 0.25])
TOKENS = dict(backbone="test_vit", img_size=32, weights="none", tokens="multiscale", grid=2,
              backbone_kwargs={"patch_size": 8})


@pytest.fixture(scope="module")
def study_home(tmp_path_factory):
    """A home with a tiny world, its cached tokens and a params.yaml for the study."""
    from qfm import paths
    from qfm.data.world import generate
    from qfm.study.tokens import extract

    home = tmp_path_factory.mktemp("study")
    mp = pytest.MonkeyPatch()
    mp.setenv("QFM_HOME", str(home))
    generate(WorldConfig(**WORLD), paths.world_dir(), n_splits=2, progress=False)
    torch.manual_seed(0)
    extract(ModelConfig(**TOKENS), paths.features_dir() / "tiny.safetensors", progress=False)
    params = {
        "shared": {"seed": 0, "smoke": False},
        "world": WORLD,
        "model": {**TOKENS, "dim": 16, "heads": 2},
        "train": {"epochs": 3, "batch_size": 8, "lr": 1e-3, "warmup_epochs": 0.5},
        "qfm": {"anchors": 4},
        "variants": {"baseline": {}, "gate_qfm": {"model": {"gate": True},
                                                  "qfm": {"enabled": True}},
                     "full": {"model": {"gate": True}, "qfm": {"enabled": True},
                              "distill": {"enabled": True}, "teacher": "gate_qfm"},
                     "baseline_long": {"match_steps": True}},
        "study": {"features": "tiny", "seeds": [0, 1], "workers": 1,
                  "tune": {"seeds": [0], "variant": "gate_qfm", "lr": [1e-3, 3e-3],
                           "rho": [0.2], "lambda_qfm": [1.0], "tau": [0.1]},
                  "groups": {"main": {"spurious": 0.0,
                                      "variants": ["baseline", "gate_qfm", "full",
                                                   "baseline_long"]}}}}
    (home / "params.yaml").write_text(yaml.safe_dump(params))
    # the stages whose sections params.yaml may hold (qfm.config reads the dvc.yaml beside it)
    (home / "dvc.yaml").write_text("stages:\n  study:\n    cmd: echo\n  tune:\n    cmd: echo\n")
    yield home
    mp.undo()


def test_group_runs_pairs_students_with_teachers_and_matches_steps(study_home, monkeypatch):
    from qfm.study.stages import run_group, tune

    monkeypatch.setenv("QFM_HOME", str(study_home))
    res = tune(study_home / "params.yaml", study_home / "tune.json", progress=False)
    assert set(res["chosen"]) == {"train.lr", "qfm.rho", "qfm.lambda_qfm", "qfm.tau"}
    lr_trials = [t for t in res["trials"] if t["variant"] == "baseline"]
    best = max(lr_trials, key=lambda t: t["val_srcc"])
    assert res["chosen"]["train.lr"] == best["train.lr"]  # chosen on validation
    assert not any("test" in k for t in res["trials"] for k in t)  # no test number to choose
    rows = run_group(study_home / "params.yaml", "main", study_home / "main.json",
                     study_home / "tune.json", study_home / "head.safetensors", progress=False)
    df = pd.DataFrame(rows)
    assert len(df) == 4 * 2 and set(df["seed"]) == {0, 1}
    full = df[df["variant"] == "full"].set_index("seed")
    long = df[df["variant"] == "baseline_long"].set_index("seed")
    base = df[df["variant"] == "baseline"].set_index("seed")
    assert (full["pseudo_images"] > 0).all() and (base["pseudo_images"] == 0).all()
    assert (long["steps"] >= full["steps"]).all() and (long["steps"] > base["steps"]).all()
    qfm_rows = df[df["variant"] == "gate_qfm"]
    assert qfm_rows["partner_rate"].between(0, 1).all() and (qfm_rows["shift"] > 0).all()
    for col in ("test_srcc", "heldout_srcc", "val_srcc", "share", "share_upstream"):
        assert df[col].between(-1, 1).all(), col
    saved = json.loads((study_home / "main.json").read_text())
    assert saved["tuned"] == res["chosen"] and "state" not in saved["rows"][0]
    # same seed, same numbers (determinism of the fan-out)
    again = run_group(study_home / "params.yaml", "main", study_home / "again.json",
                      study_home / "tune.json", progress=False)
    assert [r["test_srcc"] for r in again] == [r["test_srcc"] for r in rows]


def test_unknown_group_and_missing_teacher_are_named(study_home, monkeypatch):
    from qfm.study.stages import run_group

    monkeypatch.setenv("QFM_HOME", str(study_home))
    with pytest.raises(ConfigError, match="study.groups.nope: unknown group"):
        run_group(study_home / "params.yaml", "nope", study_home / "x.json")
    raw = yaml.safe_load((study_home / "params.yaml").read_text())
    raw["study"]["groups"]["main"]["variants"] = ["full"]
    (study_home / "p2.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="teacher: gate_qfm must be run in the same group"):
        run_group(study_home / "p2.yaml", "main", study_home / "x.json")


def test_verdict_reads_the_interval():
    assert verdict(0.01, 0.03) == "better"
    assert verdict(-0.03, -0.001) == "worse"
    assert verdict(-0.01, 0.02) == "no difference detected"
    assert verdict(float("nan"), 0.1) == "no difference detected"


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = rng.normal(0.02, 0.03, 10)
    large = rng.normal(0.02, 0.03, 200)
    lo, hi = bootstrap_ci(small)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < (hi - lo) / 2
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded


def test_compare_pairs_by_seed():
    rows = pd.DataFrame({"variant": ["baseline"] * 3 + ["v"] * 3, "seed": [0, 1, 2, 2, 1, 0],
                         "test_srcc": [0.5, 0.6, 0.7, 0.75, 0.65, 0.55]})
    d = paired(rows, "v")
    assert d["delta"].tolist() == pytest.approx([0.05, 0.05, 0.05])
    table = compare(rows, ["baseline", "v"]).set_index("variant")
    assert table.loc["v", "delta"] == pytest.approx(0.05)
    assert table.loc["v", "verdict"] == "better" and table.loc["v", "wins"] == 3
    assert table.loc["baseline", "verdict"] == "reference"
    assert table.loc["v", "sd"] == pytest.approx(0.1)


def test_spurious_changes_the_training_part_only(study_home, monkeypatch):
    from qfm import paths
    from qfm.study.tokens import FeatureBank
    from qfm.study.runs import load_run_data

    monkeypatch.setenv("QFM_HOME", str(study_home))
    bank = FeatureBank(paths.features_dir() / "tiny.safetensors")
    parts = {s: load_run_data(bank, str(paths.world_dir()), 0, s, False) for s in (0.0, 0.5, 1.0)}
    for part in ("val", "test", "heldout"):
        for s in (0.5, 1.0):
            pd.testing.assert_frame_equal(parts[s][part][2], parts[0.0][part][2])
    sizes = {s: len(p["train"][2]) for s, p in parts.items()}
    assert len(set(sizes.values())) == 1  # same size at every strength
    assert set(parts[1.0]["train"][2]["image"]) != set(parts[0.0]["train"][2]["image"])
    unl = set(parts[0.0]["unlabelled"][2]["content"])
    assert unl <= set(parts[0.0]["train"][2]["content"])  # teachers see training contents only
