"""Score images from Python in two lines, as ``qfm predict`` does on the command line::

    import qfm
    scorer = qfm.load_scorer()              # models/default.safetensors (CLIVE-trained)
    scorer("photo.jpg")                     # → 61.3 (MOS scale 0-100, higher = better)
    scorer(pil_image); scorer(tensor)       # a PIL image; RGB in [0, 1], (3, H, W) or (B, 3, H, W)
    scorer(["a.jpg", "b.png"])              # a list → a numpy array

The model is loaded once; each call preprocesses like ``qfm predict`` (the checkpoint's own
resize and deterministic crops) and returns scores on the checkpoint's label scale. No
training code is imported.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from qfm import paths


class Scorer:
    """A loaded checkpoint that scores paths, PIL images and tensors.

    Args:
        checkpoint: a ``.safetensors`` checkpoint (default ``models/default.safetensors``).
        device: ``auto`` | ``cpu`` | ``cuda``.
        runtime: ``torch`` | ``onnx`` (ONNX Runtime on the CPU, :mod:`qfm.onnx_runtime`;
            ``pip install 'qfm[onnx]'``).
    """

    def __init__(self, checkpoint: str | Path | None = None, device: str = "auto",
                 runtime: str = "torch"):
        from qfm.core.inference import load_model
        from qfm.data.transforms import short_side
        from qfm.onnx_runtime import check_runtime, onnx_model
        from qfm.predict import preprocessing_resize

        checkpoint = Path(checkpoint) if checkpoint else paths.default_checkpoint()
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{checkpoint}: no checkpoint (build the default with "
                                    f"`dvc repro` or pass one)")
        onnx = check_runtime(runtime) == "onnx"
        self.model, self.meta = load_model(checkpoint, "cpu" if onnx and device == "auto"
                                           else device)
        self.device = next(self.model.parameters()).device
        if onnx:  # the session holds its own copy of the weights
            self.model = onnx_model(self.model, self.meta)
        cfg = self.meta["config"]
        self.size = int(cfg["model"]["img_size"])
        self.crops = int(cfg.get("train", {}).get("test_crops", 1))
        pre = self.meta.get("preprocess") or {}
        self.resize = short_side(int(pre["short_side"])) if pre.get("short_side") else \
            preprocessing_resize(self.meta.get("dataset"))
        scale = self.meta.get("label_scale") or {"offset": 0.0, "scale": 1.0}
        self.offset, self.scale = float(scale["offset"]), float(scale["scale"])

    def _views(self, item) -> torch.Tensor:
        """One image → its crops (K, 3, S, S), preprocessed as ``qfm predict`` does."""
        from qfm.data.transforms import decode
        from qfm.predict import crops

        if isinstance(item, (str, Path)):
            im = decode(str(item), self.resize)
        elif isinstance(item, Image.Image):
            im = item.convert("RGB")
            if self.resize is not None:
                size = self.resize(*im.size)
                im = im if im.size == size else im.resize(size, Image.Resampling.BICUBIC)
        elif torch.is_tensor(item) and item.ndim == 3 and item.shape[0] == 3:
            if float(item.min()) < 0 or float(item.max()) > 1:
                raise ValueError("a tensor to score must hold RGB values in [0, 1]")
            arr = (item.detach().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0)
            return self._views(Image.fromarray(arr.numpy()))
        else:
            raise TypeError(f"cannot score a {type(item).__name__}: give a path, a PIL image "
                            f"or an RGB tensor (3, H, W) / (B, 3, H, W) in [0, 1]")
        return crops(im, self.size, self.crops)

    @torch.no_grad()
    def __call__(self, images):
        """Scores on the checkpoint's label scale: a float for one image, an array for
        several (a list, or a (B, 3, H, W) tensor)."""
        from qfm.core.inference import infer

        one = not (isinstance(images, (list, tuple)) or
                   (torch.is_tensor(images) and images.ndim == 4))
        items = [images] if one else list(images)
        if not items:
            return np.zeros(0)
        x = torch.stack([self._views(i) for i in items])  # (B, K, 3, S, S)
        norm = infer(self.model, x, self.device).double().numpy()
        scores = self.offset + self.scale * norm
        return float(scores[0]) if one else scores


def load_scorer(checkpoint: str | Path | None = None, device: str = "auto",
                runtime: str = "torch") -> Scorer:
    """The scorer of a checkpoint (default: the CLIVE-trained ``models/default.safetensors``;
    ``runtime="onnx"``: ONNX Runtime on the CPU, see :class:`Scorer`)."""
    return Scorer(checkpoint, device, runtime)
