"""The analysis plan: one file, the code's defaults equal to it, its history kept, and a
change of the plan moves verdicts (the plan decides, not the code's constants)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from qfm.paper import DEIQT_REPORTED, PAPER_REPORTED
from qfm.report import analysis_plan as ap
from qfm.report import claims
from qfm.report import judging
from qfm.report import verdict as vd

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / ap.PLAN_FILE


def test_the_code_defaults_are_the_plan_file():
    assert replace(ap.load(FILE), history=()) == replace(ap.PLAN, history=())


def test_the_plan_file_records_the_hash_of_its_rules():
    raw = ap.read(FILE)
    last = raw["history"][-1]
    assert last["sha256"] == ap.rules_hash(raw), (
        "analysis_plan.yaml's rules changed: add a history entry with the new sha256 "
        f"{ap.rules_hash(raw)} (and say why in its note)")
    versions = [h["version"] for h in raw["history"]]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_the_recorded_commit_holds_the_recorded_rules():
    raw = ap.read(FILE)
    for h in raw["history"]:
        if h["commit"] == "pending":
            continue
        got = subprocess.run(["git", "show", f"{h['commit']}:{ap.PLAN_FILE}"], cwd=ROOT,
                             capture_output=True, text=True)
        if got.returncode != 0:
            pytest.skip(f"commit {h['commit']} not in this clone (shallow?)")
        assert ap.rules_hash(yaml.safe_load(got.stdout)) == h["sha256"]


def test_the_yardstick_is_the_papers_reported_gain_on_livec():
    paper = PAPER_REPORTED.set_index("dataset").loc["LIVEC", "paper_srcc"]
    deiqt = DEIQT_REPORTED.set_index("dataset").loc["LIVEC", "deiqt_srcc"]
    assert ap.PLAN.yardstick == pytest.approx(paper - deiqt, abs=1e-9)


@pytest.mark.parametrize("lo, hi, n, want", [
    (-0.01, 0.010, 10, "ruled out"), (0.002, 0.012, 10, "ruled out"),
    (-0.03, -0.01, 5, "ruled out"), (0.004, 0.030, 10, "consistent"),
    (0.020, 0.050, 10, "consistent"), (-0.01, 0.030, 10, "undecided"),
    (-0.01, 0.030, 4, None), (float("nan"), float("nan"), 10, None)])
def test_each_interval_reads_against_the_papers_gain(lo, hi, n, want):
    assert ap.PLAN.reading(lo, hi, n) == want


def test_a_bad_plan_names_the_key(tmp_path):
    raw = ap.read(FILE)
    bad = tmp_path / "plan.yaml"
    for change, key in [({"families": "every"}, "families"), ({"colour": 1}, "colour"),
                        ({"alpha": "low"}, "alpha")]:
        bad.write_text(yaml.safe_dump({**raw, **change}))
        with pytest.raises(ap.PlanError, match=f"{bad}.*'{key}'"):
            ap.load(bad)
    bad.write_text(yaml.safe_dump({k: v for k, v in raw.items() if k != "yardstick"}))
    with pytest.raises(ap.PlanError, match="yardstick.srcc"):
        ap.load(bad)
    with pytest.raises(ap.PlanError, match="not found"):
        ap.load(tmp_path / "none.yaml")


def rows(deltas: dict[str, np.ndarray], group: str = "main") -> pd.DataFrame:
    base = 0.8 + 0.01 * np.sin(np.arange(len(next(iter(deltas.values())))))
    out = [{"group": group, "spurious": 0.0, "variant": "baseline", "seed": s, "test_srcc": b}
           for s, b in enumerate(base)]
    for v, d in deltas.items():
        out += [{"group": group, "spurious": 0.0, "variant": v, "seed": s, "test_srcc": b + x}
                for s, (b, x) in enumerate(zip(base, d))]
    return pd.DataFrame(out)


def test_changing_the_plan_moves_verdicts():
    rng = np.random.default_rng(3)
    d = {"gate": 0.015 + 0.008 * rng.standard_normal(10),
         "gate_static": 0.0 + 0.012 * rng.standard_normal(10),
         "gate_params": 0.0 + 0.012 * rng.standard_normal(10)}
    r = rows(d)
    groups = {"main": ["baseline", "gate", "gate_static", "gate_params"]}
    e = claims.verdict_record(r, groups)["main"]["gate_vs_baseline"]["test_srcc"]
    assert e["verdict"] == "better" and e["family"] == "main · test_srcc"
    strict = replace(ap.PLAN, alpha=e["p_holm"] / 2)  # a stricter α
    assert claims.verdict_record(r, groups, plan=strict)["main"]["gate_vs_baseline"][
        "test_srcc"]["verdict"] == "no difference detected"
    # the declared families hold gate vs baseline with fewer members: a smaller Holm p
    dec = claims.verdict_record(r, groups, plan=replace(ap.PLAN, families="declared"))
    assert dec["main"]["gate_vs_baseline"]["test_srcc"]["p_holm"] < e["p_holm"]


def test_the_interval_follows_the_plan_by_seeds_and_a_degenerate_one_is_replaced():
    five = np.array([0.09, 0.12, 0.10, 0.17, 0.11])
    assert vd.judge(five)["method"] == "t"  # below bootstrap_t_from
    assert vd.judge(five, plan=replace(ap.PLAN, interval="bootstrap-t"))["method"].startswith(
        ("bootstrap-t", "t (bootstrap-t degenerate)"))
    outlier = np.array([0.001, 0.002, 0.0015, 0.002, 0.001, 0.0012, 0.0018, 0.0011, 0.0016,
                        0.28])  # one run far off: resamples without it have a tiny sd
    raw = vd.bootstrap_t(outlier)
    assert raw[1] > outlier.max()  # the bootstrap-t interval ends beyond every Δ
    e = vd.judge(outlier)
    assert e["method"] == "t (bootstrap-t degenerate)"
    assert (e["ci_lo"], e["ci_hi"]) == pytest.approx(vd.t_interval(outlier))
    keep = vd.judge(outlier, plan=replace(ap.PLAN, degenerate="keep"))
    assert keep["method"] == "bootstrap-t" and keep["ci_hi"] == pytest.approx(raw[1])


def test_the_wilcoxon_p_is_shown_only_where_it_can_agree():
    d = np.linspace(0.01, 0.03, 7)
    assert np.isnan(vd.judge(d)["p_wilcoxon"])  # 7 < wilcoxon_from
    assert vd.judge(np.linspace(0.01, 0.03, 8))["p_wilcoxon"] < 0.05
    assert ap.PLAN.wilcoxon_from == 8


def test_flagged_runs_are_kept_and_listed_or_dropped_by_the_plan():
    r = rows({"gate": np.full(10, 0.02) + np.linspace(0, 0.01, 10)})
    r["best_epoch"], r["stopped_early"] = 5, False
    r.loc[(r["variant"] == "gate") & (r["seed"] == 3), ["best_epoch", "stopped_early"]] = (
        0, True)
    groups = {"main": ["baseline", "gate"]}
    e = claims.verdict_record(r, groups)["main"]["gate_vs_baseline"]["test_srcc"]
    assert e["flagged"] == [3] and e["n"] == 10
    assert len(judging.drop_flagged(r)) == len(r) - 1
