"""The paper's evaluation protocol: N seeded splits per data set, and cross-data-set tests.

* :func:`run_protocol` trains and evaluates one model per split (model selection on each
  split's validation part, numbers on its test part) and reports every split's numbers with
  the median and mean ± std of SRCC, PLCC (raw and after the logistic fit) and KRCC. With
  ``distill.enabled`` each split is a full QFM-IQM run: teacher, pseudo-labels, student
  (:func:`qfm.runs.distill.run_distill`).
* :func:`cross_dataset` scores a trained checkpoint on **all** images of another data set.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader

from qfm.config import (
    ConfigError,
    RunConfig,
    flatten,
    load_params,
    override,
    read_params,
    split_variant,
)
from qfm.core.inference import evaluate, load_model
from qfm.core.metrics import summarize
from qfm.data.dataset import IQADataset
from qfm.data.sources import load_table
from qfm.data.transforms import TestTransform
from qfm.files import write_json
from qfm.paper import PAPER_PROFILE
from qfm.runs.distill import run_distill
from qfm.runs.train import fit

METRICS = ("srcc", "plcc", "plcc_logistic", "krcc", "rmse")


def run_protocol(cfg: RunConfig, dataset: str, splits: list[int], runs: str | Path,
                 progress: bool = True) -> dict:
    """Train/evaluate on each split and summarise (a finished split is read back, not rerun).

    Args:
        cfg: base configuration (model, train, qfm, ...).
        dataset: ``world`` or a real data set name.
        splits: split indices (-1 = the official split).
        runs: folder receiving ``<dataset>/split_<k>/`` run folders and ``protocol.json``.
    Returns:
        ``{"dataset", "splits": [{split, srcc, ...}], "summary": {metric: {median, mean, std}}}``
    """
    out_dir = Path(runs) / dataset
    rows = []
    for k in splits:
        c = override(cfg, {"train.dataset": dataset, "train.split": k})
        run_dir = out_dir / f"split_{'official' if k < 0 else k}"
        if c.distill.enabled:  # QFM-IQM step 5: teacher → pseudo-labels → student

            m = run_distill(c, run_dir, progress=progress)  # reuses finished stages
        else:
            m = fit(c, run_dir, progress=progress)  # resumes / reuses a finished run
        rows.append({"split": k, **{name: m["test"][name] for name in METRICS},
                     "best_epoch": m["best_epoch"], "val_srcc": m["val"]["srcc"]})
        if "teacher" in m:
            rows[-1]["teacher_srcc"] = m["teacher"]["test"]["srcc"]
    result = {"dataset": dataset, "splits": rows,
              "summary": {name: summarize([r[name] for r in rows]) for name in METRICS}}
    write_json(result, out_dir / "protocol.json")
    return result


def cross_dataset(checkpoint: str | Path, dataset: str, cfg: RunConfig) -> dict:
    """Metrics of a checkpoint on every image of ``dataset`` (train on A, test on all of B).

    Returns:
        Correlations over the whole table of ``dataset`` (its ``mos``, normalised), its
        images preprocessed as for training and ``qfm predict`` (KonIQ/SPAQ resized), scored
        with the checkpoint's own test crops.
    """
    model, meta = load_model(checkpoint, cfg.train.device)
    root, table = load_table(dataset, cfg.shared.data_root)  # KonIQ/SPAQ: the resized copies
    size = meta["config"]["model"]["img_size"]
    crops = int(meta["config"].get("train", {}).get("test_crops", cfg.train.test_crops))
    ds = IQADataset(table, root, TestTransform(size, crops))
    dev = next(model.parameters()).device
    loader = DataLoader(ds, batch_size=32, num_workers=cfg.train.workers)
    metrics = evaluate(model, loader, dev, cfg.train.amp, f"cross {dataset}")
    return {"train_dataset": meta.get("dataset"), "test_dataset": dataset, **metrics}


def parse_splits(text: str) -> list[int]:
    """``"0-9"`` → [0..9]; ``"0,3,5"``; ``"official"`` → [-1]."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if part == "official":
            out.append(-1)
        elif "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    if not out:
        raise ValueError(f"--splits {text!r}: no split given (e.g. 0-9, 0,1,2 or official)")
    return out


def protocol_stage(params_path: str | Path, out_dir: str | Path, progress: bool = True) -> dict:
    """The ``protocol`` stage: the paper's protocol on the data set ``params.yaml`` names.

    ``protocol.dataset: none`` (the default) writes a "not run" record and trains nothing:
    the embedded default needs no protocol run, and the real data sets are not shipped. A
    queued experiment sets it (``dvc exp run --queue -S protocol.dataset=koniq10k``); the
    ``protocol.profile`` (``paper``: :data:`qfm.paper.PAPER_PROFILE` with
    ``protocol.weights``; ``params``: the component sections as they are) applies to this
    stage only, so the world's study is untouched.

    Returns:
        ``{"dataset", "status", "variants": {variant: protocol summary}}``, also written to
        ``out_dir/protocol.json``.
    """
    raw = read_params(params_path)
    pr = raw.get("protocol") or {}
    for key in ("dataset", "splits", "variants", "profile", "weights"):
        if key not in pr:
            raise ConfigError(f"protocol.{key}: missing in {params_path}")
    out_dir = Path(out_dir)
    if pr["dataset"] in ("none", "", None):
        result = {"dataset": None, "status": "not run",
                  "reason": "protocol.dataset is none: needs a real data set and a GPU"}
        write_json(result, out_dir / "protocol.json")
        return result
    base = load_params(params_path)
    weights = check_weights(pr)
    variants = raw.get("variants") or {}
    result = {"dataset": pr["dataset"], "status": "run", "profile": pr["profile"],
              "variants": {}}
    overs = {v: variant_overrides(variants, v, pr["profile"], weights)  # all checked first
             for v in pr["variants"]}
    for v, over in overs.items():
        cfg = override(base, over)
        res = run_protocol(cfg, pr["dataset"], parse_splits(str(pr["splits"])),
                           out_dir / "runs" / v, progress)
        result["variants"][v] = res["summary"]
    write_json(result, out_dir / "protocol.json")
    return result


def check_weights(pr: dict) -> str | None:
    """``protocol.weights`` of the paper profile, checked before anything trains (None for the
    ``params`` profile). A relative path is relative to the project's root (the command's
    working folder); a queued experiment runs in a copy of the commit, so it is given an
    absolute one.

    Raises:
        ConfigError: an unknown profile, or the paper profile's weights file is missing.
    """
    if pr["profile"] not in ("paper", "params"):
        raise ConfigError(f"protocol.profile: expected 'paper' or 'params', got {pr['profile']!r}")
    if pr["profile"] != "paper":
        return None
    path = Path(str(pr["weights"])).expanduser()
    if not path.is_file():
        raise ConfigError(f"protocol.weights: {pr['weights']}: file not found (local ImageNet "
                          "weights of deit3_small_patch16_224; book: Paper protocol)")
    return str(pr["weights"])


def variant_overrides(variants: dict, variant: str, profile: str = "paper",
                      weights: str | None = None) -> dict:
    """The dotted overrides one protocol variant trains with: the paper profile (with
    ``weights``) under ``profile: paper``, then the variant's switches (params.yaml's
    ``variants``). The protocol stage and the Paper protocol page's commands both use it.

    Raises:
        ConfigError: ``variant`` is not in ``variants``.
    """
    if variant not in variants:
        raise ConfigError(f"protocol.variants: unknown variant {variant!r}")
    prof = {**PAPER_PROFILE, **({"model.weights": weights} if weights else {})} \
        if profile == "paper" else {}
    return {**prof, **flatten(split_variant(variants[variant])[0])}
