"""The default model for ``qfm predict``: the frozen upstream joined to the chosen head.

The CLIVE study (:mod:`qfm.study.livec`) stores the head of the variant with the best mean
validation SRCC, refit on every image; the world's study (:mod:`qfm.study.stages`) a head of
its own. :func:`export_default` joins a head to the ImageNet backbone it was trained on
(through cached tokens) into one checkpoint — ``models/default.safetensors`` (CLIVE) and
``models/world.safetensors`` — and :func:`unseen_ladders` checks it on a photo no world
contains.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats

from qfm.config import ModelConfig, from_dict
from qfm.core.checkpoint import fit_state, load_tensors, save_tensors
from qfm.core.weights import pretrained_model
from qfm.data.distortions import LEVELS, distort
from qfm.data.world import OUTSIDE_PHOTOS, load_photo
from qfm.files import FileError, write_json
from qfm.predict import score_files
from qfm.study.default_rule import choose

LADDER = ("gaussian_blur", "gaussian_noise", "jpeg", "pixelate", "motion_blur")


def export_default(head: str | Path, out: str | Path, check_out: str | Path | None = None,
                   rule_out: str | Path | None = None, measured: str | Path = "measured"
                   ) -> dict:
    """Join the frozen upstream and the chosen head into one checkpoint for ``qfm predict``.

    Args:
        head: the head saved by :func:`run_group` (group main).
        out: the full model's ``.safetensors`` (sidecar: config, label scale, provenance).
        check_out: if given, score distortion ladders of a photo no world contains and write
            the result there (:func:`unseen_ladders`).
        rule_out: if given, the head must be the one :func:`qfm.study.default_rule.choose`
            picks across CLIVE's regimes (read from ``measured``); the rule's table is written
            there and into the sidecar (else a one-line error says what to build).
    Returns:
        The head's metadata.
    """
    rule = choose(measured) if rule_out is not None else None
    if rule is not None and rule["refit"] is None:
        raise FileError(f"{measured}: the rule chose the {rule['regime']} regime's "
                        f"{rule['variant']} (validation SRCC {rule['val_srcc']}): "
                        f"{rule['build']}")
    tensors, meta = load_tensors(head)
    if rule is not None and (Path(rule["refit"]).resolve() != Path(head).resolve()
                             or meta.get("variant") != rule["variant"]):
        raise FileError(f"{head}: not the rule's choice ({rule['regime']} {rule['variant']}, "
                        f"{rule['refit']})")
    if rule is not None and meta.get("splits") is not None:  # a refit read from split rows
        have = next(r["splits"] for r in rule["table"] if r["regime"] == rule["regime"])
        if len(meta["splits"]) != have:
            raise FileError(f"{head}: refit from {len(meta['splits'])} splits' rows, the "
                            f"{rule['regime']} regime's {rule['variant']} has {have} now: "
                            f"{rule['build'] or 'refit it again'}")
    mcfg = from_dict(ModelConfig, meta["config"]["model"], "model")
    model = pretrained_model(mcfg)  # the ImageNet backbone
    state = model.state_dict()
    state.update(tensors)
    fit_state(model, state, str(head))
    config = meta["config"]
    pre = meta.get("preprocess")
    if pre:  # a real data set's model: the photo's short side resized, then its crop(s) of
        # ``crop`` px scored (the frozen head: one crop, the whole resized photo's centre)
        config = {**config, "model": {**config["model"],
                                      "img_size": pre.get("crop") or pre["short_side"]},
                  "train": {**config["train"], "test_crops": pre["crops"]}}
    keep = ("variant", "seed", "epochs", "images", "val_srcc", "val_srcc_by_variant", "splits",
            "test_view", "chosen_on", "trained_on")
    sidecar = {"kind": "model", "config": config, "dataset": meta.get("dataset", "world"),
               "split": meta.get("seed", "all"), "label_scale": {"offset": 0.0, "scale": 100.0},
               "preprocess": pre, "source": {k: meta[k] for k in keep if k in meta}}
    if rule is not None:
        sidecar["source"].update(regime=rule["regime"], regime_rule=rule["rule"],
                                 by_regime=rule["table"], common_splits=rule["common_splits"])
    save_tensors({k: v.contiguous() for k, v in model.state_dict().items()}, out, sidecar)
    if rule is not None:
        write_json(rule, rule_out)
    if check_out is not None:
        write_json(unseen_ladders(out), check_out)
    return meta


def unseen_ladders(checkpoint: str | Path, photo: str = "grace_hopper") -> dict:
    """Score 5-level distortion ladders of a photo that no world contains.

    A usable scorer gives the pristine crop the highest score and lower scores as the level
    rises: per distortion, the Spearman correlation between level (0 = pristine … 5) and
    score should be −1. Reported, never tuned on.
    """


    if photo not in OUTSIDE_PHOTOS:
        raise ValueError(f"{photo!r} is a world photo; the check needs an unseen one")
    img = load_photo(photo)
    h, w = img.shape[:2]
    side = min(h, w, 384)
    img = img[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]

    out = {"photo": photo, "crop": side, "ladders": {}}
    with tempfile.TemporaryDirectory() as tmp:
        files, keys = [], []
        for kind in LADDER:
            for lev in range(6):
                rng = np.random.default_rng([7, lev])
                arr = img if lev == 0 else distort(img, kind, LEVELS[kind][lev - 1], rng)
                f = Path(tmp) / f"{kind}_{lev}.png"
                Image.fromarray(arr).save(f)
                files.append(str(f))
                keys.append((kind, lev))
        df = score_files(files, checkpoint, workers=0, progress=False)
        by_name = dict(zip(df["path"].map(lambda f: Path(f).name), df["score"]))
        scores = [float(by_name[Path(f).name]) for f in files]
    for kind in LADDER:
        s = [scores[i] for i, k in enumerate(keys) if k[0] == kind]
        rho = float(stats.spearmanr(range(6), s)[0])
        out["ladders"][kind] = {"scores": [float(x) for x in s], "srcc_level": rho,
                                "ordered": bool(all(a > b for a, b in zip(s, s[1:])))}
    return out
