"""Screenshot a page of the built book in headless Chromium, offline, and check its images.

    python scripts/screenshot_book.py [--html book/_build/html] [--page results.html] \
        [--out results/screenshots/results.png] [--width 1280] [--height 2400]

Needs the Debian package ``chromium`` (``apt-get install -y chromium``). Chromium opens the
built files through ``file://`` with networking features off and a fresh profile, so the
screenshot shows what a reader sees offline. Before that, every image that any page of the book
references is checked to exist, and no page may load a script, style sheet or font from the
network. Prints one JSON object; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

IMG = re.compile(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", re.I)
REMOTE = re.compile(r"<(?:script|link|iframe)\b[^>]*?\b(?:src|href)=\"(https?:)?//", re.I)


def check_pages(html_dir: Path) -> dict:
    """Every ``<img src>`` of every page exists; no page loads remote scripts/styles/fonts.

    Returns:
        ``{"pages": n, "images": n, "missing": [...], "remote": [...]}``.
    """
    pages = sorted(html_dir.rglob("*.html"))
    missing, remote, images = [], [], 0
    for page in pages:
        text = page.read_text(errors="replace")
        for src in IMG.findall(text):
            url = urlparse(src)
            if url.scheme in ("http", "https"):
                remote.append(f"{page.relative_to(html_dir)}: {src}")
                continue
            if url.scheme == "data":
                continue
            images += 1
            if not (page.parent / unquote(url.path)).resolve().is_file():
                missing.append(f"{page.relative_to(html_dir)}: {src}")
        for m in REMOTE.finditer(text):
            remote.append(f"{page.relative_to(html_dir)}: {m.group(0)[:120]}")
    return {"pages": len(pages), "images": images, "missing": missing, "remote": remote}


def screenshot(page: Path, out: Path, width: int, height: int, browser: str) -> None:
    """Headless Chromium screenshot of ``page`` (a local file), no network, fresh profile."""
    with tempfile.TemporaryDirectory(prefix="qfm-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync", "--disable-extensions",
               "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--window-size={width},{height}", f"--screenshot={out.resolve()}",
               "--virtual-time-budget=3000", page.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", default="book/_build/html", help="the built book")
    ap.add_argument("--page", default="results.html", help="page to screenshot")
    ap.add_argument("--out", default="results/screenshots/results.png", help="PNG to write")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2400)
    args = ap.parse_args(argv)
    html = Path(args.html)
    if not (html / args.page).is_file():
        print(f"screenshot_book: {html / args.page}: not built (run `dvc repro`)",
              file=sys.stderr)
        return 1
    result = check_pages(html)
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("screenshot_book: chromium not found (apt-get install -y chromium)",
              file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    screenshot(html / args.page, Path(args.out), args.width, args.height, browser)
    result["screenshot"] = str(Path(args.out))
    print(json.dumps(result, indent=2))
    return 1 if result["missing"] or result["remote"] else 0


if __name__ == "__main__":
    sys.exit(main())
