"""PreprocessSpec: how pixels become the model's input tensor, on every machine.

It is saved with every checkpoint and bundle and applied unchanged in training, calibration,
export parity checks and on-device inference. NumPy + Pillow only (no torch), so devices with
only `edgemed[runtime]` preprocess exactly as training did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from edgemed.errors import EdgemedError

_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1}  # PIL.Image.Resampling
_RESIZE_MODES = ("stretch", "center_crop")
MAX_SIDE = 8192  # pixels per side of a model input: a spec read from a file cannot ask for more


@dataclass(frozen=True)
class PreprocessSpec:
    """Input size, channels, normalisation and resize rule of a model.

    Images are converted to `channels` (grey↔RGB with PIL's rules), resized to `size` (H, W)
    with `interpolation` (`resize="stretch"` ignores aspect; `"center_crop"` scales the short
    side then crops the centre), scaled to [0, 1], then normalised with `mean`/`std` per channel.
    The model input is float32 in `layout` ("NCHW").
    """

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    resize: str = "stretch"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if len(self.size) != 2 or min(self.size) < 1 or max(self.size) > MAX_SIDE:
            raise EdgemedError(f"preprocess size must be (height, width), each 1..{MAX_SIDE}, got {self.size}")
        if type(self.channels) is not int or self.channels not in (1, 3):
            raise EdgemedError(f"preprocess channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise EdgemedError("preprocess mean/std need one value per channel")
        if not all(np.isfinite(v) for v in (*self.mean, *self.std)):
            raise EdgemedError("preprocess mean/std values must be finite numbers")
        if any(s <= 0 for s in self.std):
            raise EdgemedError("preprocess std values must be > 0")
        if self.interpolation not in _RESAMPLE:
            raise EdgemedError(f"unknown interpolation {self.interpolation!r}: use one of {sorted(_RESAMPLE)}")
        if self.resize not in _RESIZE_MODES:
            raise EdgemedError(f"unknown resize rule {self.resize!r}: use one of {_RESIZE_MODES}")
        if self.layout != "NCHW":
            raise EdgemedError(f"preprocess layout must be NCHW, got {self.layout!r}")

    # ---- JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        if not isinstance(d, dict):
            raise EdgemedError("preprocess spec must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        missing = {"size", "channels", "mean", "std"} - set(d)
        if unknown or missing:
            raise EdgemedError(
                f"invalid preprocess spec: missing {sorted(missing)} unknown {sorted(unknown)}"
            )
        try:
            return cls(**d)
        except (TypeError, ValueError, OverflowError) as e:
            raise EdgemedError(f"invalid preprocess spec ({e})") from None

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.channels, *self.size)

    # ---- pixels ------------------------------------------------------------------------------
    def fit(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """uint8 images (N,H,W) / (N,H,W,C) or a list of (H,W[,C]) → uint8 (N, h, w, channels)."""
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim in (3, 4):
            n_c = 1 if images.ndim == 3 else images.shape[3]
            if images.shape[1:3] == self.size and n_c == self.channels:
                return images.reshape(images.shape[0], *self.size, self.channels)
        out = np.empty((len(images), *self.size, self.channels), dtype=np.uint8)
        for i, img in enumerate(images):
            out[i] = self.fit_one(img)
        return out

    def fit_one(self, image: np.ndarray) -> np.ndarray:
        """One image (H,W), (H,W,1), (H,W,3) or (H,W,4), any integer/float dtype → uint8 (h,w,c)."""
        from PIL import Image

        img = _to_uint8(np.asarray(image))
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
            raise EdgemedError(f"cannot use an image of shape {image.shape}: expected H×W or H×W×3")
        pil = Image.fromarray(img)
        pil = pil.convert("L" if self.channels == 1 else "RGB")
        h, w = self.size
        if pil.size != (w, h):
            resample = _RESAMPLE[self.interpolation]
            if self.resize == "center_crop":
                scale = max(w / pil.size[0], h / pil.size[1])
                rw, rh = max(w, round(pil.size[0] * scale)), max(h, round(pil.size[1] * scale))
                pil = pil.resize((rw, rh), resample)
                left, top = (rw - w) // 2, (rh - h) // 2
                pil = pil.crop((left, top, left + w, top + h))
            else:
                pil = pil.resize((w, h), resample)
        arr = np.asarray(pil, dtype=np.uint8)
        return arr.reshape(h, w, self.channels)

    def normalize(self, fitted: np.ndarray) -> np.ndarray:
        """uint8 (N,H,W,C) from `fit` → float32 (N,C,H,W), scaled and normalised."""
        x = fitted.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        return np.ascontiguousarray((x - mean) / std)

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        return self.normalize(self.fit(images))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise EdgemedError("image contains NaN or infinite values: re-export or replace it")
        lo, hi = float(img.min()), float(img.max())
        if lo >= 0.0 and hi <= 1.0:
            return np.round(img * 255).astype(np.uint8)
    if np.issubdtype(img.dtype, np.integer) or np.issubdtype(img.dtype, np.floating):
        # 16-bit or raw-valued images (DICOM, TIFF): window to their own min..max.
        lo, hi = float(img.min()), float(img.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return np.round((img.astype(np.float64) - lo) * scale).astype(np.uint8)
    raise EdgemedError(f"unsupported image dtype {img.dtype}: save the image as 8- or 16-bit integers or floats")


def spec_for(fitted_train: np.ndarray, size: tuple[int, int], channels: int, **kw) -> PreprocessSpec:
    """A spec whose mean/std are the training split's per-channel statistics."""
    x = fitted_train.reshape(-1, channels).astype(np.float64) / 255.0
    mean = x.mean(axis=0)
    std = np.maximum(x.std(axis=0), 1e-3)
    return PreprocessSpec(size=size, channels=channels, mean=tuple(np.round(mean, 6)),
                          std=tuple(np.round(std, 6)), **kw)
