"""The world's distortions and its full-reference pseudo-MOS (see :mod:`qfm.data.world`)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

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
