"""The study on a real data set with human opinion scores (CLIVE): the world's variants ×
seeded 80/20 splits, on cached tokens of the same frozen ImageNet upstream.

How an image becomes tokens (:class:`TokenRecipe`, params.yaml's ``livec`` section; chosen
on validation, see the book's Method page): its short side resized to ``resize`` px (500:
CLIVE's own size) and the centre crop of that side — the whole photo — through the frozen
upstream at once; ``views`` more crops are cached as a distilled student's expanded set (a real
data set has no unlabelled images: the views are what ``distill.views`` makes for image
training), scored by its teacher.

Splits: the paper's protocol, 10 seeded random splits of the images, 70 / 10 / 20
(:func:`qfm.data.protocol_splits.make_splits`: the 80 % training part with a validation part
carved out of it, never the test part). Seed k of the study = split k.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from qfm.config import ModelConfig, to_dict
from qfm.core.checkpoint import save_tensors
from qfm.data.protocol_splits import make_splits
from qfm.data.readers import read_dataset
from qfm.data.transforms import decode, eval_boxes, short_side, to_tensor
from qfm.files import log_seconds
from qfm.study.tokens import FeatureBank, build_backbone

VIEW = "#view"  # a view's row name in the cache: "<image>#view<k>"


@dataclass(frozen=True)
class TokenRecipe:
    """How one image becomes tokens: its short side resized to ``resize`` px, the centre
    ``resize``-px crop is the image (a whole CLIVE photo at its own 500 px); ``views`` more
    crops of ``view_crop`` px on a regular grid are a distilled student's expanded set, cut
    from the image at short side ``view_resize`` (0 = ``resize``)."""

    resize: int = 500
    views: int = 4
    view_crop: int = 384
    view_resize: int = 0

    def image(self, path: str | Path) -> Image.Image:
        """The decoded image, short side resized to ``resize`` (bicubic; JPEG drafted first):
        exactly what ``qfm predict`` does with a checkpoint trained on these tokens."""
        return decode(str(path), short_side(self.resize))

    def crops(self, path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
        """(the image's centre crop (3, R, R), its views (V, 3, v, v)), RGB in [0, 1]."""
        im = self.image(path)
        w, h = im.size
        x, y = (w - self.resize) // 2, (h - self.resize) // 2
        main = to_tensor(im.crop((x, y, x + self.resize, y + self.resize)))
        if self.view_resize and self.view_resize != self.resize:
            im = decode(str(path), short_side(self.view_resize))
            w, h = im.size
        boxes = eval_boxes(w, h, self.view_crop, self.views + 1)[1:] if self.views else []
        views = [to_tensor(im.crop((x, y, x + self.view_crop, y + self.view_crop)))
                 for x, y in boxes]
        return main, torch.stack(views) if views else torch.zeros(0, 3, 1, 1)


def fingerprint(table: pd.DataFrame) -> dict:
    """What identifies a data set copy: sha256 of its label values and of its image list."""
    labels = table[["image", "raw"]].to_csv(index=False).encode()
    images = "\n".join(sorted(table["image"])).encode()
    return {"images": int(len(table)), "labels_sha256": hashlib.sha256(labels).hexdigest(),
            "image_list_sha256": hashlib.sha256(images).hexdigest()}


@torch.no_grad()
def extract(cfg: ModelConfig, root: str | Path, table: pd.DataFrame, recipe: TokenRecipe,
            out: str | Path, batch_size: int = 8, progress: bool = True) -> dict:
    """Cache the tokens of every image of ``table`` (under ``root``) and of its views.

    Returns:
        The sidecar's metadata (rows: the images, then ``<image>#view<k>``).
    """
    bb = build_backbone(cfg)
    images = table["image"].tolist()
    mains, views = [], []
    t0 = time.perf_counter()
    for i in tqdm(range(0, len(images), batch_size), desc="tokens", mininterval=5.0,
                  disable=not progress):
        pairs = [recipe.crops(Path(root) / p) for p in images[i:i + batch_size]]
        mains.append(bb(torch.stack([m for m, _ in pairs])).half())
        if recipe.views:
            views.append(bb(torch.cat([v for _, v in pairs])).half())
    tokens = torch.cat(mains + views)
    names = images + [f"{p}{VIEW}{j}" for p in images for j in range(recipe.views)]
    meta = {"kind": "features", "model": to_dict(cfg), "images": names,
            "recipe": vars(recipe), "shape": list(tokens.shape), "data": fingerprint(table)}
    save_tensors({"tokens": tokens.contiguous()}, out, meta)  # no wall time in the file
    seconds = log_seconds("features", time.perf_counter() - t0, out=Path(out).name)
    return {**{k: v for k, v in meta.items() if k != "images"}, "seconds": seconds}


@dataclass
class RealSource:
    """A real data set's table and splits, for the study's workers (picklable)."""

    name: str
    table: pd.DataFrame
    splits: list = field(default_factory=list)  # one frame ``image, split`` per seed

    def load(self, bank: FeatureBank, seed: int, smoke: bool, views: bool,
             split_table: pd.DataFrame | None = None) -> dict:
        """``{part: (tokens, mos, frame)}`` of split ``seed`` (or of ``split_table``, the
        tuner's); ``unlabelled`` = the views of the training images (a distilled student's
        expanded set) when ``views``."""
        frame = self.splits[seed] if split_table is None else split_table
        out = {}
        for part in [p for p in ("train", "val", "test") if p in set(frame["split"])]:
            names = set(frame.loc[frame["split"] == part, "image"])  # an image may be in two
            df = self.table[self.table["image"].isin(names)].reset_index(drop=True)
            if smoke:
                df = df.sample(min(64, len(df)), random_state=0).reset_index(drop=True)
            out[part] = (bank.tokens[bank.rows(df["image"])],
                         torch.tensor(df["mos"].to_numpy(), dtype=torch.float32), df)
        if views:
            k = int(bank.meta.get("recipe", {}).get("views", 0))
            if k < 1:
                raise ValueError("a distilled student on a real data set needs views of its "
                                 "training images: set livec.views >= 1 (the expanded set "
                                 "is empty)")
            names = [f"{p}{VIEW}{j}" for p in out["train"][2]["image"] for j in range(k)]
            df = pd.DataFrame({"image": names, "mos": np.nan})
            out["unlabelled"] = (bank.tokens[bank.rows(names)],
                                 torch.full((len(names),), float("nan")), df)
        return out


    def tuning_split(self, reported: list[int], seed: int, train_fraction: float = 0.7
                     ) -> tuple[pd.DataFrame, dict]:
        """The tuner's split: validation = the images that are no reported seed's test image
        (so no tuned value is chosen on an image it is later tested on), training = a seeded
        sample (``train_fraction`` of all images) of the others; no test part."""
        tested = set().union(*[set(self.splits[k].loc[self.splits[k]["split"] == "test",
                                                      "image"]) for k in reported])
        images = self.table["image"].tolist()
        val = [p for p in images if p not in tested]
        rest = sorted(p for p in images if p in tested)
        n = min(len(rest), max(1, round(train_fraction * len(images))))
        train = sorted(np.random.default_rng(seed).choice(rest, n, replace=False).tolist())
        rows = pd.DataFrame({"image": train + val,
                             "split": ["train"] * len(train) + ["val"] * len(val)})
        return rows, {"train_images": len(train), "val_images": len(val),
                      "reported_seeds": list(reported),
                      "why": "validation = the images that are a test image of no reported "
                             "seed; training = a seeded sample of the others; no test part"}


def source(name: str, root: str | Path, n_splits: int = 10, seed: int = 0) -> RealSource:
    """The table of the data set at ``root`` and its ``n_splits`` seeded protocol splits."""
    table = read_dataset(name, root)
    made = make_splits(name, table, n=n_splits, seed=seed)
    splits = [made[str(k)] for k in range(n_splits)]
    return RealSource(name, table, splits)
