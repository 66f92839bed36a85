"""How stable the frozen LIVEC study's tuning is: the same tuning on tokens that differ only
by float rounding.

The question came from issue 29: holding the caches' frozen upstream channels-last makes the
token cache faster on a CPU (``benchmarks/cache_throughput.py``) and moves its outputs by
float rounding; stored as float16, a small share of the tokens then move by one step. Would
the study's answers stand? This extracts CLIVE's tokens with the upstream channels-last
(otherwise as the ``livec`` stage does: same recipe, same photos), runs the study's tuning
(:func:`qfm.study.tune.tune`, CLIVE's tuning seeds, the same grids) on them, and compares
every trial's validation SRCC and every choice with ``measured/livec/tune.json`` — the
committed tuning on the contiguous tokens, checked current first. The test photos play no
part (the tuning never reads them).

    .venv/bin/python benchmarks/tuning_stability.py [--out FILE]

Needs a copy of CLIVE (``livec.root``, ``QFM_DATA`` or ``../shared/data/livec``): a quarter of
an hour on 2 cores (the tokens, then the tuning; its stored result says how long). Without
it: a one-line error and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from harness import PARAMS, Record, add_out_argument, cpu_default, shipped_weights

from qfm import paths
from qfm.config import read_params
from qfm.files import read_json
from qfm.study import livec, real, record, tune


def trials(tuned: dict) -> dict[str, dict]:
    """``{"variant knob=value": {"variant", "knob", "value", "val_srcc"}}`` of a tune.json."""
    out = {}
    for t in tuned["trials"]:
        key = f"{t['variant']} {t['knob']}={t[t['knob']]:g}"
        out[key] = {"variant": t["variant"], "knob": t["knob"], "value": t[t["knob"]],
                    "val_srcc": t["val_srcc"]}
    return out


def compare(before: dict, after: dict) -> dict:
    """Trials and choices of two tunings side by side (``before``: the committed one)."""
    a, b = trials(before), trials(after)
    rows = []
    for k in sorted(set(a) | set(b)):
        x, y = (a.get(k) or {}).get("val_srcc"), (b.get(k) or {}).get("val_srcc")
        t = a.get(k) or b[k]
        rows.append({"trial": k, "variant": t["variant"], "knob": t["knob"], "value": t["value"],
                     "val_srcc_contiguous": x, "val_srcc_channels_last": y,
                     "difference": y - x if x is not None and y is not None else None})
    by_variant: dict[str, float] = {}
    for r in rows:
        if r["difference"] is not None:
            by_variant[r["variant"]] = max(by_variant.get(r["variant"], 0.0),
                                           abs(r["difference"]))
    flips = {v: {"contiguous": before["chosen"][v], "channels_last": after["chosen"].get(v)}
             for v in before["chosen"] if before["chosen"][v] != after["chosen"].get(v)}
    return {"trials": rows, "largest_change_by_variant": by_variant,
            "chosen_contiguous": before["chosen"], "chosen_channels_last": after["chosen"],
            "changed_choices": flips}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default=str(PARAMS))
    add_out_argument(ap, "tuning_stability")
    args = ap.parse_args(argv)
    raw = read_params(args.params)
    cl, study = livec.livec_section(raw)
    root = paths.find_dataset("livec", cl["root"])
    if root is None:
        sys.exit("tuning_stability: no CLIVE copy (livec.root, QFM_DATA, ../shared/data/livec)")
    committed = paths.measured_dir("livec") / "tune.json"
    if not record.is_current(committed, record.code_fingerprint(livec.shaping_params(raw))):
        sys.exit(f"tuning_stability: {committed} is not current (dvc repro livec first)")
    rec = Record("tuning_stability")
    cfg = cpu_default()
    src = real.source("livec", root, int(cl["splits"]))
    recipe = real.TokenRecipe(int(cl["resize"]), int(cl["views"]), int(cl["view_crop"]))
    plain = real.build_backbone

    def channels_last(*a, **k):  # the one change: the frozen upstream held NHWC
        return plain(*a, **k).to(memory_format=torch.channels_last)

    with tempfile.TemporaryDirectory() as tmp, shipped_weights(cfg, tmp):  # QFM_HOME = tmp:
        real.build_backbone = channels_last
        try:
            real.extract(cfg.model, root, src.table, recipe,
                         paths.features_dir() / "livec.safetensors", progress=False)
        finally:
            real.build_backbone = plain
        after = tune.tune(args.params, Path(tmp) / "tune.json", False, study=study, source=src)
    result = {"what": "the frozen LIVEC study's tuning rerun on tokens from a channels-last "
                      "upstream (float rounding apart, the same tokens) against the committed "
                      "tuning on contiguous tokens",
              "selected_on": read_json(committed).get("selected_on"),
              "tuning_seeds": list(cl["tune_seeds"]), **compare(read_json(committed), after)}
    return rec.finish(result, args.out)


if __name__ == "__main__":
    main()
