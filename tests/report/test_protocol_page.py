"""The Paper protocol page's table, commands and GPU-hour estimate (qfm.report.protocol_page,
qfm.report.protocol_cost)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import yaml

from qfm.cli import build_parser
from qfm.config import load_params
from qfm.paper import OURS_NOT_RUN, PAPER_REPORTED, SOURCE_LINKS
from qfm.report import protocol_cost
from qfm.report import protocol_page as pp

ROOT = Path(__file__).resolve().parents[2]


def summary(srcc, plcc, n=10):
    return {"srcc": {"median": srcc, "mean": srcc - 0.01, "std": 0.01, "n": n},
            "plcc_logistic": {"median": plcc, "mean": plcc - 0.01, "std": 0.01, "n": n}}


def livec_rows():
    rows = [{"variant": v, "seed": s, "test_srcc": base + 0.01 * s, "test_plcc": base + 0.02}
            for v, base in (("full", 0.80), ("baseline", 0.70)) for s in range(3)]
    return pd.DataFrame(rows)


def test_ours_is_not_run_without_results():
    df = pp.comparison_frame(None, pd.DataFrame())
    assert list(df["data set"]) == list(PAPER_REPORTED["dataset"])
    assert set(df["ours, QFM-IQM"]) == {pp.NOT_RUN} and set(df["ours, baseline"]) == {pp.NOT_RUN}
    assert pp.ours_from_protocol({"dataset": None, "status": "not run"}) == {}
    assert OURS_NOT_RUN in pp.ours_note(None, pd.DataFrame())


def test_ours_comes_from_the_protocol_record_and_the_livec_study():
    record = {"dataset": "koniq10k", "status": "run", "profile": "paper",
              "variants": {"baseline": summary(0.81, 0.83), "full": summary(0.91, 0.93)}}
    df = pp.comparison_frame(record, livec_rows()).set_index("data set")
    assert df.loc["KonIQ-10k", "ours, QFM-IQM"] == "0.910 / 0.930"  # medians
    assert df.loc["KonIQ-10k", "ours, baseline"] == "0.810 / 0.830"
    assert df.loc["LIVEC", "ours, QFM-IQM"] == "0.810 / 0.820"  # mean over the splits
    assert df.loc["LIVEC", "ours, baseline"] == "0.710 / 0.720"
    assert df.loc["SPAQ", "ours, QFM-IQM"] == pp.NOT_RUN
    note = pp.ours_note(record, livec_rows())
    assert "Ours on KonIQ-10k: the paper's protocol" in note and "Ours on LIVEC:" in note
    livec_run = dict(record, dataset="livec")  # the paper's protocol wins over the CPU study
    assert pp.comparison_frame(livec_run, livec_rows()).set_index("data set").loc[
        "LIVEC", "ours, QFM-IQM"] == "0.910 / 0.930"


def test_every_published_number_has_a_linked_source():
    table = pp.comparison_table(None, pd.DataFrame())
    df = pp.comparison_frame(None, pd.DataFrame())
    for r in df.itertuples():
        if r._2 != "– / –":  # the paper's numbers
            assert "arXiv 2312.06158" in r.sources
        if r._3 != "– / –":  # DEIQT's
            assert "arXiv 2304.04952" in r.sources, r
    for label, url in SOURCE_LINKS.items():
        assert f'<a href="{url}">{label}</a>' in table.markup


def test_commands_are_complete_and_parse():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    parser = build_parser()
    cmds = pp.commands(raw)
    assert set(cmds) == {"one_run", "torchrun", "protocol", "cross", "tune", "every"}
    for name, text in cmds.items():
        assert "..." not in text and "/path/to" not in text, name
        joined = text.replace("\\\n", " ")
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] in ("for", "done"):
                continue
            if words[0] == "torchrun":
                words = ["qfm", *words[words.index("qfm.cli") + 1:]]
            assert words[0] == "qfm", line
            parser.parse_args(words[1:])
    assert "--set model.weights=" + raw["protocol"]["weights"] in cmds["protocol"]
    assert cmds["protocol"].count("qfm protocol") == len(raw["protocol"]["variants"])


def test_queue_recipe_is_params_yaml_comment_block():
    text = (ROOT / "params.yaml").read_text()
    recipe = pp.queue_recipe(text)
    assert recipe.splitlines()[0].startswith("export QFM_DATA=")
    assert "dvc exp run --queue" in recipe and "dvc queue start" in recipe
    assert all(line in text for line in recipe.splitlines())


def test_read_protocol(tmp_path):
    assert pp.read_protocol(tmp_path) is None
    (tmp_path / "protocol.json").write_text(json.dumps({"status": "not run"}))
    assert pp.read_protocol(tmp_path) == {"status": "not run"}


def test_the_pages_glued_blocks_and_tables(tmp_path):
    params = ROOT / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    blocks = pp.command_values(raw, params)
    assert set(blocks) == {f"command_{k}" for k in pp.commands(raw)} | {"queue_recipe",
                                                                        "paper_flags"}
    assert blocks["command_cross"].frame["command"].iloc[0] == pp.commands(raw)["cross"]
    assert blocks["queue_recipe"].frame["command"].iloc[0] == pp.queue_recipe(params.read_text())
    assert blocks["paper_flags"].markup.startswith('<pre class="qfm-command">--set ')
    assert pp.page_table(tmp_path, livec_rows()).markup == pp.comparison_table(
        None, livec_rows()).markup  # no protocol record: "not run"
    profile = pp.profile_shown(load_params(params)).frame
    assert list(profile.columns) == ["key", "this pipeline", "paper profile"]


def test_gpu_hours_table_and_values():
    table = protocol_cost.gpu_table().frame
    assert list(table.columns) == ["data set", "images", "GPU hours"]
    hours = protocol_cost.protocol_gpu_hours()["gpu_hours"]
    assert table["GPU hours"].tolist() == [f"{h:.1f}" for h in hours]
    assert protocol_cost.gpu_values() == {
        "gpu_hours_total": f"{hours.sum():.0f}",
        "gpu_images_per_second": f"{protocol_cost.GPU_ASSUMPTIONS['images_per_second']:.0f}"}
