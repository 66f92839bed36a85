"""The embedded default: a miniature IQA world built from photos shipped with scikit-image.

Recipe (all seeded by ``WorldConfig.seed``):

* **Contents.** From each colour photo, ``contents_per_photo`` square crops at the scales in
  ``scales`` (a crop of side ``size*scale`` resized to ``size``), positions drawn at random.
  Each crop is one *content* (one reference image).
* **Distortions.** Every content × distortion × level (1 = mild … 5 = severe): Gaussian blur,
  motion blur, Gaussian noise, JPEG, contrast loss, over-saturation, pixelation
  (parameters in :data:`LEVELS`).
* **Pseudo-MOS.** A full-reference measure against the pristine crop, like the weak labels of
  KADIS-700k: ``100 · (0.6 · SSIM + 0.4 · clip((PSNR − 12) / 30, 0, 1))`` with colour SSIM
  (scikit-image, 7×7 window) and PSNR in dB. 0–100, higher = better.
* **Splits.** By content, ``split`` fractions, one file per split index (``split_k.csv``).
* **Unlabelled extras.** ``unlabelled_per_content`` further distorted images per content
  (random type, random in-between severity), without MOS, for the distillation step.
* **Upstream semantic task.** Pristine random crops of the photos labelled by photo × image
  quadrant, for pre-training the backbone to tell contents apart (the miniature of ImageNet
  pre-training). These crops are drawn afresh, so they are not the IQA contents.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage
from skimage import data as skdata
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from qfm import paths
from qfm.config import WorldConfig
from qfm.data.splits import split_by_content, write_split
from qfm.data.table import make_table, write_csv_atomic

# Severity parameters, level 1..5 (mild → severe).
LEVELS: dict[str, list[float]] = {
    "gaussian_blur": [0.6, 1.0, 1.6, 2.5, 4.0],      # Gaussian sigma (px)
    "motion_blur": [3, 5, 7, 11, 15],                # line-kernel length (px)
    "gaussian_noise": [6, 12, 20, 32, 50],           # noise sigma on 0-255
    "jpeg": [45, 25, 14, 8, 3],                      # JPEG quality
    "contrast": [0.7, 0.5, 0.35, 0.22, 0.12],        # contrast factor (PIL)
    "saturation": [1.6, 2.2, 3.0, 4.0, 6.0],         # saturation factor (PIL)
    "pixelate": [1.5, 2, 3, 4, 6],                   # down-sampling factor, nearest up
}

UPSTREAM_SIZE = 96  # side of the upstream crops (= the default model's input size)
UPSTREAM_PER_CLASS = 48  # pristine crops per class (photo × quadrant)


def load_photo(name: str) -> np.ndarray:
    """One colour photo shipped with scikit-image, as uint8 (H, W, 3)."""
    try:
        img = getattr(skdata, name)()
    except AttributeError:
        raise ValueError(f"world.photos: unknown scikit-image photo {name!r}") from None
    if isinstance(img, tuple):  # stereo_motorcycle → (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"world.photos: {name!r} is not a colour photo")
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img - img.min()) / max(float(img.max() - img.min()), 1e-8)).astype(np.uint8)
    return img


def _crop(photo: np.ndarray, rng: np.random.Generator, side: int, out: int) -> tuple:
    h, w = photo.shape[:2]
    side = min(side, h, w)
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    patch = Image.fromarray(photo[y:y + side, x:x + side])
    if side != out:
        patch = patch.resize((out, out), Image.BICUBIC)
    return np.asarray(patch), (y + side / 2) / h, (x + side / 2) / w


def distort(img: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one distortion with parameter ``strength`` (see :data:`LEVELS`) to uint8 RGB."""
    pil = Image.fromarray(img)
    if kind == "gaussian_blur":
        out = pil.filter(ImageFilter.GaussianBlur(radius=strength))
    elif kind == "motion_blur":
        length = max(int(round(strength)), 2)
        kernel = np.zeros((length, length))
        kernel[length // 2, :] = 1.0
        kernel = ndimage.rotate(kernel, float(rng.uniform(0, 180)), reshape=False, order=1)
        kernel /= kernel.sum()
        arr = img.astype(np.float64)
        out = np.stack([ndimage.convolve(arr[..., c], kernel, mode="reflect") for c in range(3)], -1)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
    elif kind == "gaussian_noise":
        noisy = img.astype(np.float64) + rng.normal(0.0, strength, img.shape)
        return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    elif kind == "jpeg":
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(round(strength)))
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    elif kind == "contrast":
        out = ImageEnhance.Contrast(pil).enhance(strength)
    elif kind == "saturation":
        out = ImageEnhance.Color(pil).enhance(strength)
    elif kind == "pixelate":
        h, w = img.shape[:2]
        small = pil.resize((max(1, round(w / strength)), max(1, round(h / strength))), Image.BOX)
        out = small.resize((w, h), Image.NEAREST)
    else:
        raise ValueError(f"world.distortions: unknown distortion {kind!r} "
                         f"(known: {', '.join(LEVELS)})")
    return np.asarray(out)


def pseudo_mos(ref: np.ndarray, img: np.ndarray) -> float:
    """Full-reference pseudo-MOS on 0-100 (higher = better); see the module docstring."""
    ssim = structural_similarity(ref, img, channel_axis=2, data_range=255)
    if np.array_equal(ref, img):  # identical: PSNR is infinite
        return float(100.0 * (0.6 * ssim + 0.4))
    psnr = peak_signal_noise_ratio(ref, img, data_range=255)
    return float(100.0 * (0.6 * ssim + 0.4 * np.clip((psnr - 12.0) / 30.0, 0.0, 1.0)))


def _save_png(arr: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(arr).save(tmp, format="PNG", compress_level=1)
    tmp.replace(path)


def make_contents(cfg: WorldConfig) -> list[tuple[str, np.ndarray]]:
    """The pristine contents: ``[(content_id, uint8 image), ...]``, deterministic for the seed."""
    out = []
    for p, name in enumerate(cfg.photos):
        photo = load_photo(name)
        rng = np.random.default_rng([cfg.seed, 1, p])
        for k in range(cfg.contents_per_photo):
            scale = cfg.scales[k % len(cfg.scales)]
            patch, _, _ = _crop(photo, rng, int(round(cfg.size * scale)), cfg.size)
            out.append((f"{name}_{k:02d}", patch))
    return out


def make_upstream(cfg: WorldConfig, per_class: int = UPSTREAM_PER_CLASS,
                  size: int = UPSTREAM_SIZE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pristine crops labelled by photo × quadrant for the upstream semantic task.

    Returns:
        images (N, size, size, 3) uint8, labels (N,) int64, class names.
    """
    images, labels, names = [], [], []
    for p, name in enumerate(cfg.photos):
        photo = load_photo(name)
        h, w = photo.shape[:2]
        rng = np.random.default_rng([cfg.seed, 2, p])
        for q in range(4):
            names.append(f"{name}/q{q}")
            qy, qx = divmod(q, 2)
            sub = photo[qy * h // 2:(qy + 1) * h // 2, qx * w // 2:(qx + 1) * w // 2]
            for _ in range(per_class):
                side = int(rng.uniform(0.5, 1.0) * min(sub.shape[:2]))
                patch, _, _ = _crop(sub, rng, max(side, 16), size)
                images.append(patch)
                labels.append(len(names) - 1)
    return np.stack(images), np.asarray(labels, np.int64), names


def generate(cfg: WorldConfig, out_dir: str | Path | None = None, n_splits: int = 3,
             progress: bool = True) -> Path:
    """Write the embedded default world to ``out_dir`` (default ``paths.world_dir()``).

    Args:
        cfg: the world's recipe.
        out_dir: target folder; ``images/``, ``unlabelled/``, ``table.csv``,
            ``unlabelled.csv``, ``upstream.npz``, ``splits/split_k.csv``, ``world.json``.
        n_splits: how many seeded content splits to write.
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
    contents = make_contents(cfg)
    rows = {"image": [], "raw": [], "content": [], "distortion": [], "level": []}
    extra = {"image": [], "content": []}
    total = len(contents) * (len(cfg.distortions) * cfg.levels + cfg.unlabelled_per_content)
    bar = tqdm(total=total, desc="world", unit="img", disable=not progress)
    for c, (cid, ref) in enumerate(contents):
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
    fr = tuple(cfg.split)
    for k in range(n_splits):
        write_split(split_by_content(table, seed=cfg.seed * 1000 + k, fractions=fr),
                    out / "splits" / f"split_{k}.csv")
    images, labels, names = make_upstream(cfg)
    tmp = out / ".upstream.tmp.npz"
    np.savez_compressed(tmp, images=images, labels=labels, names=np.asarray(names))
    tmp.replace(out / "upstream.npz")
    summary = {"config": asdict(cfg), "images": len(table), "contents": len(contents),
               "unlabelled": len(extra["image"]), "upstream_images": int(len(labels)),
               "upstream_classes": len(names), "splits": n_splits,
               "mos_mean": float(table["raw"].mean()), "mos_std": float(table["raw"].std())}
    write_json_atomic(summary, out / "world.json")
    return out


def write_json_atomic(obj, path: str | Path) -> Path:
    """Write JSON via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
