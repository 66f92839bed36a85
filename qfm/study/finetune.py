"""The fine-tuning regime: the study's variants with the upstream's last stage(s) trained.

The frozen study answers its questions on a frozen ImageNet upstream; the paper fine-tunes its
backbone. Here the backbone's last ``finetune.stages`` stage(s) train in every run
(:mod:`qfm.models.tail`) while the stages before them stay frozen, and what enters the tail is
cached once, not the images:

* the world: :func:`extract_world` caches every world image; the group
  ``study.groups.finetune`` runs on it like any group (both in stage ``world_finetune``, whose
  rows are committed in ``measured/world_finetune/``: 15 min on 2 cores);
* CLIVE: :func:`run_finetune` (stage ``finetune``) caches every photo and its views
  (``finetune.livec``) and runs the same group's variants × seeds on CLIVE's splits, where the
  data is; its results are committed in ``measured/livec_finetune/``.

Each variant runs with its frozen study's tuned values (the world's ``tune.json``, CLIVE's
``measured/livec/tune.json``): nothing is tuned again, for any variant alike (stated on the
pages), and the tail trains at :data:`qfm.models.tail.LR_SCALE` × the head's rate.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from qfm import paths
from qfm.config import ConfigError, ModelConfig, load_params, read_params, to_dict
from qfm.core.checkpoint import save_tensors, sidecar
from qfm.data.transforms import load_rgb, to_tensor
from qfm.files import log_seconds, read_json, write_json
from qfm.models.tail import LR_SCALE, layout, packed
from qfm.study import livec, real, record, stages
from qfm.study.real import VIEW, fingerprint
from qfm.study.tokens import build_backbone, world_images

GROUP = "finetune"  # study.groups.<GROUP>: the regime's variants and seeds


def _save(rows: list[torch.Tensor], names: list[str], info: dict, cfg: ModelConfig, out,
          extra: dict, t0: float) -> dict:
    tokens = torch.cat(rows).half().contiguous()
    meta = {"kind": "features", "model": to_dict(cfg), "images": names,
            "tail": {**info, "lr_scale": LR_SCALE}, "shape": list(tokens.shape), **extra}
    save_tensors({"tokens": tokens}, out, meta)  # no wall time: the same inputs, the same bytes
    seconds = log_seconds("features", time.perf_counter() - t0, out=Path(out).name)
    return {**{k: v for k, v in meta.items() if k != "images"}, "seconds": seconds}


@torch.no_grad()
def extract_world(cfg: ModelConfig, out: str | Path, stages: int = 1,
                  world: str | Path | None = None, batch_size: int = 64,
                  max_images: int = 0, progress: bool = True) -> dict:
    """Packed tail inputs of every world image (labelled and unlabelled), at the world's size.

    Returns:
        The sidecar's metadata (``tail``: the layout every run rebuilds its tail from).
    """
    root = Path(world) if world else paths.world_dir()
    names = world_images(root)["image"].tolist()[:max_images or None]
    bb = build_backbone(cfg)
    info = layout(bb, stages)
    t0, rows = time.perf_counter(), []
    for i in tqdm(range(0, len(names), batch_size), desc="tail inputs", mininterval=5.0,
                  disable=not progress):
        x = torch.stack([to_tensor(load_rgb(root / p)) for p in names[i:i + batch_size]])
        rows.append(packed(bb, x, info))
    return _save(rows, names, info, cfg, out, {}, t0)


@torch.no_grad()
def extract_real(cfg: ModelConfig, root: str | Path, table: pd.DataFrame, recipe, out,
                 stages: int = 1, batch_size: int = 8, progress: bool = True) -> dict:
    """Packed tail inputs of a real data set's images and their views (a
    :class:`~qfm.study.real.TokenRecipe`: the image and its views must share one side)."""
    if recipe.views and recipe.view_crop != recipe.resize:
        raise ConfigError(f"finetune.livec.view_crop: {recipe.view_crop} must equal resize "
                          f"{recipe.resize} (an image and its views share one packed size)")
    bb = build_backbone(cfg)
    info = layout(bb, stages)
    images = table["image"].tolist()
    mains, views, t0 = [], [], time.perf_counter()
    for i in tqdm(range(0, len(images), batch_size), desc="tail inputs", mininterval=5.0,
                  disable=not progress):
        pairs = [recipe.crops(Path(root) / p) for p in images[i:i + batch_size]]
        mains.append(packed(bb, torch.stack([m for m, _ in pairs]), info))
        if recipe.views:
            views.append(packed(bb, torch.cat([v for _, v in pairs]), info))
    names = images + [f"{p}{VIEW}{j}" for p in images for j in range(recipe.views)]
    return _save(mains + views, names, info, cfg, out,
                 {"recipe": vars(recipe), "data": fingerprint(table)}, t0)


def finetune_section(raw: dict) -> tuple[dict, dict]:
    """(params.yaml's ``finetune`` section, the regime's study group)."""
    ft = raw.get("finetune")
    if not isinstance(ft, dict):
        raise ConfigError("finetune: section missing in params.yaml")
    for key in ("stages", "livec"):
        if key not in ft:
            raise ConfigError(f"finetune.{key}: missing")
    group = (raw.get("study") or {}).get("groups", {}).get(GROUP)
    if not isinstance(group, dict):
        raise ConfigError(f"study.groups.{GROUP}: missing (the regime's variants and seeds)")
    return ft, group


def shaping_params(raw: dict) -> dict:
    """What the CLIVE regime's results depend on: the CLIVE study's parameters, this section
    and the regime's group (its code fingerprint includes them)."""
    ft, group = finetune_section(raw)
    return {**livec.shaping_params(raw), "finetune": ft, "group": group}


def status(raw: dict, out_dir: str | Path) -> dict:
    """Whether the committed CLIVE regime results exist and match the current code/params."""
    return record.status(out_dir, shaping_params(raw), CODE)


def run_finetune(params_path: str | Path = "params.yaml",
                       out_dir: str | Path | None = None, progress: bool = True) -> dict:
    """The ``finetune`` stage: the regime on CLIVE where the data is (else nothing
    changes). Writes ``finetune.json`` (one row per run), ``finetune.predictions.json`` (each
    run's test predictions, written by :func:`qfm.study.stages.run_group`) and
    ``provenance.json``; each variant
    runs with the values CLIVE's frozen study tuned (``measured/livec/tune.json``)."""
    t0 = time.perf_counter()
    raw = read_params(params_path)
    ft, group = finetune_section(raw)
    cl, study = livec.livec_section(raw)
    out = Path(out_dir) if out_dir else paths.measured_dir("livec_finetune")
    shaping = shaping_params(raw)
    root = paths.find_dataset("livec", cl["root"])
    if root is None:
        out.mkdir(parents=True, exist_ok=True)
        st = record.status(out, shaping, CODE)
        print(f"finetune: no CLIVE copy found: {out} unchanged — {st['why']}", flush=True)
        return {"status": "no data", **st}
    tuned = paths.measured_dir("livec") / "tune.json"
    if not tuned.is_file():
        raise ConfigError(f"{tuned}: missing — run the livec stage first (its tuned values "
                          f"are this regime's)")
    base = load_params(params_path)
    src = real.source("livec", root, int(cl["splits"]))
    recipe = real.TokenRecipe(**{k: int(v) for k, v in ft["livec"].items()})
    feats = paths.features_dir() / "livec_tail.safetensors"
    data = real.fingerprint(src.table)
    want = {"model": to_dict(base.model), "recipe": vars(recipe), "data": data}
    cached = read_json(sidecar(feats)) if sidecar(feats).is_file() else {}
    if not feats.is_file() or any(cached.get(k) != v for k, v in want.items()) or \
            cached.get("tail", {}).get("stages") != int(ft["stages"]):
        extract_real(base.model, root, src.table, recipe, feats, int(ft["stages"]),
                     progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    record.keep_notice(root, out)
    study = {**study, "features": "livec_tail", "seeds": list(group["seeds"]),
             "groups": {GROUP: {"spurious": 0.0, "variants": list(group["variants"])}}}
    rows = stages.run_group(params_path, GROUP, out / "finetune.json", tuned, None, progress,
                            study=study, source=src)
    prov = record.provenance(data, shaping, time.perf_counter() - t0,
                               "dvc repro livec_finetune (papermill notebooks/livec_finetune.ipynb)",
                               CODE)
    prov.update(recipe=vars(recipe), stages=int(ft["stages"]), lr_scale=LR_SCALE,
                runs=len(rows), tuned_from=str(tuned))
    write_json(prov, out / "provenance.json")
    return {"status": "measured", "provenance": prov}


# the stage's code: the CLIVE study's closure, this module and the tail
CODE = ("qfm/study/finetune.py", "qfm/models/tail.py")
