"""The Jupyter Book, built by the smoke pipeline (``tests/test_pipeline.py``) from smoke outputs.

Every image a page references exists, no page loads anything from the network (the book must
read offline: no CDN scripts, styles, fonts, images or frames; MathJax is the bundled copy in
``book/_static/mathjax``), no page shows a placeholder (``...`` in a shell command, ``/path/to``,
"withheld" in a paragraph), every page of the table of contents is
built, the numbers in the prose are pasted (glue), and no page shows a notebook artefact: a
warning or stderr box, a progress bar, an empty output box, a NaN/None cell, a machine path,
or "not measured yet" as a raw code block. The fast tests check the figures stage's
dependencies and the artefact scanner itself.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from test_book_sources import other_names, toc_files
from test_pipeline import ROOT, dvc_yaml, smoke_pipeline, study_pages

sys.path.insert(0, str(ROOT / "scripts"))
from screenshot_book import check_pages  # noqa: E402

PRE = re.compile(r"<pre\b.*?</pre>", re.S | re.I)
TAGS = re.compile(r"<[^>]+>")
ARTEFACTS = {
    "stderr or warning box": re.compile(r'class="(?:[^"]*\s)?(?:stderr|warning)(?:\s[^"]*)?"',
                                        re.I),
    "warning text": re.compile(r"\b\w*Warning:|TqdmWarning", re.I),
    "progress bar": re.compile(r"\d+%\|[█▏▎▍▌▋▊▉ ]*\|"),
    "empty output box": re.compile(r'<div class="cell_output[^"]*">\s*</div>'),
    "machine path": re.compile(r"(?<![\w.])/(?:work|tmp|root|home)/"),
}
MISSING_CELL = re.compile(r"<t[dh]\b[^>]*>\s*(?:nan|NaN|None|&lt;NA&gt;|NaT)?\s*</t[dh]>"
                          r'|class="pasted-text">\s*(?:nan|NaN|None)?\s*<')
MISSING_WORD = re.compile(r"\b(?:nan|NaN)\b")  # never English; "None" is, so cells only
NOT_MEASURED_BLOCK = re.compile(r"not measured", re.I)
# a resource the browser fetches by itself (a link <a href> is the reader's choice: allowed)
REMOTE_TAG = re.compile(r"<(?!a\b)(\w+)\b[^>]*?\b(?:src|href|srcset|data|poster)\s*=\s*"
                        r"[\"']?(?:https?:)?//[^\s\"'>]*", re.I)
REMOTE_CSS = re.compile(r"(?:url\(\s*[\"']?|@import\s+(?:url\(\s*)?[\"']?)(?:https?:)?//", re.I)
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)
SHELL_BLOCK = re.compile(r'<div class="highlight-(?:bash|sh|shell|console|zsh)\b.*?</pre>',
                         re.S | re.I)
PARAGRAPH = re.compile(r"<p\b[^>]*>.*?</p>", re.S | re.I)
MATHJAX = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]*mathjax[^\"]*)\"", re.I)


def page_artefacts(text: str) -> list[str]:
    """What a rendered page shows that a reader should never see (empty = clean).

    Code (``<pre>``) may hold ``None`` — it is Python — but never "not measured": a
    placeholder must read as prose, not as a literal block.
    """
    found = [f"{name}: {m.group(0)[:60]!r}" for name, rx in ARTEFACTS.items()
             for m in [rx.search(text)] if m]
    blocks = PRE.findall(text)
    found += [f"raw block: {TAGS.sub('', b)[:60]!r}" for b in blocks
              if NOT_MEASURED_BLOCK.search(b)]
    body = re.sub(r"<(script|style)\b.*?</\1>", "", PRE.sub("", text), flags=re.S | re.I)
    found += [f"missing value shown: {m.group(0)[:60]!r}" for m in [MISSING_CELL.search(body)]
              if m]
    visible = html_lib.unescape(TAGS.sub(" ", body))
    found += [f"missing value shown: {visible[max(0, m.start() - 40):m.end() + 20]!r}"
              for m in [MISSING_WORD.search(visible)] if m]
    return found


def remote_loads(text: str) -> list[str]:
    """What a page makes the browser fetch from the network by itself (empty = offline).

    Scripts, style sheets, fonts, images, frames and media given by an http(s) or
    protocol-relative URL, CSS ``url()``/``@import`` of one, and inline scripts that name one
    (a loader that fetches it later, e.g. sphinx-thebe's ``THEBE_JS_URL``). Links ``<a href>``
    are not loads.
    """
    found = [f"<{m.group(1)}>: {m.group(0)[:100]!r}" for m in REMOTE_TAG.finditer(text)]
    found += [f"css: {m.group(0)!r}" for m in REMOTE_CSS.finditer(text)]
    found += [f"inline script: {m.group(1).strip()[:100]!r}" for m in INLINE_SCRIPT.finditer(text)
              if re.search(r"https?://", m.group(1))]
    return found


def placeholders(text: str) -> list[str]:
    """Placeholders a reader cannot run or trust: ``...``/``…`` inside a shell command block,
    ``/path/to`` anywhere, "withheld" in a prose paragraph (empty = none)."""
    found = [f"shell block: {TAGS.sub('', b)[:80]!r}" for b in SHELL_BLOCK.findall(text)
             if re.search(r"\.\.\.|…", html_lib.unescape(TAGS.sub("", b)))]
    found += [f"/path/to: {text[max(0, m.start() - 40):m.end() + 30]!r}"
              for m in re.finditer(r"/path/to\b", text)]
    found += [f"withheld: {html_lib.unescape(TAGS.sub('', p))[:100]!r}"
              for p in PARAGRAPH.findall(text) if re.search(r"\bwithheld\b", p, re.I)]
    return found


# --- fast ------------------------------------------------------------------------------------

def test_the_artefact_scanner_catches_what_a_reader_should_not_see():
    bad = ['<div class="output stderr"><pre>oops</pre></div>',
           "<p>TqdmWarning: IProgress not found</p>",
           "<p>features: 40%|████      | 4/10</p>",
           '<div class="cell_output docutils container">\n</div>',
           "<td>nan</td>", '<td class="num">None</td>', "<td></td>",
           '<span class="pasted-text">nan</span>', "<p>Δ nan</p>",
           "<p>written to /work/main/results</p>", "<pre>not measured yet</pre>"]
    for text in bad:
        assert page_artefacts(text), text
    good = ["<p>score 0.912</p>", "<pre>if x is None:\n    pass</pre>",
            "<p><em>not measured yet</em></p>", "<p>results/study/main.json</p>",
            "<td>–</td>", "<p>nanoGPT and NaNs-free code</p>", "<p>None of them ran</p>",
            '<div class="cell tag_remove-stderr docutils container">x</div>']
    for text in good:
        assert not page_artefacts(text), (text, page_artefacts(text))


def test_the_offline_and_placeholder_scanners():
    remote = ['<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js"></script>',
              '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">',
              "<img src='http://example.org/x.png'>", '<iframe src="https://x.org/"></iframe>',
              "<style>@font-face { src: url(https://x.org/f.woff2) }</style>",
              '<script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"</script>']
    for text in remote:
        assert remote_loads(text), text
    local = ['<a href="https://proceedings.mlr.press/v235/li24w.html">paper</a>',
             '<script defer="defer" src="_static/mathjax/tex-svg.js?v=1"></script>',
             '<link rel="stylesheet" href="_static/qfm.css" />', '<script>let x = 1;</script>',
             '<img src="_images/a.png">']
    for text in local:
        assert not remote_loads(text), (text, remote_loads(text))
    bad = ['<div class="highlight-bash notranslate"><pre>qfm train --set ...</pre></div>',
           '<div class="highlight-shell"><pre><span>dvc exp run</span> <span>…</span></pre>',
           "<td>/path/to/deit3_small.safetensors</td>",
           "<p>the loader runs at <span>withheld (loaded machine)</span> images/s</p>"]
    for text in bad:
        assert placeholders(text), text
    good = ['<div class="highlight-python"><pre>build_cache(..., fmt="jpg")</pre></div>',
            "<p>Items are glued ... in prose.</p>", "<p>results/study/main.json</p>",
            '<div class="highlight-bash"><pre>qfm train --set model.img_size=224</pre></div>']
    for text in good:
        assert not placeholders(text), (text, placeholders(text))


def test_method_profile_table_matches_params_and_the_paper_profile():
    """The Method page's readable profile table is typed; it must say what the code holds:
    ``this pipeline`` = ``params.yaml`` as written, ``paper profile`` = ``PAPER_PROFILE``."""
    from qfm.config import flatten, read_params
    from qfm.paper import PAPER_PROFILE

    def literal(v) -> str:
        return json.dumps(v) if isinstance(v, (bool, dict)) else str(v)

    page = (ROOT / "book" / "method.md").read_text()
    section = page.split("## The paper profile beside this pipeline", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 4:
            rows[cells[0].strip("`")] = cells[1:3]
    assert set(rows) == set(PAPER_PROFILE)
    mine = flatten(read_params(ROOT / "params.yaml"))
    for key, (here, paper) in rows.items():
        assert here.split("`")[1] == literal(mine[key]), (key, here, mine[key])
        if key != "model.weights":  # the profile's is a file the reader supplies
            assert paper == f"`{literal(PAPER_PROFILE[key])}`", (key, paper)


def test_figures_stage_reads_the_default_head():
    """Beyond its imports (tests/test_pipeline_deps.py): the head the book re-scores."""
    deps = {d if isinstance(d, str) else next(iter(d))
            for d in dvc_yaml()["stages"]["figures"]["deps"]}
    assert {"models/heads/main.safetensors", "data/features/${model.weights}.safetensors",
            "data/world"} <= deps


def test_toc_lists_every_page_and_no_removed_notebook():
    files = toc_files()
    for f in files:
        path = ROOT / "book" / f
        assert path.with_suffix(".md").is_file() or f.startswith(("executed/", "measured/")), f
    executed = {f.split("/", 1)[1] for f in files if f.startswith("executed/")}
    groups = yaml.safe_load((ROOT / "params.yaml").read_text())["study"]["groups"]
    measured = {"livec", "livec_finetune"}  # committed: a clone without CLIVE still shows them
    expected = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")} - {"study"} - measured
    assert {f"measured/{m}" for m in measured | {"world_finetune"}} <= set(files)
    # study runs once per group; the world's finetune group is committed (world_finetune)
    assert executed == expected | {f"study_{g}" for g in groups if g != "finetune"}
    assert "glossary" in files


def test_title_says_reconstructed_and_tested_not_reproduced():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert "reconstructed and tested" in config["title"]
    intro = (ROOT / "book" / "intro.md").read_text()
    assert intro.splitlines()[0] == "# QFM-IQM, reconstructed and tested"
    assert "reproduced" not in intro.split("## ")[0].lower()
    assert "## The claims ledger" in intro and "## Limitations" in intro


def test_every_page_showing_livec_results_cites_the_data_set():
    """Its notice asks for two citations wherever results on it are shown."""
    shows = re.compile(r"executed/figures\.ipynb::livec_|\{glue\} (?:livec_|answer_table|"
                       r"ledger_table)")
    pages = [p for p in (ROOT / "book").glob("*.md") if shows.search(p.read_text())]
    assert {p.stem for p in pages} >= {"intro", "livec"}
    for p in pages:
        text = re.sub(r"\s+", " ", p.read_text())
        assert "Massive Online Crowdsourced Study" in text, p.name
        assert "LIVE In the Wild Image Quality Challenge Database" in text, p.name


# --- the built book (slow: the smoke pipeline) -----------------------------------------------

@pytest.fixture(scope="session")
def html(tmp_path_factory) -> Path:
    """The built book of the smoke pipeline (built once per session, shared)."""
    return smoke_pipeline(tmp_path_factory) / "book" / "_build" / "html"


@pytest.mark.slow
def test_every_referenced_image_exists_and_nothing_is_remote(html):
    result = check_pages(html)
    assert result["pages"] >= len(toc_files())
    assert result["images"] > 0
    assert result["missing"] == []
    assert result["remote"] == []
    problems = {}
    for page in html.rglob("*.html"):
        text = page.read_text(errors="replace")
        found = remote_loads(text)
        for src in MATHJAX.findall(text):  # the bundled copy, never a CDN's
            path = (page.parent / src.split("?")[0]).resolve()
            if not (src.split("?")[0].endswith("_static/mathjax/tex-svg.js") and path.is_file()):
                found.append(f"mathjax: {src}")
        if found:
            problems[page.relative_to(html).as_posix()] = found
    for css in html.rglob("*.css"):  # the theme's and ours: no remote fonts or imports
        found = [m.group(0) for m in REMOTE_CSS.finditer(css.read_text(errors="replace"))]
        if found:
            problems[css.relative_to(html).as_posix()] = found
    assert not problems, problems
    assert "sphinx-thebe" not in (html / "intro.html").read_text()  # nothing to launch


@pytest.mark.slow
def test_equations_render_from_the_bundled_mathjax(html):
    page = (html / "method.html").read_text()
    assert MATHJAX.findall(page), "method.html loads no MathJax"
    assert page.count('class="math') >= 8  # L_reg, gate, matching, ε, L_qfm, L, distillation
    assert (html / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000


@pytest.mark.slow
def test_no_two_nav_entries_share_a_title(html):
    """The Performance page and the executed performance notebook were both "Performance".
    The study notebook's pages (one per group) still share theirs: its title cell is not this
    test's to change (issue 23), so they are left out until it names its group."""
    titles = {}
    for f in toc_files():
        m = re.search(r"<h1\b[^>]*>(.*?)</h1>", (html / f"{f}.html").read_text(), re.S)
        title = html_lib.unescape(TAGS.sub("", m.group(1))).strip().rstrip("#").strip()
        titles.setdefault(title, []).append(f)
    study = set(study_pages().values())
    shared = {t: fs for t, fs in titles.items() if len(fs) > 1 and not set(fs) <= study}
    assert not shared, shared


@pytest.mark.slow
@pytest.mark.parametrize("page", toc_files())
def test_no_page_shows_a_placeholder(html, page):
    found = placeholders((html / f"{page}.html").read_text(errors="replace"))
    assert not found, found


@pytest.mark.slow
def test_every_toc_page_and_every_notebook_is_built(html):
    for f in toc_files():
        assert (html / f"{f}.html").is_file(), f
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        pages = {"study": list(study_pages().values()),  # once per group
                 "livec": ["measured/livec"], "livec_finetune": ["measured/livec_finetune"]
                 }.get(nb.stem, [f"executed/{nb.stem}"])
        for page in pages:
            assert (html / f"{page}.html").is_file(), page


@pytest.mark.slow
def test_prose_numbers_are_glued(html):
    for name in ("intro", "results", "method", "ablations", "semantic_noise", "protocol",
                 "reproducibility", "performance"):
        text = (html / f"{name}.html").read_text()
        assert "pasted-text" in text or "qfm-table" in text, f"{name}: nothing glued"
        assert "{glue" not in text and "glue:text" not in text, f"{name}: unresolved glue"
    intro = (html / "intro.html").read_text()
    # the answer block (qfm.report.forest) opens the page, above the forest plot and the tables
    assert 'class="qfm-answer"' in intro and "In short:" in intro
    assert re.search(r"(?:better|no difference detected|worse) on (?:the world|LIVEC) \(", intro)
    assert intro.index("qfm-answer") < intro.index("forest.png") < intro.index("qfm-table")
    assert "deltas_intro.png" in intro
    plan = (html / "plan.html").read_text()
    assert "analysis_plan.yaml" in plan and "qfm-table" in plan


@pytest.mark.slow
def test_no_page_shows_notebook_artefacts(html):
    problems = {}
    for f in toc_files():
        found = page_artefacts((html / f"{f}.html").read_text(errors="replace"))
        if found:
            problems[f] = found
    assert not problems, problems


@pytest.mark.slow
def test_one_name_per_data_set_across_pages(html):
    for f in toc_files():
        if f.startswith("measured/"):  # the measurement's own record, named after its stage
            continue
        page = (html / f"{f}.html").read_text(errors="replace")
        # links to that record (its title) and the navigation are not prose
        page = re.sub(r'<a\b[^>]*href="[^"]*measured/[^"]*".*?</a>', "", page, flags=re.S)
        main = re.search(r"<main\b.*?</main>", page, re.S)
        assert not other_names(TAGS.sub(" ", main.group(0) if main else page)), f
