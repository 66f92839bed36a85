"""The Performance page's values on ``qfm predict`` (``benchmarks/predict_throughput.py``).

The shipped model (profile ``shipped``) is timed on torch and on ONNX Runtime in one run; each
runtime is judged against the same two bars (:func:`runtime_verdicts`): predict's images/s at
least the stored target (goal), and predict ÷ its bare model on the same crops (torch: the
backbone; ONNX Runtime: the whole ONNX model) meeting the ratio table's target
(:data:`qfm.report.performance.RATIOS`). Every value is text; a key a stored result lacks (one
measured before ONNX Runtime or the worker policies were timed) reads "not measured yet".
"""

from __future__ import annotations

from qfm.report.livec import stability_changed
from qfm.report.performance import NOT_MEASURED, lookup, ratio_table, value_text, verdict

# runtime → (its name on the page, predict's images/s in the shipped entry, its RATIOS key)
RUNTIMES = {
    "torch": ("torch", "predict_fast_images_per_s", "predict_shipped"),
    "onnx": ("ONNX Runtime", "predict_onnx_images_per_s", "predict_shipped_onnx"),
}
PAPER = {"predict": "predict_images_per_s", "backbone": "backbone_images_per_s",  # glue suffix
         "decode": "decode_crop_images_per_s_one_process"}                       # → key


def _shipped(results: dict[str, dict | None]) -> dict:
    return lookup(results.get("predict_throughput"), ("profiles", "shipped")) or {}


def runtime_verdicts(results: dict[str, dict | None]) -> dict[str, dict[str, bool | None]]:
    """Whether each runtime meets the shipped model's target and its goal.

    Args:
        results: :func:`qfm.report.performance.load_results`.
    Returns:
        ``{"target": {runtime: met}, "goal": {runtime: met}}``, runtimes as in
        :data:`RUNTIMES`: met when predict's images/s reach the stored target (goal) and its
        ratio meets its target; None where either is not measured.
    """
    shipped = _shipped(results)
    met = ratio_table(results).set_index("key")["met"].to_dict()
    out: dict[str, dict[str, bool | None]] = {"target": {}, "goal": {}}
    for name, (_, rate_key, ratio_key) in RUNTIMES.items():
        rate, ratio_met = shipped.get(rate_key), met.get(ratio_key)
        for level, met_by in out.items():
            bar = shipped.get(f"{level}_images_per_s")
            met_by[name] = None if rate is None or bar is None or ratio_met is None \
                else bool(rate >= bar and ratio_met)
    return out


def meets_text(met: dict[str, bool | None]) -> str:
    """Which runtimes meet a bar, in words: ``ONNX Runtime``, ``torch and ONNX Runtime``,
    ``none``, each unmeasured one named after it; :data:`NOT_MEASURED` if none is measured."""
    if all(v is None for v in met.values()):
        return NOT_MEASURED
    yes = [RUNTIMES[k][0] for k, v in met.items() if v is True]
    missing = [RUNTIMES[k][0] for k, v in met.items() if v is None]
    text = " and ".join(yes) or "none"
    return text + (f" ({', '.join(missing)}: {NOT_MEASURED})" if missing else "")


def worker_policy_text(r: dict) -> str:
    """The faster of torch predict's worker policies on this machine, in words."""
    w = r.get("faster_torch_workers")
    if w is None:
        return NOT_MEASURED
    return "decoding in the main process (--workers 0)" if w == 0 else \
        f"{w} decoding worker" + ("s" if w != 1 else "") + " (the default)"


def shipped_values(r: dict) -> dict[str, str]:
    """The shipped model's predict entry as text.

    Args:
        r: ``profiles.shipped`` of ``predict_throughput.json`` (``{}`` when absent).
    Returns:
        Images/s of predict on torch (fast and plain paths, without workers) and on ONNX
        Runtime, of the bare backbone and the bare ONNX model; the speed-ups; the ONNX
        session's threads; the preprocessing; the backbone's GFLOPs per image, the GFLOP/s
        predict attains and its share of this machine's dense-convolution rate; the target and
        the goal.
    """
    roof = r.get("roofline") or {}
    onnx = r.get("onnx") if isinstance(r.get("onnx"), dict) else {}
    share = r.get("predict_share_of_conv_rate")
    text = {"ips": ("predict_fast_images_per_s", ".3g"),
            "plain_ips": ("predict_plain_images_per_s", ".3g"),
            "backbone_ips": ("backbone_fast_images_per_s", ".3g"),
            "speedup": ("speedup_channels_last", ".2f"),
            "nchw_ips": ("backbone_nchw_images_per_s", ".3g"),
            "side": ("img_size", "d"),
            "gflops": ("backbone_gflops_per_image", ".2f"),
            "gflop_s": ("predict_gflop_per_s", ".0f"),
            "target_ips": ("target_images_per_s", "g"),
            "goal_ips": ("goal_images_per_s", "g"),
            "workers": ("predict_workers", "d"),
            "w0_ips": ("predict_fast_w0_images_per_s", ".3g"),
            "w0_speedup": ("speedup_w0_over_workers", ".2f"),
            "onnx_ips": ("predict_onnx_images_per_s", ".3g"),
            "onnx_model_ips": ("model_onnx_images_per_s", ".3g"),
            "onnx_speedup": ("speedup_onnx_over_channels_last", ".2f"),
            "onnx_over_w0": ("speedup_onnx_over_torch_w0", ".2f")}
    return {**{f"predict_shipped_{k}": value_text(r.get(key), spec)
               for k, (key, spec) in text.items()},
            "nhwc_over_nchw": value_text(r.get("speedup_nhwc_over_nchw_backbone"), ".2f"),
            "conv_gflop_s": value_text(roof.get("conv3x3_gflop_per_s"), ".0f"),
            "predict_shipped_roof_share": value_text(None if share is None else 100 * share,
                                                     ".0f"),
            "predict_shipped_onnx_threads": value_text(onnx.get("session_threads"), "d"),
            "predict_shipped_faster_policy": worker_policy_text(r)}


def predict_values(results: dict[str, dict | None]) -> dict[str, str]:
    """Every ``qfm predict`` value the page quotes but the ratios
    (:func:`qfm.report.performance.summary_values` glues those and their verdicts).

    Args:
        results: :func:`qfm.report.performance.load_results`.
    Returns:
        :func:`shipped_values`; ``predict_shipped_meets_target`` and
        ``predict_shipped_meets_goal`` (which runtime meets each, :func:`meets_text`);
        ``predict_shipped_<runtime>_target_verdict`` (met / missed / not measured yet); the
        paper profile's images/s (``predict_paper_<side>_ips``).
    """
    pt = results.get("predict_throughput")
    out = {f"predict_paper_{k}_ips": value_text(lookup(pt, ("profiles", "paper", key)), ".3g")
           for k, key in PAPER.items()}
    out.update(shipped_values(_shipped(results)))
    met = runtime_verdicts(results)
    out["predict_shipped_meets_target"] = meets_text(met["target"])
    out["predict_shipped_meets_goal"] = meets_text(met["goal"])
    for name in RUNTIMES:
        out[f"predict_shipped_{name}_target_verdict"] = verdict(met["target"][name])
    return out


def cache_values(results: dict[str, dict | None]) -> dict[str, str]:
    """The caches' layout (``cache_throughput``) and why it stays contiguous
    (``tuning_stability``): speedups of the channels-last upstream, the outputs' largest
    relative difference, and how many tuned variants' choices changed on its tokens."""
    ct = results.get("cache_throughput") or {}
    out = {}
    for cache in ("tokens", "tail"):
        c = lookup(ct, ("caches", cache)) or {}
        out[f"cache_{cache}_speedup"] = value_text(c.get("speedup_channels_last"))
        out[f"cache_{cache}_diff"] = value_text(c.get("max_abs_diff_relative"), ".0e")
        out[f"cache_{cache}_side"] = value_text(c.get("side"), "d")
    stability = results.get("tuning_stability")
    out["stability_changed"] = stability_changed(stability) if stability else NOT_MEASURED
    return out
