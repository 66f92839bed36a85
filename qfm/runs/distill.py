"""The distillation driver (``qfm distill``, or ``qfm train`` with ``distill.enabled``).

1. **Teacher**: :func:`qfm.runs.train.fit` on the labelled train split (``run_dir/teacher``),
   optionally with another backbone (``distill.teacher_backbone``).
2. **Expanded set** (``run_dir/expanded``): ``distill.views`` new views of every train image
   (:func:`qfm.data.expanded.make_view`) and, with ``distill.unlabelled``, unlabelled images — for
   the embedded default (``"world"``) the rows of ``unlabelled.csv`` whose content is in the
   train split. The teacher scores them; ``pseudo_labels.csv`` is written atomically with the
   teacher checkpoint's sha256 in ``pseudo_labels.json``. No sample may come from val/test
   (:func:`qfm.data.expanded.check_no_leak`, a hard error).
3. **Student**: :func:`qfm.runs.train.fit` on labels + pseudo-labels with
   :class:`qfm.losses.distill.DistillObjective`; its checkpoint and metrics land in ``run_dir``.

Rerunning the same command reuses a finished teacher, and pseudo-labels made by that teacher
from the same expanded set (``pseudo_labels.json`` records its recipe: views, unlabelled
source, seed, data set, split, crops); anything else is redone. An epoch of the student is a
pass over labelled + expanded samples (``1 + views`` times the train split, plus the
unlabelled images), so it costs that many times a baseline epoch.

Under ``torchrun`` only rank 0 writes the expanded set and prints; the other ranks wait for it
(the run folder must be on a file system all ranks see, as for training).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from qfm import paths
from qfm.config import DistillConfig, RunConfig, override, to_dict
from qfm.core.distributed import barrier, init_distributed
from qfm.core.inference import load_model, predict, resolve_device
from qfm.data.dataset import IQADataset
from qfm.data.expanded import PseudoLabelled, check_no_leak, make_view
from qfm.data.sources import load_parts
from qfm.data.table import write_csv_atomic
from qfm.data.transforms import TestTransform, TrainTransform, load_rgb
from qfm.files import read_json, sha256, write_json
from qfm.losses.distill import DistillObjective
from qfm.runs.train import fit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def teacher_config(cfg: RunConfig) -> RunConfig:
    """The teacher's run configuration: the student's with the ``distill`` section at its
    defaults (so a teacher is exactly the plain ``qfm train`` run of that configuration, and a
    finished one can be reused) and, if given, its own backbone."""
    sets = {f"distill.{k}": v for k, v in to_dict(DistillConfig()).items()}
    if cfg.distill.teacher_backbone:
        sets["model.backbone"] = cfg.distill.teacher_backbone
    return override(cfg, sets)


def unlabelled_source(cfg: RunConfig) -> str:
    """What ``distill.unlabelled`` means for this run: ``"world"``, a folder, or ``""`` (none).

    ``auto`` is the embedded default's unlabelled images when training on it and none on a
    real data set (params.yaml's setting, so the pipeline runs on either). Checked before
    anything is trained: ``world`` on a real data set, or a folder that does not exist, is an
    error naming the key.
    """
    u = cfg.distill.unlabelled
    if u == "auto":
        return "world" if cfg.train.dataset == "world" else ""
    if u == "world" and cfg.train.dataset != "world":
        raise ValueError(f"distill.unlabelled: 'world' needs train.dataset 'world', not "
                         f"{cfg.train.dataset!r} (use auto, \"\" or a folder of images)")
    if u not in ("", "world") and not Path(u).expanduser().is_dir():
        raise FileNotFoundError(f"distill.unlabelled: {Path(u).expanduser()}: folder not found")
    return u


AUTO_VIEWS = 2  # distill.views: -1 (auto) → this many views where there is nothing unlabelled


def views_of(cfg: RunConfig) -> int:
    """The views per training image: ``distill.views``, or for ``-1`` (auto) :data:`AUTO_VIEWS`
    when the run has no unlabelled images (a real data set) and none when it has some."""
    v = cfg.distill.views
    if v >= 0:
        return v
    return 0 if unlabelled_source(cfg) else AUTO_VIEWS


def expanded_recipe(cfg: RunConfig) -> dict:
    """Everything the expanded set and its pseudo-labels depend on, besides the teacher."""
    t, s = cfg.train, cfg.shared
    return {"views": views_of(cfg), "unlabelled": unlabelled_source(cfg), "seed": s.seed,
            "dataset": t.dataset, "split": t.split,
            "max_images": t.max_images or (48 if s.smoke else 0),
            "img_size": cfg.model.img_size, "test_crops": t.test_crops}


def expanded_table(cfg: RunConfig, train: pd.DataFrame, root: Path, out: Path) -> pd.DataFrame:
    """Write the expanded set's images under ``out`` and list them (no labels yet).

    Returns:
        Columns ``image`` (relative to ``out``), ``content``, ``kind`` (view|unlabelled),
        ``origin`` (source image).
    """
    size = cfg.model.img_size
    rows = []
    for i, r in enumerate(train.itertuples(index=False)):
        im = load_rgb(root / r.image)
        for v in range(views_of(cfg)):
            rng = np.random.default_rng([cfg.shared.seed, i, v])
            rel = f"views/{i:06d}_v{v}.png"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            make_view(im, size, rng).save(out / rel)
            rows.append((rel, r.content, "view", r.image))
    source = unlabelled_source(cfg)
    if source == "world":
        extra = pd.read_csv(paths.world_unlabelled_table(), dtype=str)
        extra = extra[extra["content"].isin(set(train["content"].astype(str)))]
        src_root = paths.world_dir()
        items = list(zip(extra["image"], extra["content"]))
    elif source:
        src_root = Path(source).expanduser()
        items = [(p.relative_to(src_root).as_posix(), f"unlabelled:{p.stem}")
                 for p in sorted(src_root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    else:
        items = []
    for k, (img, content) in enumerate(items):
        rel = f"unlabelled/{k:06d}{Path(img).suffix.lower()}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / img, out / rel)
        rows.append((rel, content, "unlabelled", img))
    return pd.DataFrame(rows, columns=["image", "content", "kind", "origin"])


def pseudo_label(cfg: RunConfig, teacher_ckpt: Path, out: Path, progress: bool = True
                 ) -> pd.DataFrame:
    """Build the expanded set, score it with the teacher, write ``pseudo_labels.csv/.json``.

    Returns:
        The pseudo-label table (``image, mos, content, kind, origin``), ``mos`` = teacher.
    """
    _, rank, world = init_distributed(resolve_device(cfg.train.device))
    csv, side = out / "pseudo_labels.csv", out / "pseudo_labels.json"
    if rank == 0:  # rank 0 alone reads the teacher (it wrote it) and builds the set
        digest, recipe = sha256(teacher_ckpt), expanded_recipe(cfg)
        done = csv.is_file() and side.is_file() and (
            lambda m: m.get("teacher_sha256") == digest and m.get("recipe") == recipe)(
            read_json(side))
        if not done:
            _build_pseudo_labels(cfg, teacher_ckpt, out, digest, recipe, progress)
    barrier(world)  # every rank then reads rank 0's files
    return pd.read_csv(csv, dtype={"content": str})


def _build_pseudo_labels(cfg: RunConfig, teacher_ckpt: Path, out: Path, digest: str,
                         recipe: dict, progress: bool) -> None:

    t, s = cfg.train, cfg.shared
    csv, side = out / "pseudo_labels.csv", out / "pseudo_labels.json"
    for sub in ("views", "unlabelled"):  # an earlier recipe's images: not part of this set
        shutil.rmtree(out / sub, ignore_errors=True)
    root, parts = load_parts(t.dataset, t.split, s.data_root, recipe["max_images"])
    table = expanded_table(cfg, parts["train"], root, out)
    if table.empty:
        raise ValueError("distillation: the expanded set is empty (distill.views is 0 and there "
                         "are no unlabelled images: set distill.views or distill.unlabelled)")
    origins = [o for o, k in zip(table["origin"], table["kind"]) if k == "view"]
    check_no_leak(table["content"], parts, origins)  # before the teacher scores anything
    teacher, _ = load_model(teacher_ckpt, t.device)
    table["mos"] = 0.0
    ds = IQADataset(table, out, TestTransform(cfg.model.img_size, t.test_crops))
    pred, _ = predict(teacher, DataLoader(ds, batch_size=64, num_workers=t.workers),
                      resolve_device(t.device), t.amp, "pseudo-label", progress)
    table["mos"] = np.clip(pred, 0.0, 1.0)
    table = table[["image", "mos", "content", "kind", "origin"]]
    write_csv_atomic(table, csv)
    write_json({"teacher": str(teacher_ckpt.relative_to(out.parent))
                if teacher_ckpt.is_relative_to(out.parent) else teacher_ckpt.name,
                "teacher_sha256": digest, "rows": len(table),
                "views": int((table["kind"] == "view").sum()),
                "unlabelled": int((table["kind"] == "unlabelled").sum()),
                "dataset": t.dataset, "split": t.split, "recipe": recipe}, side)


def run_distill(cfg: RunConfig, run_dir: str | Path, upstream: str | Path | None = None,
                progress: bool = True) -> dict:
    """Teacher → pseudo-labels → student; returns the student's metrics (plus the teacher's).

    Args:
        cfg: the run configuration (``distill`` section: views, unlabelled, λ_kd, teacher).
        run_dir: folder of the student; ``teacher/`` and ``expanded/`` go inside it.
        upstream: upstream checkpoint for ``model.weights == "upstream"``.
        progress: show progress.
    Returns:
        The student's metrics dictionary, with ``teacher`` (its test metrics) added.
    """
    run_dir = Path(run_dir)
    unlabelled_source(cfg)  # a bad distill.unlabelled fails now, not after the teacher
    _, rank, _ = init_distributed(resolve_device(cfg.train.device))
    progress = progress and rank == 0  # under torchrun, one voice
    tcfg = teacher_config(cfg)
    teacher_dir = paths.teacher_dir(run_dir)
    if progress:
        print("distill: stage 1, teacher", flush=True)
    teacher = fit(tcfg, teacher_dir, upstream, progress=progress)
    if progress:
        print("distill: stage 2, pseudo-labels", flush=True)
    out = paths.expanded_dir(run_dir)
    table = pseudo_label(cfg, paths.run_model(teacher_dir), out, progress)
    extra = PseudoLabelled(IQADataset(table, out, TrainTransform(cfg.model.img_size),
                                      cfg.train.cache))
    if progress:
        print(f"distill: stage 3, student on {len(extra)} expanded samples", flush=True)
    metrics = fit(cfg, run_dir, upstream, DistillObjective(cfg.qfm, cfg.distill.lambda_kd),
                  progress=progress, extra_train=extra)
    metrics["teacher"] = {"test": teacher["test"], "val": teacher["val"]}
    metrics["expanded"] = {"rows": len(table), "views": int((table["kind"] == "view").sum()),
                           "unlabelled": int((table["kind"] == "unlabelled").sum())}
    if rank == 0:
        write_json(metrics, paths.run_metrics(run_dir))
    return metrics
