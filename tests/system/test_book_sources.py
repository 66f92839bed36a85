"""The book's sources, read without building it: the pages of its table of contents, and
their Markdown naming each data set one way (the built pages: test_book.py)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


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


def other_names(text: str) -> bool:
    """Whether prose names LIVEC or LIVEFB otherwise (CLIVE, FLIVE) than in the glossary's
    aliases."""
    text = re.sub(r"\s+", " ", text)
    for alias in ("the FLIVE / PaQ-2-PiQ set", "the CLIVE of some papers"):
        text = text.replace(alias, "")
    return "CLIVE" in text or "FLIVE" in text


def test_the_pages_markdown_names_each_data_set_one_way():
    """The fast twin of test_book.py's one-name test, on the pages' Markdown (the built
    pages add the glued text, which only the slow test sees)."""
    for f in toc_files():
        path = ROOT / "book" / f"{f}.md"
        if not f.startswith("measured/") and path.is_file():
            assert not other_names(path.read_text()), f
