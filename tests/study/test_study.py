"""The study: runs on cached tokens, paired verdicts, tuning on validation only."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from scipy import stats

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
        "train": {"epochs": 3, "batch_size": 8, "lr": "auto", "warmup_epochs": 0.5},
        "qfm": {"anchors": 4, "rho": "auto", "lambda_qfm": "auto", "tau": "auto"},
        "distill": {"lambda_kd": "auto"},
        "variants": {"baseline": {}, "gate": {"model": {"gate": True}},
                     "gate_qfm": {"model": {"gate": True},
                                                  "qfm": {"enabled": True}},
                     "full": {"model": {"gate": True}, "qfm": {"enabled": True},
                              "distill": {"enabled": True}, "teacher": "gate_qfm"},
                     "baseline_long": {"match_steps": True}},
        "study": {"features": "tiny", "seeds": [0, 1], "workers": 1,
                  "tune": {"seeds": [100], "extend": 1,
                           "lr": {"variants": ["baseline", "gate"], "grid": [1e-3, 3e-3]},
                           "rho": {"variants": "gate_qfm", "grid": [0.2]},
                           "lambda_qfm": {"variants": "gate_qfm", "grid": [0.0, 1.0]},
                           "tau": {"variants": "gate_qfm", "grid": [0.1]},
                           "lambda_kd": {"variants": "full", "grid": [0.5]}},
                  "groups": {"main": {"spurious": 0.0,
                                      "variants": ["baseline", "gate_qfm", "full",
                                                   "baseline_long"]}}}}
    (home / "params.yaml").write_text(yaml.safe_dump(params))
    # the stages whose sections params.yaml may hold (qfm.config reads the dvc.yaml beside it)
    (home / "dvc.yaml").write_text("stages:\n  study:\n    cmd: echo\n  tune:\n    cmd: echo\n")
    yield home
    mp.undo()


def test_group_runs_pairs_students_with_teachers_and_matches_steps(study_home, monkeypatch):
    from qfm.study.stages import run_group
    from qfm.study.tune import tune

    monkeypatch.setenv("QFM_HOME", str(study_home))
    res = tune(study_home / "params.yaml", study_home / "tune.json", progress=False)
    chosen = res["chosen"]
    assert set(chosen["gate_qfm"]) == {"train.lr", "qfm.rho", "qfm.lambda_qfm", "qfm.tau"}
    assert set(chosen["full"]) == set(chosen["gate_qfm"]) | {"distill.lambda_kd"}
    assert set(chosen["baseline"]) == set(chosen["baseline_long"]) == {"train.lr"}
    for arch, users in (("baseline", ["baseline_long"]), ("gate", ["gate_qfm", "full"])):
        lr_trials = [t for t in res["trials"] if t["knob"] == "train.lr"
                     and t["variant"] == arch]
        assert len(lr_trials) >= 3  # the two-value grid always has its best at an edge
        best = max(lr_trials, key=lambda t: t["val_srcc"])
        assert chosen[arch]["train.lr"] == best["train.lr"]  # chosen on validation
        assert all(chosen[u]["train.lr"] == best["train.lr"] for u in users)
    lr_knob = next(k for k in res["knobs"] if k["knob"] == "train.lr" and k["on"] == "gate")
    assert len(lr_knob["extended"]) == 1 and len(lr_knob["grid"]) == 3
    lam = [t for t in res["trials"] if t["knob"] == "qfm.lambda_qfm"]
    assert sorted(t["qfm.lambda_qfm"] for t in lam) == [0.0, 1.0]  # 0 in the grid
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
    assert saved["tuned"] == {v: chosen[v] for v in df["variant"].unique()}
    assert "state" not in saved["rows"][0]
    for v in ("baseline", "gate_qfm", "full", "baseline_long"):  # each its own tuned lr
        assert (df.loc[df["variant"] == v, "lr"] == chosen[v]["train.lr"]).all()
    assert (df.loc[df["variant"] == "gate_qfm", "rho"] == chosen["gate_qfm"]["qfm.rho"]).all()
    assert df.loc[df["variant"] == "baseline", "rho"].isna().all()  # QFM off: no ρ
    # each run's test predictions, beside the rows and not in them
    assert not any("predictions" in r for r in saved["rows"])
    pred = json.loads((study_home / "main.predictions.json").read_text())
    assert [(r["variant"], r["seed"]) for r in pred["runs"]] == \
        [(r["variant"], r["seed"]) for r in rows]
    assert set(pred["tests"]) == {"0", "1"} and pred["group"] == "main"
    for run, row in zip(pred["runs"], rows):
        test = pred["tests"][str(run["seed"])]
        assert len(run["pred"]) == len(test["mos"]) == len(test["image"]) > 3
        assert all(v == round(v, 5) for v in run["pred"] + test["mos"])
        srcc = stats.spearmanr(run["pred"], test["mos"])[0]
        # the row's number; unless rounding to 5 decimals made a tie (27 photos: ~0.003)
        tol = 1e-9 if len(set(run["pred"])) == len(run["pred"]) else 1e-2
        assert srcc == pytest.approx(row["test_srcc"], abs=tol)
    # same seed, same numbers (determinism of the fan-out), same predictions file bytes
    again = run_group(study_home / "params.yaml", "main", study_home / "again.json",
                      study_home / "tune.json", progress=False)
    assert [r["test_srcc"] for r in again] == [r["test_srcc"] for r in rows]
    assert (study_home / "again.predictions.json").read_bytes() == \
        (study_home / "main.predictions.json").read_bytes()


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
    base = [0.5, 0.6, 0.7, 0.55, 0.65, 0.62]
    delta = [0.05, 0.04, 0.06, 0.05, 0.045, 0.055]
    order = [5, 2, 0, 4, 1, 3]  # v's rows in another seed order: pairing is by seed
    rows = pd.DataFrame({"variant": ["baseline"] * 6 + ["v"] * 6,
                         "seed": list(range(6)) + order,
                         "test_srcc": base + [base[s] + delta[s] for s in order]})
    d = paired(rows, "v")
    assert d["delta"].tolist() == pytest.approx(delta)
    table = compare(rows, ["baseline", "v"]).set_index("variant")
    assert table.loc["v", "delta"] == pytest.approx(np.mean(delta))
    assert table.loc["v", "verdict"] == "better" and table.loc["v", "wins"] == 6
    assert table.loc["baseline", "verdict"] == "reference"
    assert table.loc["v", "sd"] == pytest.approx(np.std([b + x for b, x in zip(base, delta)],
                                                        ddof=1))
    three = rows[rows["seed"] < 3]  # an interval from three seeds is never a 95 % CI
    assert compare(three, ["v"]).set_index("variant").loc["v", "verdict"] == "too few seeds"


def test_spurious_changes_the_training_part_only(study_home, monkeypatch):
    from qfm import paths
    from qfm.study.run import load_run_data
    from qfm.study.tokens import FeatureBank

    monkeypatch.setenv("QFM_HOME", str(study_home))
    bank = FeatureBank(paths.features_dir() / "tiny.safetensors")
    parts = {s: load_run_data(bank, str(paths.world_dir()), 0, s, False, halve=True)
             for s in (0.0, 0.5, 1.0)}  # the sweep: the knob's half at every strength
    whole = load_run_data(bank, str(paths.world_dir()), 0, 0.0, False)  # main: no knob
    for part in ("val", "test", "heldout"):
        for s in (0.5, 1.0):
            pd.testing.assert_frame_equal(parts[s][part][2], parts[0.0][part][2])
    sizes = {s: len(p["train"][2]) for s, p in parts.items()}
    assert len(set(sizes.values())) == 1  # same size at every strength of the sweep
    assert len(whole["train"][2]) > sizes[0.0] and \
        set(parts[0.0]["train"][2]["image"]) < set(whole["train"][2]["image"])
    assert set(parts[1.0]["train"][2]["image"]) != set(parts[0.0]["train"][2]["image"])
    unl = set(parts[0.0]["unlabelled"][2]["content"])
    assert unl <= set(parts[0.0]["train"][2]["content"])  # teachers see training contents only


def test_a_knob_params_yaml_sets_is_not_tuned_and_reaches_the_rows(study_home, monkeypatch):
    """`dvc exp run -S qfm.rho=0.1` in smoke mode: the tuner skips ρ; every QFM row has 0.1."""
    from qfm.study.stages import run_group
    from qfm.study.tune import tune

    monkeypatch.setenv("QFM_HOME", str(study_home))
    raw = yaml.safe_load((study_home / "params.yaml").read_text())
    raw["qfm"]["rho"] = 0.1
    raw["shared"]["smoke"] = True
    (study_home / "rho.yaml").write_text(yaml.safe_dump(raw))
    res = tune(study_home / "rho.yaml", study_home / "tune_rho.json", progress=False)
    assert not any(t["knob"] == "qfm.rho" for t in res["trials"])
    assert all("qfm.rho" not in c for c in res["chosen"].values())
    rec = next(k for k in res["knobs"] if k["knob"] == "qfm.rho")
    assert rec["status"] == "fixed by params.yaml" and rec["value"] == 0.1
    assert all(t.get("qfm.rho", 0.1) == 0.1 for t in res["trials"])  # QFM trials ran at 0.1
    rows = pd.DataFrame(run_group(study_home / "rho.yaml", "main", study_home / "rho_main.json",
                                  study_home / "tune_rho.json", progress=False))
    qfm_rows = rows[rows["variant"].isin(["gate_qfm", "full"])]
    assert len(qfm_rows) == 4 and (qfm_rows["rho"] == 0.1).all()
    assert (qfm_rows["tau"] == res["chosen"]["gate_qfm"]["qfm.tau"]).all()  # still tuned


def test_tuning_split_validates_on_no_reported_test_content(study_home):
    from qfm.study.tune import tuning_split

    world = study_home / "data" / "world"
    rows, rec = tuning_split(world, [0, 1], 100, 0.5)
    table = pd.read_csv(world / "table.csv")[["image", "content"]]
    parts = table.merge(rows, on="image")
    val = set(parts.loc[parts["split"] == "val", "content"])
    train = set(parts.loc[parts["split"] == "train", "content"])
    tested = set()
    for k in (0, 1):
        s = table.merge(pd.read_csv(world / "splits" / f"split_{k}.csv"), on="image")
        tested |= set(s.loc[s["split"] == "test", "content"])
        assert not val & set(s.loc[s["split"] == "heldout", "content"])
    assert val and train and not val & tested and not val & train
    assert set(rows["split"]) == {"train", "val"}  # no test part
    assert rec["val_contents"] == len(val)
    other, _ = tuning_split(world, [0, 1], 101, 0.5)
    assert set(other.loc[other["split"] == "val", "image"]) == \
        set(rows.loc[rows["split"] == "val", "image"])


def test_grid_steps_extend_geometrically_and_stop_at_bounds():
    from qfm.study.tune import grid_step as _grid_step

    assert _grid_step([0.001, 0.002, 0.004], True, "train.lr") == pytest.approx(0.008)
    assert _grid_step([0.001, 0.002, 0.004], False, "train.lr") == pytest.approx(0.0005)
    assert _grid_step([0.0, 0.3, 1.0], False, "qfm.lambda_qfm") is None  # 0 is a bound
    assert _grid_step([0.0, 0.5], True, "distill.lambda_kd") == pytest.approx(1.5)  # ×3
    assert _grid_step([0.05, 0.5], True, "qfm.tau") == 1.0  # τ ≤ 1
    assert _grid_step([0.5, 1.0], True, "qfm.tau") is None
    # the extensions spent: ρ still at its lowest tries its off switch, 0; nothing else goes on
    assert _grid_step([0.003, 0.0125, 0.05], False, "qfm.rho", last=True) == 0.0
    assert _grid_step([0.0, 0.003, 0.0125], False, "qfm.rho", last=True) is None
    assert _grid_step([0.003, 0.0125, 0.05], True, "qfm.rho", last=True) is None
    assert _grid_step([0.0005, 0.001, 0.002], False, "train.lr", last=True) is None


def test_an_inert_qfm_term_trains_as_the_gate_and_runs_once(study_home, monkeypatch):
    """λ_qfm = 0: the same weights, bit for bit, as the gate-only run of the seed (what lets
    run_specs run such specs once); the copy keeps its own name and knobs."""
    from qfm import paths
    from qfm.config import load_params, read_params
    from qfm.study.run import load_run_data, train_run
    from qfm.study.runner import make_specs, run_key, run_specs
    from qfm.study.tokens import FeatureBank

    monkeypatch.setenv("QFM_HOME", str(study_home))
    raw = read_params(study_home / "params.yaml")
    base = load_params(study_home / "params.yaml")
    knobs = {"train.lr": 1e-3, "qfm.rho": 0.2, "qfm.tau": 0.1}
    per = {"gate": {"train.lr": 1e-3}, "gate_qfm": {**knobs, "qfm.lambda_qfm": 0.0}}
    gate, inert = make_specs(raw, base, ["gate", "gate_qfm"], [0], 0.0, per_variant=per)
    live = make_specs(raw, base, ["gate_qfm"], [0], 0.0,
                      per_variant={"gate_qfm": {**knobs, "qfm.lambda_qfm": 1.0}})[0]
    assert run_key(gate) == run_key(inert) != run_key(live)
    bank = FeatureBank(paths.features_dir() / "tiny.safetensors")
    data = load_run_data(bank, str(paths.world_dir()), 0, 0.0, False)
    a, b = train_run(gate, data, bank.width), train_run(inert, data, bank.width)
    assert a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    assert a["val_curve"] == b["val_curve"] and a["test_srcc"] == b["test_srcc"]
    memo = {}
    rows = run_specs([gate, inert], str(paths.features_dir() / "tiny.safetensors"),
                     str(paths.world_dir()), workers=1, progress=False, memo=memo)
    assert len(memo) == 1  # one run trained
    assert rows[1]["variant"] == "gate_qfm" and rows[1]["same_as"] == "gate"
    assert rows[1]["lambda_qfm"] == 0.0 and rows[1]["rho"] == 0.2 and rows[0]["rho"] is None
    assert rows[1]["test_srcc"] == a["test_srcc"] and "same_as" not in rows[0]


def test_qfm_knobs_after_a_chosen_zero_weight_are_moot(study_home, monkeypatch):
    from qfm.study.show import chosen_text
    from qfm.study.tune import MOOT, tune

    monkeypatch.setenv("QFM_HOME", str(study_home))
    raw = yaml.safe_load((study_home / "params.yaml").read_text())
    raw["shared"]["smoke"] = True
    raw["study"]["tune"]["lambda_qfm"]["grid"] = [0.0]
    (study_home / "moot.yaml").write_text(yaml.safe_dump(raw))
    res = tune(study_home / "moot.yaml", study_home / "tune_moot.json", progress=False)
    tau = next(k for k in res["knobs"] if k["knob"] == "qfm.tau")
    assert tau["status"] == MOOT and not any(t["knob"] == "qfm.tau" for t in res["trials"])
    lam = next(t for t in res["trials"] if t["knob"] == "qfm.lambda_qfm")
    assert lam["reused"]  # the gate's own runs at its learning rate: nothing new trained
    assert "moot once λ_qfm = 0: τ" in chosen_text(res)
