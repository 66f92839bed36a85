"""The Paper protocol page: the published numbers beside ours, each with a linked source, and
the complete commands a reader pastes (the paper profile in the ``--set`` form they take).

Ours come from what the pipeline wrote, never typed: the ``protocol`` stage's record
(``results/protocol/protocol.json``: median over the splits per variant, as the paper reports)
and the committed CLIVE study (``measured/livec/``, read by :mod:`qfm.report.livec`: mean over
its splits). A data set with neither says "not run". JSON only (no torch).
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from qfm.config import RunConfig
from qfm.data.facts import FACTS
from qfm.files import read_json
from qfm.paper import (
    DEIQT_ABSTRACT,
    DEIQT_LISTING,
    OURS_NOT_RUN,
    PAPER_CITED,
    PAPER_PROFILE,
    SOURCE_LINKS,
    profile_table,
    reported_table,
    set_flags,
)
from qfm.report import livec as livec_report
from qfm.report.glossary import dataset_name
from qfm.report.tables import Table, fmt, html_table
from qfm.runs.protocol import variant_overrides

NOT_RUN = "not run"
OURS = ("full", "baseline")  # the variants the table shows: QFM-IQM and the baseline
PROTOCOL_HOW = "the paper's protocol (GPU, {profile} profile), median of {n} splits"
LIVEC_HOW = ("a head trained on a CPU on frozen ImageNet EfficientNet-Lite0 tokens, 930 of "
             "1,162 images, mean of {n} random splits (the LIVEC page)")
DEIQT_SHORT = {DEIQT_ABSTRACT: "arXiv 2304.04952, abstract",  # DEIQT_REPORTED's sources, short
               DEIQT_LISTING: "arXiv 2304.04952 as listed on wizwand.com (secondary)"}
CONT = " \\\n    "  # a shell line continuation inside a command


def pair(srcc, plcc) -> str:
    """``"0.891 / 0.913"`` ("–" for a missing part)."""
    return f"{fmt(srcc)} / {fmt(plcc)}"


def ours_from_protocol(record: dict | None) -> dict[str, dict]:
    """``{data set's display name: {variant: "SRCC / PLCC", "how": ...}}`` of a protocol stage
    record that ran (``{}`` for a "not run" record or none). PLCC after the logistic fit."""
    if not record or record.get("status") != "run":
        return {}
    cells, n = {}, 0
    for v in OURS:
        s = record.get("variants", {}).get(v)
        if s:
            cells[v] = pair(s["srcc"]["median"], s["plcc_logistic"]["median"])
            n = max(n, int(s["srcc"]["n"]))
    how = PROTOCOL_HOW.format(profile=record.get("profile", "paper"), n=n)
    return {dataset_name(record["dataset"]): {**cells, "how": how}}


def ours_from_livec(rows: pd.DataFrame) -> dict[str, dict]:
    """The CLIVE study's variants of :data:`OURS` as ``{"LIVEC": {variant: "SRCC / PLCC",
    "how": ...}}``: mean test SRCC and PLCC over its splits (:func:`livec.stats_frame`)."""
    if rows is None or rows.empty:
        return {}
    s = livec_report.stats_frame(rows, OURS)
    if s.empty:
        return {}
    cells = {r.variant: pair(r.test_srcc_mean, r.test_plcc_mean) for r in s.itertuples()}
    return {dataset_name("livec"): {**cells, "how": LIVEC_HOW.format(n=int(s["splits"].max()))}}


def read_protocol(protocol_dir: str | Path) -> dict | None:
    """The protocol stage's record (``protocol.json``), or None where the stage never ran."""
    path = Path(protocol_dir) / "protocol.json"
    return read_json(path) if path.is_file() else None


def ours_cells(protocol: dict | None, livec_rows: pd.DataFrame | None) -> dict[str, dict]:
    """Ours per data set's display name (:func:`ours_from_livec`, then
    :func:`ours_from_protocol`: a protocol run of a data set takes precedence over the LIVEC
    study, as it is the paper's protocol)."""
    return {**ours_from_livec(livec_rows), **ours_from_protocol(protocol)}


def comparison_frame(protocol: dict | None, livec_rows: pd.DataFrame | None) -> pd.DataFrame:
    """Per data set: the paper's and DEIQT's SRCC / PLCC, ours (QFM-IQM and the baseline;
    "not run" where the pipeline has neither) and the sources of the published numbers."""
    ours = ours_cells(protocol, livec_rows)
    out = []
    for r in reported_table().itertuples():
        mine = ours.get(r.dataset, {})
        deiqt = DEIQT_SHORT.get(r.deiqt_source, r.deiqt_source or "")
        out.append({"data set": r.dataset,
                    "paper SRCC / PLCC": pair(r.paper_srcc, r.paper_plcc),
                    "DEIQT SRCC / PLCC": pair(r.deiqt_srcc, r.deiqt_plcc),
                    "ours, QFM-IQM": mine.get("full", "–" if mine else NOT_RUN),
                    "ours, baseline": mine.get("baseline", "–" if mine else NOT_RUN),
                    "sources": f"paper: {PAPER_CITED}" + (f"; DEIQT: {deiqt}" if deiqt else "")})
    return pd.DataFrame(out)


def ours_note(protocol: dict | None, livec_rows: pd.DataFrame | None) -> str:
    """How each of our numbers was measured, one clause per data set, and what "not run"
    means."""
    ours = ours_cells(protocol, livec_rows)
    how = "".join(f"Ours on {name}: {cells['how']}. " for name, cells in ours.items())
    return f"{how}Every other data set: {OURS_NOT_RUN}."


def with_links(table: Table, links: dict[str, str] = SOURCE_LINKS) -> Table:
    """``table`` with every source label of ``links`` turned into a link to its page."""
    markup = table.markup
    for label, url in links.items():
        markup = markup.replace(html.escape(label),
                                f'<a href="{html.escape(url)}">{html.escape(label)}</a>')
    return Table(markup, table.frame)


def comparison_table(protocol: dict | None, livec_rows: pd.DataFrame | None) -> Table:
    """:func:`comparison_frame` as the book's table, each source linked, :func:`ours_note`
    under it."""
    df = comparison_frame(protocol, livec_rows)
    return with_links(html_table(df, numeric=[c for c in df.columns if c != "sources"][1:],
                                 notes=(
        "SRCC / PLCC; – : not reported, or not verified here; PLCC of ours after the "
        "4-parameter logistic fit. " + ours_note(protocol, livec_rows))))


def variant_flags(variants: dict, variant: str, weights: str) -> list[str]:
    """The ``--set`` words of one variant under the paper profile (the protocol stage's own
    overrides: :func:`qfm.runs.protocol.variant_overrides`)."""
    return set_flags(variant_overrides(variants, variant, "paper", weights))


def wrap(head: str, flags: list[str], width: int = 64) -> str:
    """``head`` and its flags, at most ``width`` characters a line where a flag allows,
    continued with backslashes."""
    lines: list[str] = []
    for f in flags:
        if lines and len(lines[-1]) + 1 + len(f) <= width:
            lines[-1] += " " + f
        else:
            lines.append(f)
    return CONT.join([head, *lines] if head else lines)


def commands(raw: dict, dataset: str = "koniq10k") -> dict[str, str]:
    """The page's commands, complete (the paper profile spelled out as ``--set`` flags).

    Args:
        raw: params.yaml as read (``protocol`` and ``variants`` sections; ``study.tune``'s ρ
            grid for the tuning loop).
        dataset: the example data set.
    Returns:
        ``{"one_run", "torchrun", "protocol", "cross", "tune", "every"}`` → shell text.
    """
    pr, variants = raw["protocol"], raw["variants"]
    weights = str(pr["weights"])
    splits = str(pr["splits"])
    full = variant_flags(variants, "full", weights)
    one = ["--set train.dataset=" + dataset, "--set train.split=0", *full]
    out = {"one_run": wrap(f"qfm train --run-dir runs/{dataset}/full/split_0", one),
           "torchrun": wrap("torchrun --nproc_per_node=4 -m qfm.cli train --run-dir "
                            f"runs/{dataset}/full/split_0", one)}
    out["protocol"] = "\n".join(
        wrap(f"qfm protocol --dataset {dataset} --splits {splits} --runs runs/protocol/{v}",
             variant_flags(variants, v, weights)) for v in pr["variants"])
    out["cross"] = (f"qfm cross --checkpoint runs/protocol/full/{dataset}/split_0/"
                    "model.safetensors --dataset livec")
    grid = " ".join(f"{g:g}" for g in raw["study"]["tune"]["rho"]["grid"])
    tune = variant_flags(variants, "gate_qfm", weights) + ["--set qfm.rho=$rho"]
    out["tune"] = (f"qfm data split --dataset {dataset} --root data/{dataset} --n 12"
                   "   # splits 10 and 11 for tuning; 0-9 unchanged\n"
                   f"for rho in {grid}; do\n  "
                   + wrap(f"qfm protocol --dataset {dataset} --splits 10-11 "
                          "--runs runs/tune/rho_$rho", tune).replace("\n", "\n  ")
                   + "\ndone")

    body = "\n".join("  " + wrap(f"qfm protocol --dataset $d --splits {splits} --runs "
                                 f"runs/protocol/{v}", variant_flags(variants, v, weights)
                                 ).replace("\n", "\n  ") for v in pr["variants"])
    out["every"] = f"for d in {' '.join(FACTS)}; do\n{body}\ndone"
    return out


def queue_recipe(params_text: str) -> str:
    """The DVC queue recipe of params.yaml's comment block under ``protocol:`` (its one
    definition), uncommented: the lines after ``# Paper profile`` that start ``#   ``; a
    params file without that block (e.g. one written back by a YAML dumper, which drops
    comments) gives a one-line note saying so."""
    if "# Paper profile" not in params_text:
        return "# (this params.yaml has no queue recipe: see the repository's params.yaml)"
    block = params_text[params_text.index("# Paper profile"):]
    lines = []
    for line in block.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   "):
            lines.append(line[4:])
    return "\n".join(lines)


def pre(text: str) -> Table:
    """A command block for glue (``<pre>``), its text as the plain form."""
    return Table(f'<pre class="qfm-command">{html.escape(text)}</pre>',
                 pd.DataFrame({"command": [text]}))


def page_table(protocol_dir: str | Path, livec_rows: pd.DataFrame | None) -> Table:
    """:func:`comparison_table` of the protocol stage's record under ``protocol_dir`` (none:
    "not run") and the LIVEC study's rows."""
    return comparison_table(read_protocol(protocol_dir), livec_rows)


def command_values(raw: dict, params_file: str | Path) -> dict[str, Table]:
    """The page's command blocks for glue: ``command_<name>`` (:func:`commands`),
    ``queue_recipe`` (``params_file``'s comment block) and ``paper_flags`` (the paper profile
    as ``--set`` flags)."""
    out = {f"command_{name}": pre(text) for name, text in commands(raw).items()}
    out["queue_recipe"] = pre(queue_recipe(Path(params_file).read_text()))
    out["paper_flags"] = pre(wrap("", set_flags(PAPER_PROFILE)))
    return out


def profile_shown(cfg: RunConfig) -> Table:
    """This pipeline's settings beside the paper profile's (:func:`qfm.paper.profile_table`)."""
    return html_table(profile_table(cfg).reset_index())
