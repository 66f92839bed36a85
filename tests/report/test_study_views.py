"""The world study's and LIVEC's tables, figures and glued facts as the figures notebook calls
them (qfm.report.study_views, qfm.report.livec_views), on small synthetic inputs shaped like the
pipeline's: each table has the rows the book expects, each figure is written under its name."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from qfm.report import claims, livec_views, study_views, verdicts
from qfm.report.glossary import SHORT, VARIANTS
from qfm.report.ledger import NOT_MEASURED


def body_rows(table) -> int:
    return table.markup.count("<tr>") - 1  # less the header


def test_comparison_tables_read_the_record(inputs, record):
    intro = study_views.intro_table(record, inputs)
    assert body_rows(intro) == len(inputs.fig["intro"])
    assert SHORT["gate"] in intro.markup and "Holm p (family)" in intro.markup
    assert body_rows(study_views.controls_table(record, inputs)) == 0  # no control ran
    test = study_views.delta_table(record, inputs)
    held = study_views.delta_table(record, inputs, "heldout_srcc")
    assert body_rows(test) == body_rows(held) == len(inputs.variants) - 1
    assert "Δ test SRCC vs baseline" in test.markup
    assert "Δ held-out SRCC vs baseline" in held.markup
    assert test.frame["verdict"].tolist() == claims.record_frame(
        record["main"], inputs.variants)["verdict"].tolist()
    sweep = study_views.sweep_table(record, inputs)
    assert body_rows(sweep) == 2 * 2  # two strengths × (gate, gate_qfm)
    assert study_views.sweep_variants(inputs) == ["gate", "gate_qfm"]
    base = study_views.sweep_base(inputs)
    assert base["spurious"].tolist() == [0.0, 1.0] and (base["n"] == 10).all()
    assert base["mean"].iloc[0] > base["mean"].iloc[1]  # the knob hurts the baseline
    ladder = study_views.ladder_table(record, inputs)
    assert ladder.frame["variant"].tolist() == inputs.fig["ladder"]
    ups = study_views.upstream_table(inputs).frame
    assert ups["baseline on"].tolist() == ["ImageNet upstream", "toy upstream"]
    assert ups["seeds"].tolist() == ["5", "5"]  # the toy group's seeds only


def test_every_figure_is_written_under_its_name(inputs, record, tmp_path):
    drawn = [study_views.intro_figure(record, inputs, tmp_path),
             study_views.deltas_figure(record, inputs, tmp_path),
             study_views.deltas_figure(record, inputs, tmp_path, "heldout_srcc"),
             study_views.sweep_figure(record, inputs, tmp_path),
             study_views.tuning_figure(inputs, tmp_path),
             study_views.share_figure(inputs, tmp_path),
             study_views.ladder_figure(record, inputs, tmp_path)]
    assert [p.name for p in drawn] == ["deltas_intro.png", "deltas_main.png",
                                      "deltas_heldout.png", "sweep.png", "tuning.png",
                                      "share.png", "ladder.png"]
    assert all(p.parent == tmp_path and p.stat().st_size > 1000 for p in drawn)


def test_training_tuning_unseen_and_glossary_values(inputs):
    assert study_views.training_values(inputs) == {
        "best_last_share": "10%", "world_best_epoch": (
            "10% of the 60 runs trained have their best epoch at the last one allowed "
            "(mostly 60); 90% stopped early on validation; median best epoch 15.5")}
    t = study_views.tuning_values(inputs)
    assert (t["tune_seeds"], t["tune_trials"]) == (2, 9)
    assert t["tuned_values"].startswith("learning rate = 0.001 (baseline), 0.002 (gate)")
    assert t["tuning_edges"] == "Every chosen value lies inside the range tried."
    assert t["world_qfm_term"] == "validation kept QFM's term on (λ_qfm = 0.3 chosen)"
    trials = study_views.tuning_table(inputs).frame
    assert len(trials) == 9 and trials["chosen"].tolist().count("chosen") == 3
    assert study_views.unseen_values(inputs) == {"unseen_photo": "a photo",
                                                 "unseen_ordered": "2 of 3"}
    assert body_rows(study_views.share_table(inputs)) == 3  # upstream, baseline, full
    assert study_views.variants_table(inputs).frame["variant"].tolist() == [
        v for v in VARIANTS if v in inputs.variants]  # the glossary's, in its order


def test_livec_values_and_tables_when_measured(inputs, record):
    facts = livec_views.facts_values(inputs)
    assert (facts["ft_seeds"], facts["ft_stages"], facts["ft_resize"]) == ("5", "1", "384")
    assert facts["livec_splits"] == "10" and facts["default_val_srcc"] == "0.812"
    assert facts["default_variant"] == "gate" and facts["default_epochs"] == "7"
    assert facts["livec_tuned_values"].startswith("learning rate = 0.001 (baseline)")
    assert "photos at 384 px" in livec_views.ft_stats_table(inputs).markup
    assert body_rows(livec_views.regime_change_table(record, inputs)) == len(inputs.ft_variants)
    answer = livec_views.answer_table(record, inputs).frame.set_index("comparison")
    assert answer.loc["gate vs baseline", "LIVEC: verdict"].startswith("better")
    ledger = livec_views.ledger_table(record, inputs).frame
    assert len(ledger) == 7 and ledger["LIVEC"].str.contains("observed").any()
    assert "ours: gate" in livec_views.published_table(inputs).markup
    assert body_rows(livec_views.tuning_table(inputs)) == 9
    assert livec_views.token_values(inputs) == {"tokens_whole224_g3": "0.710",
                                                "tokens_whole384_g3": "0.740"}
    cov = study_views.coverage_values(inputs)
    assert len(cov) == 12 and cov["coverage_normal"] == "0.950"
    assert cov["coverage5_t_exponential"] == "0.900" and cov["coverage_t_lognormal"] == "0.900"
    assert "not measured yet" in study_views.architecture_table(inputs).markup  # never probed


def test_livec_says_not_measured_yet_where_it_never_ran(unmeasured):
    record = verdicts.verdict_record(unmeasured)
    facts = livec_views.facts_values(unmeasured)
    assert facts["livec_splits"] == f"({NOT_MEASURED})"
    for k in ("livec_tuned_values", "livec_ft_best_epoch", "livec_best_epoch",
              "livec_qfm_term", "default_variant", "default_val_srcc"):
        assert facts[k] == NOT_MEASURED, k
    for table in (livec_views.ft_stats_table(unmeasured), livec_views.tuning_table(unmeasured)):
        assert table.frame["note"].tolist() == [NOT_MEASURED]
    answer = livec_views.answer_table(record, unmeasured).frame
    assert (answer["LIVEC: verdict"] == NOT_MEASURED).all()
    assert livec_views.ledger_table(record, unmeasured).frame.loc[3, "LIVEC"].startswith(
        f"frozen: {NOT_MEASURED}")
    status = livec_views.status_values(unmeasured)
    assert status["livec_status"].startswith("Not measured yet")
    assert status["livec_ft_status"].startswith("Not measured yet")


def test_a_committed_study_made_by_other_code_reads_stale(inputs, tmp_path, monkeypatch):
    # the code fingerprint hashes the project's sources: this repository, whatever home an
    # earlier test's session fixture left in QFM_HOME
    monkeypatch.setenv("QFM_HOME", str(Path(__file__).resolve().parents[2]))
    (tmp_path / "provenance.json").write_text(json.dumps({"code_fingerprint": "other"}))
    stale = dataclasses.replace(inputs, measured=tmp_path, measured_ft=tmp_path)
    status = livec_views.status_values(stale)
    assert status["livec_status"].startswith("Warning — stale")
    assert status["livec_ft_status"].startswith("Warning — stale")


def test_architecture_table_marks_the_sizes_params_uses(inputs):
    probe = {"seeds": [100], "rows": [
        {"key": "model.dim", "variant": "gate", "value": v, "val_srcc": s, "in_params": v == 64}
        for v, s in ((64, 0.80), (128, 0.82))]}
    raw = {**inputs.raw, "study": {**inputs.raw["study"], "model": {"dim": 128}}}
    table = study_views.architecture_table(dataclasses.replace(inputs, architecture=probe,
                                                               raw=raw)).frame
    assert table["params.yaml"].tolist() == ["–", "used"]  # study.model.dim now 128
    assert table["validation"].tolist() == ["–", "best"]



def test_the_tuning_stability_table_and_values(inputs):
    import dataclasses

    from qfm.report import livec_views

    assert "not measured yet" in str(livec_views.stability_table(inputs))
    assert set(livec_views.stability_values(inputs).values()) == {"not measured yet"}
    trial = lambda v, k, x, a, b: {"trial": f"{v} {k}={x:g}", "variant": v, "knob": k,  # noqa
                                   "value": x, "val_srcc_contiguous": a,
                                   "val_srcc_channels_last": b, "difference": b - a}
    st = {"trials": [trial("baseline", "train.lr", 5e-4, 0.8216, 0.8216),
                     trial("baseline", "train.lr", 1e-3, 0.8205, 0.8205),
                     trial("gate_qfm", "qfm.rho", 0.0125, 0.838, 0.824),
                     trial("gate_qfm", "qfm.rho", 0.05, 0.822, 0.826)],
          "largest_change_by_variant": {"baseline": 0.0, "gate_qfm": 0.014},
          "chosen_contiguous": {"baseline": {"train.lr": 5e-4}, "gate_qfm": {"qfm.rho": 0.0125}},
          "chosen_channels_last": {"baseline": {"train.lr": 5e-4}, "gate_qfm": {"qfm.rho": 0.05}},
          "changed_choices": {"gate_qfm": {}}}
    got = dataclasses.replace(inputs, stability=st)
    values = livec_views.stability_values(got)
    assert values["stability_livec_changed"] == "1 of 2 tuned variants (gate_qfm)"
    assert values["stability_baseline"] == "0.0000" and values["stability_gate_qfm"] == "0.014"
    assert values["stability_largest"] == "0.014 (gate_qfm qfm.rho=0.0125)"
    html = str(livec_views.stability_table(got))
    assert "the same" in html and "rho 0.05" in html and "0.0160" in html  # margin 0.838 - 0.822
