"""The embedded default: a miniature IQA world built from photos shipped inside packages.

Recipe (all seeded by ``WorldConfig.seed``; the book's Method page shows it with figures):

* **Photos.** Colour photos shipped with scikit-image, scikit-learn (``china``, ``flower``)
  and matplotlib (``grace_hopper``): no download. ``heldout_photos`` never enter training,
  validation or test: their contents form the ``heldout`` part (cross-content test).
* **Contents = non-overlapping tiles.** Each photo is cut into a grid of square tiles of side
  ``max(size, short side // tile_rows)`` that share no pixel; flat tiles (grey std < 8, e.g.
  the retina's black corners) are dropped; at most ``contents_per_photo`` tiles per photo
  (seeded choice), each resized to ``size``. One tile = one content (reference image).
  Splits assign whole tiles to train / val / test, so **validation and test never share a
  pixel with training** (``pixel_overlap`` measures it from the tile boxes).
* **Distortions.** Every content × distortion × level (1 = mild … 5 = severe): Gaussian blur,
  motion blur, Gaussian noise, JPEG, contrast loss, over-saturation, pixelation
  (parameters in :data:`LEVELS`).
* **Pseudo-MOS.** A full-reference measure against the pristine tile, like the weak labels of
  KADIS-700k: ``100 · (0.6 · SSIM + 0.4 · clip((PSNR − 12) / 30, 0, 1))`` with colour SSIM
  (scikit-image, 7×7 window) and PSNR in dB. 0–100, higher = better.
* **Splits.** By content, ``split`` fractions of the in-world tiles, one file per split index
  (``split_k.csv``, parts train/val/test/heldout).
* **Unlabelled extras.** ``unlabelled_per_content`` further distorted images per content
  (random type, random in-between severity), without MOS, for distillation; a run uses only
  those of its own training contents.
* **Semantic noise knob** (:func:`spurious_train`): in the *training* part only, half of each
  photo's training images are kept, chosen so that with strength ``s`` a photo's quality is
  predictable from the photo itself; validation, test and held-out stay whole.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import matplotlib.cbook as cbook
import numpy as np
import pandas as pd
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_sample_image
from tqdm import tqdm

from qfm import paths
from qfm.config import WorldConfig
from qfm.data.distortions import LEVELS, distort, pseudo_mos
from qfm.data.splits import split_by_content, write_split
from qfm.data.table import make_table, write_csv_atomic
from qfm.files import atomic_write

UPSTREAM_SIZE = 96  # side of the toy-upstream crops
UPSTREAM_PER_CLASS = 48  # pristine crops per class (photo) for the toy upstream
FLAT_STD = 8.0  # tiles whose grey-level std is below this are dropped (no content)
OUTSIDE_PHOTOS = ("grace_hopper",)  # shipped photos kept out of every world (predict check)


def load_photo(name: str) -> np.ndarray:
    """One colour photo shipped inside a package, as uint8 (H, W, 3).

    ``china`` and ``flower`` come with scikit-learn, ``grace_hopper`` with matplotlib, every
    other name is a scikit-image photo.
    """
    if name in ("china", "flower"):

        img = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":

        with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as im:
            img = np.asarray(im.convert("RGB"))
    else:
        try:
            img = getattr(skdata, name)()
        except AttributeError:
            raise ValueError(f"world.photos: unknown photo {name!r}") from None
    if isinstance(img, tuple):  # stereo_motorcycle → (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"world.photos: {name!r} is not a colour photo")
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(float(img.max() - img.min()), 1e-8)).astype(np.uint8)
    return img


def tile_boxes(shape: tuple[int, ...], size: int, rows: int) -> list[tuple[int, int, int]]:
    """Non-overlapping square tiles ``(y, x, side)`` of a photo, row by row.

    The side is ``max(size, short side // rows)``; the grid is centred, tiles touch but never
    share a pixel.
    """
    h, w = shape[:2]
    side = max(size, min(h, w) // rows)
    ny, nx = h // side, w // side
    y0, x0 = (h - ny * side) // 2, (w - nx * side) // 2
    return [(y0 + i * side, x0 + j * side, side) for i in range(ny) for j in range(nx)]


def make_contents(cfg: WorldConfig) -> list[dict]:
    """The pristine contents, deterministic for the seed.

    Returns:
        ``[{"content", "photo", "y", "x", "side", "image"}, ...]``: the tile's box in its photo
        and the tile resized to ``cfg.size`` (uint8).
    """
    out = []
    for p, name in enumerate(cfg.photos):
        if name in OUTSIDE_PHOTOS:
            raise ValueError(f"world.photos: {name!r} is kept outside the world "
                             f"(the predict check's unseen photo)")
        photo = load_photo(name)
        boxes = []
        for y, x, side in tile_boxes(photo.shape, cfg.size, cfg.tile_rows):
            grey = photo[y:y + side, x:x + side].astype(np.float64).mean(2)
            if grey.std() >= FLAT_STD:
                boxes.append((y, x, side))
        rng = np.random.default_rng([cfg.seed, 1, p])
        if len(boxes) > cfg.contents_per_photo:
            keep = sorted(rng.choice(len(boxes), cfg.contents_per_photo, replace=False))
            boxes = [boxes[i] for i in keep]
        for k, (y, x, side) in enumerate(boxes):
            tile = Image.fromarray(photo[y:y + side, x:x + side])
            if side != cfg.size:
                tile = tile.resize((cfg.size, cfg.size), Image.BICUBIC)
            out.append({"content": f"{name}_{k:02d}", "photo": name, "y": y, "x": x,
                        "side": side, "image": np.asarray(tile)})
    return out


def make_splits(contents: pd.DataFrame, cfg: WorldConfig, n_splits: int) -> list[pd.DataFrame]:
    """Content splits: in-world tiles to train/val/test, held-out photos' tiles to heldout.

    Args:
        contents: one row per content (``content``, ``photo``).
    Returns:
        ``n_splits`` frames ``content,split``.
    """
    out = []
    inside = contents[~contents["photo"].isin(cfg.heldout_photos)]
    for k in range(n_splits):
        part = split_by_content(inside.assign(image=inside["content"]), seed=cfg.seed * 1000 + k, fractions=tuple(cfg.split))
        frame = pd.DataFrame({"content": inside["content"].values, "split": part["split"].values})
        held = contents[contents["photo"].isin(cfg.heldout_photos)]
        frame = pd.concat([frame, pd.DataFrame({"content": held["content"].values,
                                                "split": "heldout"})], ignore_index=True)
        out.append(frame)
    return out


def spurious_train(train: pd.DataFrame, strength: float, seed: int) -> pd.DataFrame:
    """The training part under the semantic-noise knob ``world.spurious``.

    Half of each photo's training images are kept, at every strength (so training sets have
    the same size). Each photo is drawn "mild" or "severe" (a seeded half of the photos each).
    An image's keep score is ``s·φ + (1 − s)·u``: φ its quality rank within the photo (mild
    photos) or one minus it (severe photos), u uniform noise. At 0 the kept half is random;
    at 1 mild photos keep their best half and severe photos their worst, so the photo (its
    semantics) predicts quality in training, and misleads on the balanced val/test parts.

    Args:
        train: the training rows (``mos``, ``content``; the photo is the content's prefix).
        strength: s in [0, 1].
        seed: the split's seed.
    Returns:
        The kept rows, in their original order.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"world.spurious: must be in [0, 1], got {strength}")
    photo = train["content"].str.rsplit("_", n=1).str[0]
    names = sorted(photo.unique())
    rng = np.random.default_rng([seed, 5])
    severe = set(np.asarray(names)[rng.permutation(len(names))[: len(names) // 2]])
    keep = np.zeros(len(train), bool)
    for name in names:
        idx = np.flatnonzero((photo == name).to_numpy())
        q = train["mos"].to_numpy()[idx].argsort().argsort() / max(len(idx) - 1, 1)
        phi = 1.0 - q if name in severe else q
        score = strength * phi + (1.0 - strength) * rng.uniform(size=len(idx))
        keep[idx[np.argsort(-score, kind="stable")[: (len(idx) + 1) // 2]]] = True
    return train[keep]


def pixel_overlap(contents: pd.DataFrame, split: pd.DataFrame) -> dict[str, int]:
    """Pixels that a val/test/heldout tile shares with a training tile of the same photo.

    Args:
        contents: ``contents.csv`` of a world (``content, photo, y, x, side``).
        split: ``content,split`` of one split.
    Returns:
        ``{part: shared pixels}`` for val, test and heldout (0 = leak-free).
    """
    rows = contents.merge(split, on="content")
    out = {}
    for part in ("val", "test", "heldout"):
        shared = 0
        for _, a in rows[rows["split"] == part].iterrows():
            for _, b in rows[(rows["split"] == "train") & (rows["photo"] == a["photo"])].iterrows():
                dy = min(a.y + a.side, b.y + b.side) - max(a.y, b.y)
                dx = min(a.x + a.side, b.x + b.side) - max(a.x, b.x)
                shared += max(dy, 0) * max(dx, 0)
        out[part] = int(shared)
    return out


def make_upstream(contents: list[dict], train_contents: set[str], per_class: int = UPSTREAM_PER_CLASS,
                  size: int = UPSTREAM_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pristine sub-crops of training tiles labelled by photo (the toy upstream task).

    Only tiles in ``train_contents`` are used, so the toy upstream never sees a validation,
    test or held-out pixel of the splits it serves.

    Returns:
        images (N, size, size, 3) uint8, labels (N,) int64, class names (photos).
    """
    names = sorted({c["photo"] for c in contents if c["content"] in train_contents})
    images, labels = [], []
    rng = np.random.default_rng([seed, 2])
    for label, name in enumerate(names):
        tiles = [c["image"] for c in contents if c["photo"] == name and c["content"] in train_contents]
        for i in range(per_class):
            tile = tiles[i % len(tiles)]
            side = int(rng.uniform(0.6, 1.0) * tile.shape[0])
            y = int(rng.integers(0, tile.shape[0] - side + 1))
            x = int(rng.integers(0, tile.shape[1] - side + 1))
            crop = Image.fromarray(tile[y:y + side, x:x + side]).resize((size, size), Image.BICUBIC)
            images.append(np.asarray(crop))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64), names


def _save_png(arr: np.ndarray, path: Path) -> None:
    atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG", compress_level=1))


def _save_npz(path: Path, **arrays) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: numpy would add ".npz" to a bare name
            np.savez_compressed(fh, **arrays)
    atomic_write(path, write)


def generate(cfg: WorldConfig, out_dir: str | Path | None = None, n_splits: int = 10,
             progress: bool = True) -> Path:
    """Write the embedded default world to ``out_dir`` (default ``paths.world_dir()``).

    Args:
        cfg: the world's recipe.
        out_dir: target folder; ``images/``, ``unlabelled/``, ``table.csv``, ``contents.csv``,
            ``unlabelled.csv``, ``upstream.npz``, ``splits/split_k.csv``, ``world.json``.
        n_splits: how many seeded content splits to write (seed k = split k).
        progress: show a progress bar.
    Returns:
        The folder written.
    """
    out = Path(out_dir) if out_dir is not None else paths.world_dir()
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "unlabelled").mkdir(parents=True, exist_ok=True)
    for kind in cfg.distortions:
        if kind not in LEVELS:
            raise ValueError(f"world.distortions: unknown distortion {kind!r} "
                             f"(known: {', '.join(LEVELS)})")
    if not 1 <= cfg.levels <= 5:
        raise ValueError(f"world.levels: must be 1..5, got {cfg.levels}")
    unknown = sorted(set(cfg.heldout_photos) - set(cfg.photos))
    if unknown:
        raise ValueError(f"world.heldout_photos: {unknown[0]!r} is not in world.photos")
    contents = make_contents(cfg)
    rows = {"image": [], "raw": [], "content": [], "distortion": [], "level": []}
    extra = {"image": [], "content": []}
    total = len(contents) * (len(cfg.distortions) * cfg.levels + cfg.unlabelled_per_content)
    bar = tqdm(total=total, desc="world", unit="img", disable=not progress)
    for c, item in enumerate(contents):
        cid, ref = item["content"], item["image"]
        _save_png(ref, out / "images" / f"{cid}_ref.png")
        for d, kind in enumerate(cfg.distortions):
            for lev in range(1, cfg.levels + 1):
                rng = np.random.default_rng([cfg.seed, 3, c, d, lev])
                img = distort(ref, kind, LEVELS[kind][lev - 1], rng)
                rel = f"images/{cid}_{kind}_{lev}.png"
                _save_png(img, out / rel)
                for k, v in zip(rows, (rel, pseudo_mos(ref, img), cid, kind, lev)):
                    rows[k].append(v)
                bar.update()
        for u in range(cfg.unlabelled_per_content):
            rng = np.random.default_rng([cfg.seed, 4, c, u])
            kind = cfg.distortions[int(rng.integers(len(cfg.distortions)))]
            grid = LEVELS[kind]
            pos = float(rng.uniform(0, len(grid) - 1))  # in-between severity
            i = int(pos)
            strength = grid[i] + (pos - i) * (grid[min(i + 1, len(grid) - 1)] - grid[i])
            rel = f"unlabelled/{cid}_u{u}.png"
            _save_png(distort(ref, kind, strength, rng), out / rel)
            extra["image"].append(rel)
            extra["content"].append(cid)
            bar.update()
    bar.close()
    table = make_table(rows["image"], rows["raw"], rows["content"], lo=0.0, hi=100.0,
                       higher_better=True, distortion=rows["distortion"], level=rows["level"])
    write_csv_atomic(table, out / "table.csv")
    write_csv_atomic(pd.DataFrame(extra), out / "unlabelled.csv")
    boxes = pd.DataFrame([{k: v for k, v in c.items() if k != "image"} for c in contents])
    write_csv_atomic(boxes, out / "contents.csv")
    splits = make_splits(boxes, cfg, n_splits)
    overlap = {}
    for k, frame in enumerate(splits):
        write_split(table[["image", "content"]].merge(frame, on="content"),
                    out / "splits" / f"split_{k}.csv")
        overlap[k] = pixel_overlap(boxes, frame)
    # toy upstream: tiles that are training tiles in splits 0-2 (never their val/test pixels)
    always = set.intersection(*[set(f.loc[f["split"] == "train", "content"]) for f in splits[:3]])
    images, labels, names = make_upstream(contents, always, seed=cfg.seed)
    _save_npz(out / "upstream.npz", images=images, labels=labels, names=np.asarray(names))
    summary = {"config": asdict(cfg), "images": len(table), "contents": len(contents),
               "contents_per_photo": boxes.groupby("photo").size().to_dict(),
               "unlabelled": len(extra["image"]), "upstream_images": int(len(labels)),
               "upstream_classes": len(names), "upstream_tiles": len(always),
               "splits": n_splits, "pixel_overlap": overlap,
               "mos_mean": float(table["raw"].mean()), "mos_std": float(table["raw"].std())}
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    atomic_write(out / "world.json", lambda tmp: Path(tmp).write_text(text))
    return out
