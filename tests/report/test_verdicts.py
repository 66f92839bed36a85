"""What the figures notebook reads (qfm.report.study_inputs) and the verdict record it writes
(qfm.report.verdicts, ``results/verdicts.json``): every key the book states, the same entries the
judging functions give, written atomically as valid JSON, LIVEC only once measured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qfm.report import claims, ledger, study_inputs, verdicts
from qfm.report import livec as livec_report
from qfm.study import finetune

MAIN = ["baseline", "gate", "gate_static", "gate_params", "gate_qfm", "full"]  # conftest.PARAMS
SWEEP = ["baseline", "gate", "gate_qfm"]
FT = ["baseline", "gate", "gate_qfm", "full"]


def test_inputs_hold_the_groups_the_params_name(inputs, unmeasured):
    assert inputs.groups == {"main": MAIN, "sweep_zero": SWEEP, "spurious_full": SWEEP}
    assert set(inputs.rows_all["group"]) == set(inputs.groups)
    assert (inputs.rows["group"] == "main").all() and len(inputs.rows) == 10 * len(MAIN)
    assert inputs.variants == MAIN and inputs.ft_variants == FT == inputs.livec_variants
    assert study_inputs.FT_GROUP == finetune.GROUP  # the same group the regime runs
    assert inputs.toy["seed"].nunique() == 5 and len(inputs.world_ft_rows) == 5 * len(FT)
    assert set(inputs.livec_rows["group"]) == {"livec"} and inputs.livec_head["meta"]
    assert inputs.architecture is None  # the probe never ran
    assert inputs.coverage5["populations"]["normal"]["t_coverage"] == pytest.approx(0.91)
    assert unmeasured.livec_rows.empty and unmeasured.livec_ft_rows.empty
    assert unmeasured.livec_tune is None and unmeasured.livec_head is None


def test_overview_values_count_the_study(inputs):
    v = study_inputs.overview_values(inputs)
    assert v == {"n_seeds": 10, "n_runs": 10 * (len(MAIN) + 2 * len(SWEEP)), "n_groups": 3,
                 "epochs": 60, "main_train_images": "2,705", "sweep_train_images": "2,705"}
    assert all(isinstance(v[k], int) for k in ("n_seeds", "n_runs", "n_groups", "epochs"))


def test_input_files_are_the_study_and_livec_json(inputs):
    files = study_inputs.input_files(inputs)
    names = [f.name for f in files]
    assert names[:3] == ["table.csv", "features.safetensors", "head.safetensors"]
    assert {"main.json", "tune.json", "unseen_photo.json", "livec.json",
            "default_head.json"} <= set(names)


def test_the_record_holds_every_stated_comparison(inputs, record):
    assert list(record) == ["main", "sweep_zero", "spurious_full", claims.INTERACTION,
                            "finetune", "livec_finetune", "livec_whole", "regime", "toy",
                            "livec"]
    fig = inputs.fig
    world = claims.verdict_record(inputs.rows_all, inputs.groups, fig["ladder"], fig["sweep"],
                                  fig["sweep_groups"])
    assert all(record[k] == world[k] for k in world)  # the world's, unchanged
    assert record["main"]["gate_vs_baseline"]["test_srcc"]["verdict"] == "better"
    assert record["finetune"] == livec_report.record(inputs.world_ft_rows, FT, fig["ladder"], group="finetune")
    assert record["finetune"]["gate_vs_baseline"]["test_srcc"]["method"] == "t"  # 5 seeds
    alone = ledger.regime_record(inputs.rows, inputs.world_ft_rows, FT)
    assert {k: {m: e["delta"] for m, e in c.items()} for k, c in record["regime"]["world"].items()
            } == {k: {m: e["delta"] for m, e in c.items()} for k, c in alone.items()}
    assert all(c["test_srcc"]["reading"] is None for c in record["regime"]["world"].values())
    assert set(record["regime"]["livec"]) == {f"{v}_trained_vs_frozen" for v in FT}
    toy = record["toy"][verdicts.TOY_KEY]["test_srcc"]
    assert record["toy"]["spurious"] == 0.0 and toy["question"] == "toy" and toy["n"] == 5
    assert toy["reference"] == "ImageNet upstream" and toy["variant"] == "toy upstream"
    assert record["livec"]["gate_qfm_vs_gate"]["test_srcc"]["family"] == "livec · test_srcc"


def test_never_measured_livec_has_no_livec_key_and_empty_regime(unmeasured):
    rec = verdicts.verdict_record(unmeasured)
    assert "livec" not in rec and rec["livec_finetune"] == {} and rec["regime"]["livec"] == {}
    assert rec["finetune"]  # the world's regime is committed: always there


def test_write_verdicts_writes_the_record_atomically_as_valid_json(inputs, record, tmp_path):
    path = tmp_path / "results" / "verdicts.json"
    out = verdicts.write_verdicts(inputs, path)
    assert {k: v for k, v in out.items() if k not in ("plan", "sensitivity")} == record
    assert out["plan"]["sha256"] == inputs.plan.history[-1]["sha256"]
    assert set(out["sensitivity"]) == {name for name, _ in inputs.plan.sensitivity}
    text = path.read_text()
    assert json.loads(text) == json.loads(json.dumps(out))
    assert "NaN" not in text  # null, as DVC metrics need
    assert list(json.loads(text)) == sorted(out)  # sorted keys: a stable diff
    assert [p.name for p in path.parent.iterdir()] == ["verdicts.json"]  # no temporary file
    assert verdicts.write_verdicts(inputs, path) == out and path.read_text() == text  # seeded


def test_the_json_only_modules_import_no_torch():
    code = ("import sys, qfm.report.study_inputs, qfm.report.verdicts, qfm.report.answers, "
            "qfm.report.study_views, qfm.report.pipeline_stages; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
