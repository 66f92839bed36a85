"""The Jupyter Book, built by the smoke pipeline (``tests/test_pipeline.py``) from smoke outputs.

Every image a page references exists, no page loads anything from the network (the book must
read offline: no CDN scripts, styles, fonts or MathJax), every page of the table of contents is
built, and the numbers in the prose are pasted (glue), not left as unresolved roles.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from test_pipeline import ROOT, smoke_pipeline

sys.path.insert(0, str(ROOT / "scripts"))
from screenshot_book import check_pages  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def html(tmp_path_factory) -> Path:
    """The built book of the smoke pipeline (built once per session, shared)."""
    return smoke_pipeline(tmp_path_factory) / "book" / "_build" / "html"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("chapters"))
            walk(e.get("sections"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def test_every_referenced_image_exists_and_nothing_is_remote(html):
    result = check_pages(html)
    assert result["pages"] >= len(toc_files())
    assert result["images"] > 0
    assert result["missing"] == []
    assert result["remote"] == []
    for page in html.rglob("*.html"):
        text = page.read_text(errors="replace").lower()
        assert "mathjax" not in text and "fonts.googleapis" not in text, page.name


def test_every_toc_page_is_built(html):
    for f in toc_files():
        assert (html / f"{f}.html").is_file(), f


def test_prose_numbers_are_glued(html):
    for name in ("intro", "results", "semantic_noise", "protocol", "reproducibility"):
        text = (html / f"{name}.html").read_text()
        assert "pasted-text" in text, f"{name}: no glued number"
        assert "{glue" not in text and "glue:text" not in text, f"{name}: unresolved glue"
    results = (html / "results.html").read_text()
    assert re.search(r'class="pasted-text">[+-]?\d\.\d{3}<', results)
    assert "main.png" in results
