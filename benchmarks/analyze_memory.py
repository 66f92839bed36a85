"""Peak memory of ``qfm analyze``'s pair computations on N random features (prints JSON).

``qfm.runs.noise.observe`` — every pair's cosine distance and quality gap, the share of the 10 %
closest pairs, the base rate and the hexbin figure — on two feature sets (``upstream`` and
``selected``, as for a checkpoint) of ``--n`` random features of width ``--width``. The model
and the data loader are left out: they hold N×C features, nothing per pair. Reports the
process's peak resident memory (``ru_maxrss``) over the part measured, and the peak of
numpy's allocations as traced by ``tracemalloc``. Target: within 4 GiB at N = 10,000, C = 384
(the issue: the earlier N×N×C version needed about 12 GB for KonIQ's test part).

    .venv/bin/python benchmarks/analyze_memory.py [--n 10000] [--width 384]

2 CPU cores: about a minute at the defaults.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from qfm.runs.noise import observe
from harness import Record, add_out_argument

TARGET_GIB = 4.0


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="features (images)")
    p.add_argument("--width", type=int, default=384, help="feature width (ViT-S: 384)")
    add_out_argument(p, "analyze_memory")
    args = p.parse_args()
    record = Record("analyze_memory")
    out = {"numpy": np.__version__, "n": args.n, "width": args.width,
           "pairs": args.n * (args.n - 1) // 2, "target_gib": TARGET_GIB}
    rng = np.random.default_rng(0)
    feats = {"upstream": rng.normal(size=(args.n, args.width)).astype(np.float32),
             "selected": rng.normal(size=(args.n, args.width)).astype(np.float32)}
    quality = rng.random(args.n)
    import matplotlib.pyplot  # noqa: F401  (its import is not the analysis' memory)

    out["rss_before_gib"] = round(_rss_gib(), 3)
    with tempfile.TemporaryDirectory(prefix="qfm-analyze-memory-") as tmp:
        tracemalloc.start()
        t0 = time.perf_counter()
        r = observe(feats, quality, figure=Path(tmp) / "semantic_noise.png", title="random")
        out["seconds"] = round(time.perf_counter() - t0, 1)
        out["tracemalloc_peak_gib"] = round(tracemalloc.get_traced_memory()[1] / 2 ** 30, 3)
        tracemalloc.stop()
    out["peak_rss_gib"] = round(_rss_gib(), 3)
    out["within_target"] = out["peak_rss_gib"] <= TARGET_GIB
    out["share"] = {k: round(v, 4) for k, v in r["share"].items()}
    out["base_rate"] = round(r["base_rate"], 4)
    record.finish(out, args.out)


if __name__ == "__main__":
    main()
