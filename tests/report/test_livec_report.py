"""The LIVEC report and the intro's two-data-set answer: verdicts judged by the world's
functions, tables that say "not measured yet" when nothing was measured, ours beside the
published numbers, the claims ledger; and the JSON-only modules import no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from qfm.paper import PUBLISHED_LIVEC
from qfm.report import claims, ledger, livec

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ["baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full"]


def measured_rows(deltas: dict[str, float], n: int = 10) -> list[dict]:
    """Rows as ``measured/livec/livec.json`` holds them (no group, no held-out part)."""
    rng = np.random.default_rng(1)
    base = 0.78 + 0.03 * rng.standard_normal(n)
    out = []
    for v, d in {"baseline": 0.0, **deltas}.items():
        noise = 0.002 * rng.standard_normal(n)
        out += [{"variant": v, "seed": s, "test_srcc": base[s] + d + noise[s],
                 "test_plcc": base[s] + d + 0.02, "val_srcc": base[s], "share": 0.3 - d,
                 "share_upstream": 0.4, "best_epoch": 3 + s % 4, "best_is_last": s == 0,
                 "stopped_early": s != 0, "epochs": 8, "max_epochs": 30}
                for s in range(n)]
    return out


DELTAS = {"gate": 0.05, "gate_static": 0.0, "gate_params": 0.001, "gate_qfm": 0.04,
          "full": 0.045}


def test_livec_record_is_the_world_record_of_group_livec():
    rows = livec.rows_frame(measured_rows(DELTAS))
    rec = livec.record(rows, VARIANTS, ("baseline", "gate", "gate_qfm", "full"))
    same = claims.verdict_record(rows, {"livec": VARIANTS}, ("baseline", "gate", "gate_qfm",
                                                             "full"))["livec"]
    assert rec == same
    assert rec["gate_vs_baseline"]["test_srcc"]["verdict"] == "better"
    assert rec["gate_qfm_vs_gate"]["test_srcc"]["verdict"] == "worse"
    assert rec["gate_qfm_vs_gate"]["test_srcc"]["question"] == "intro"
    assert rec["gate_qfm_vs_gate"]["test_srcc"]["family"] == "livec · test_srcc"
    assert "heldout_srcc" not in rec["gate_vs_baseline"]  # no held-out part on LIVEC
    assert livec.record(livec.rows_frame([]), VARIANTS) == {}


def test_two_column_answer_reads_both_records_and_says_not_measured():
    w = livec.record(livec.rows_frame(measured_rows({**DELTAS, "gate_qfm": 0.06})), VARIANTS)
    c = livec.record(livec.rows_frame(measured_rows(DELTAS)), VARIANTS)
    df = ledger.attribution_frame(w, c).set_index("comparison")
    assert df.loc["gate_qfm vs gate", "world: verdict"].startswith("better")
    assert df.loc["gate_qfm vs gate", "LIVEC: verdict"].startswith("worse")
    e = c["gate_vs_baseline"]["test_srcc"]
    assert df.loc["gate vs baseline", "LIVEC: Δ test SRCC [95 % bootstrap-t CI]"] == \
        f"{e['delta']:+.3f} [{e['ci_lo']:+.3f}, {e['ci_hi']:+.3f}]"
    assert {"full vs baseline", "full vs gate_qfm", "gate vs gate_params"} <= set(df.index)
    empty = ledger.attribution_frame(w, {})
    assert (empty["LIVEC: verdict"] == ledger.NOT_MEASURED).all()
    assert "not measured yet" not in ledger.attribution_table(w, {}).markup.split("<tbody>")[0]


def test_ledger_has_every_claim_in_every_regime_and_marks_untested_ones():
    rows = livec.rows_frame(measured_rows(DELTAS))
    c = livec.record(rows, VARIANTS)
    df = ledger.ledger_frame({"main": c, "livec": c}, "main", rows, rows)
    assert len(df) == 7 and list(df.columns) == ["claim of the paper", "test here", "world",
                                                 "LIVEC"]
    assert df["world"].str.contains("not tested").sum() == 1  # the 8 data sets
    assert df.loc[3, "LIVEC"].startswith("frozen: worse, Δ")  # gate_qfm vs gate
    assert "paper's gain ruled out" in df.loc[3, "LIVEC"]  # its reading against the yardstick
    assert "last stage: not measured yet" in df.loc[3, "LIVEC"]
    assert "whole upstream: not measured yet" in df.loc[3, "LIVEC"]
    assert "whole upstream" not in df.loc[3, "world"]  # the world has no such regime
    assert "observed" in df.loc[0, "LIVEC"]
    assert "+0.016" in df.loc[5, "claim of the paper"]  # full vs baseline: the paper's claim
    none = ledger.ledger_frame({"main": c}, "main", rows, None)
    assert none.loc[3, "LIVEC"].startswith(f"frozen: {ledger.NOT_MEASURED}")
    trained = ledger.ledger_frame({"main": c, "finetune": c, "livec_whole": c}, "main", rows)
    assert "last stage: worse, Δ" in trained.loc[3, "world"]
    assert "whole upstream: worse, Δ" in trained.loc[3, "LIVEC"]


def test_regime_record_pairs_trained_with_frozen_by_seed():
    rows = livec.rows_frame(measured_rows(DELTAS))
    lifted = rows.assign(test_srcc=rows["test_srcc"] + 0.05 + 0.001 * rows["seed"])
    rec = ledger.regime_record(rows, lifted[lifted["seed"] < 5], ["baseline", "gate"])
    e = rec["gate_trained_vs_frozen"]["test_srcc"]
    assert e["n"] == 5 and e["verdict"] == "better" and np.isclose(e["delta"], 0.052)
    assert e["family"] == "regime" and e["reference"] == "gate (frozen)"
    assert ledger.regime_record(rows, rows.iloc[:0], ["gate"]) == {}
    frame = ledger.regime_frame(rec, {}, ["baseline", "gate"])
    assert frame.loc[1, "LIVEC: trained − frozen"] == ledger.NOT_MEASURED


def test_stats_are_mean_sd_and_median_over_splits_and_published_rows_follow_ours():
    rows = livec.rows_frame(measured_rows(DELTAS))
    s = livec.stats_frame(rows, VARIANTS).set_index("variant")
    g = rows[rows["variant"] == "gate"]
    assert np.isclose(s.loc["gate", "test_srcc_median"], g["test_srcc"].median())
    assert np.isclose(s.loc["gate", "test_plcc_sd"], g["test_plcc"].std(ddof=1))
    pub = livec.published_frame(rows, PUBLISHED_LIVEC)
    assert list(pub["scorer"][:4]) == ["ours: baseline", "ours: gate", "ours: gate_qfm",
                                      "ours: full"]
    assert len(pub) == 4 + len(PUBLISHED_LIVEC)
    qfm_row = PUBLISHED_LIVEC.set_index("scorer").loc["QFM-IQM (paper)"]
    assert (qfm_row["srcc"], qfm_row["plcc"]) == (0.891, 0.913)
    assert "not measured yet" in livec.published_table(livec.rows_frame([]),
                                                       PUBLISHED_LIVEC).markup
    assert "not measured yet" in livec.stats_table(livec.rows_frame([]), VARIANTS).markup


def test_best_epoch_facts_and_default_head_facts():
    rows = livec.rows_frame(measured_rows(DELTAS))
    f = livec.best_epoch_facts(rows)
    assert f["best_last"] == 0.1 and f["stopped_early"] == 0.9 and f["max_epochs"] == 30
    assert "10%" in livec.best_epoch_text(f)
    assert livec.best_epoch_text({}) == "not measured yet"
    d = livec.default_facts({"meta": {"variant": "gate", "val_srcc": 0.8123, "images": 930,
                                      "epochs": 7}})
    assert d == {"variant": "gate", "val_srcc": "0.812", "images": 930, "epochs": 7}
    assert livec.default_facts(None) == {}


def test_token_facts_come_from_the_committed_json():
    tokens = json.loads((ROOT / "benchmarks/results/clive_tokens.json").read_text())
    glue = livec.token_glue(tokens)
    best = max(tokens["recipes"], key=lambda r: r["val_srcc"])
    assert best["recipe"] == tokens["chosen"]  # validation chose it
    assert set(glue) == {r["recipe"] for r in tokens["recipes"]}
    assert livec.tokens_frame(tokens)["chosen"].tolist().count("chosen") == 1


def test_status_text_warns_when_stale():
    assert livec.status_text({"present": True, "stale": True, "why": "x"}).startswith("Warning")
    assert livec.status_text({"present": False, "why": "not measured yet (run it)"}) == \
        "Not measured yet (run it)"


def test_json_only_report_modules_import_no_torch():
    code = ("import sys, qfm.report.livec, qfm.report.ledger, qfm.paper; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
