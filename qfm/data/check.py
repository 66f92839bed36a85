"""``qfm data check``: is a data set's folder ready for training?

:func:`check_dataset` reports every problem in one pass, each a line that starts with its
level:

- ``error:`` the table cannot be trained on as it stands — the label file is missing or
  unreadable, a row's image is missing or does not decode, a label is NaN/inf, an image has two
  rows. Any error makes the data set unusable (exit code 1), since a data loader would crash
  on the file or a NaN would poison the loss.
- ``warning:`` training works but the numbers may not be comparable with published ones —
  the row count differs from the full release (normal for a partial or tiny tree), images on
  disk have no row (in the folders that hold labelled images; reference folders and the
  documented drops are not counted), labels lie outside the documented scale.

``images`` counts usable rows: image present and decodable, label finite.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from qfm.data.facts import FACTS, canonical_name, scale_for
from qfm.data.label_io import DataError, is_image
from qfm.data.readers import read_labels

LIMIT = 20  # problem lines listed per kind; the rest are summed up in one line


def _decodes(path: Path, deep: bool) -> str:
    """'' if the image opens (and, with ``deep``, fully decodes), else the reason."""
    try:
        with Image.open(path) as im:
            im.verify()  # structure and checksums, without decoding every pixel
        if deep:
            with Image.open(path) as im:
                im.load()  # catches truncated JPEG data that verify() lets through
    except Exception as e:  # PIL raises many types for a bad file
        msg = str(e).replace(str(path), path.name)  # the row already names the file
        return f"{type(e).__name__}: {msg}".splitlines()[0][:120]
    return ""


def _listed(kind: str, level: str, items: list[str], limit: int) -> list[str]:
    out = [f"{level}: {kind} {it}" for it in items[:limit]]
    if len(items) > limit:
        out.append(f"{level}: ... and {len(items) - limit} more {kind} (total {len(items)})")
    return out


def _extra_images(root: Path, images: list[str], ignore: set[str]) -> list[str]:
    # Only the folders that hold labelled images are scanned, so reference folders
    # (refimgs/, src_imgs/, reference_images/) and unrelated trees are never "extra".
    known = set(images) | ignore
    known_lower = {p.lower() for p in known}
    extra = []
    for folder in sorted({im.rpartition("/")[0] for im in images}):
        try:
            names = sorted(os.listdir(root / folder) if folder else os.listdir(root))
        except OSError:
            continue
        for n in names:
            rel = f"{folder}/{n}" if folder else n
            if is_image(n) and rel not in known and rel.lower() not in known_lower \
                    and (root / rel).is_file():
                extra.append(rel)
    return extra


def check_dataset(name: str, root: str | Path, *, deep: bool = False, workers: int = 8,
                  limit: int = LIMIT) -> dict:
    """Check one data set's folder and report all problems at once.

    Args:
        name: data-set name (``koniq10k``, ``KonIQ-10k``, ...).
        root: the data set's folder.
        deep: fully decode every image (slower; catches truncated JPEG data).
        workers: threads opening images.
        limit: problem lines listed per kind before summing up.
    Returns:
        ``dict(dataset, root, images, rows, expected, usable, errors, warnings, counts,
        source, problems)``: ``images`` = usable rows; ``errors``/``warnings`` count
        problems (``counts`` per kind); ``problems`` = lines starting with ``error:`` or
        ``warning:``, at most ``limit`` per kind.
    """
    key = canonical_name(name)
    f, root = FACTS[key], Path(root)
    report = {"dataset": key, "root": str(root), "images": 0, "rows": 0,
              "expected": f.expected, "usable": False, "errors": 0, "warnings": 0,
              "counts": {}, "source": "", "problems": []}
    try:
        table = read_labels(key, root)
    except DataError as e:
        report.update(errors=1, problems=[f"error: {e}"])
        return report
    images = table["image"].tolist()
    dup = sorted(set(table.loc[table["image"].duplicated(), "image"]))
    problems = _listed("image with several label rows", "error", dup, limit)
    raw = table["raw"].to_numpy(np.float64)

    paths = [root / im for im in images]
    present = [p.is_file() for p in paths]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        why = list(pool.map(lambda a: _decodes(a[0], deep) if a[1] else "missing",
                            zip(paths, present)))
    missing = [im for im, w in zip(images, why) if w == "missing"]
    corrupt = [f"{im} ({w})" for im, w in zip(images, why) if w and w != "missing"]
    problems += _listed("missing image", "error", missing, limit)
    problems += _listed("unreadable image", "error", corrupt, limit)

    finite = np.isfinite(raw)
    bad_label = [f"{im} (raw {r})" for im, r, ok in zip(images, raw, finite) if not ok]
    problems += _listed("NaN/inf label", "error", bad_label, limit)

    lo, hi = scale_for(key, raw)  # the documented scale, or KonIQ's 1-5 file
    out = [f"{im} (raw {r:g}, scale {lo:g}-{hi:g})" for im, r, ok in zip(images, raw, finite)
           if ok and not lo <= r <= hi]
    problems += _listed("label out of range", "warning", out, limit)

    extra = _extra_images(root, images, set(table.attrs.get("ignore", [])))
    problems += _listed("image without a label row", "warning", extra, limit)

    if len(table) != f.expected:
        problems.append(f"warning: {len(table)} label rows, the full {f.title} release has "
                        f"{f.expected} (fine for a partial tree; numbers not comparable)")

    counts = {"duplicate": len(dup), "missing": len(missing), "unreadable": len(corrupt),
              "bad_label": len(bad_label), "out_of_range": len(out), "extra": len(extra),
              "count_mismatch": int(len(table) != f.expected)}
    errors = sum(counts[k] for k in ("duplicate", "missing", "unreadable", "bad_label"))
    usable = int(sum(1 for w, ok in zip(why, finite) if not w and ok))
    report.update(images=usable, rows=len(table), source=table.attrs.get("source", ""),
                  problems=problems, errors=errors, warnings=sum(counts.values()) - errors,
                  counts=counts, usable=errors == 0 and usable > 0)
    return report


def format_report(report: dict) -> str:
    """The report as human-readable lines."""
    head = (f"{report['dataset']} at {report['root']}"
            + (f" (labels: {report['source']})" if report["source"] else ""))
    lines = [head, f"  usable images {report['images']} of {report['rows']} rows "
                   f"(full release: {report['expected']})"]
    lines += [f"  {p}" for p in report["problems"]]
    verdict = "usable" if report["usable"] else "NOT usable"
    lines.append(f"  {verdict}: {report['errors']} error(s), {report['warnings']} warning(s)")
    return "\n".join(lines)


def data_check_main(name: str, root: str | Path, as_json: bool = False) -> int:
    """Entry point of ``qfm data check``: print the report, return the exit code.

    Args:
        name: data-set name.
        root: the data set's folder.
        as_json: print one JSON object instead of text.
    Returns:
        0 when the data set is usable, 1 otherwise (unknown name included).
    """
    try:
        report = check_dataset(name, root)
    except DataError as e:  # unknown data-set name
        report = {"dataset": str(name), "root": str(root), "images": 0, "rows": 0,
                  "expected": 0, "usable": False, "errors": 1, "warnings": 0, "counts": {},
                  "source": "", "problems": [f"error: {e}"]}
    print(json.dumps(report) if as_json else format_report(report))
    return 0 if report["usable"] else 1
