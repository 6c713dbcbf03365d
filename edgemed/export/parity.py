"""Parity of an exported artifact with the PyTorch FP32 model on real validation images."""

from __future__ import annotations

import numpy as np

from edgemed.errors import DataError, EdgemedError

# Allowed max |Δlogit| relative to the reference's largest |logit| (at least 1), and the least
# top-1 agreement, per precision. INT8 artifacts are judged by accuracy control instead; their
# parity is recorded but only a gross failure (a broken graph) stops the export.
TOLERANCE = {
    "fp32": {"rel_max_abs": 1e-3, "top1_agreement": 0.99},
    "fp16": {"rel_max_abs": 3e-2, "top1_agreement": 0.98},
    "int8": {"rel_max_abs": float("inf"), "top1_agreement": 0.80},
    "mixed": {"rel_max_abs": float("inf"), "top1_agreement": 0.80},
}


def parity_images(ckpt, data_dir=None, n: int = 128, split: str = "val", seed: int = 0):
    """A stratified slice of real images from the checkpoint's data set (val split by default),
    preprocessed by its PreprocessSpec: (float32 NCHW, labels)."""
    from edgemed.data.datasets import prepare_split

    try:
        ds = ckpt.open_dataset(data_dir)
    except EdgemedError as e:
        raise DataError(f"parity needs the model's {split} images: {e} (or pass --parity-images 0 to skip the check)") from None
    x_u8, y = prepare_split(ds, split, ckpt.preprocess, limit=n or None, seed=seed)
    return ckpt.preprocess.normalize(x_u8), y


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    agree = reference.argmax(1) == candidate.argmax(1)
    top2 = np.sort(reference, axis=1)[:, -2:]
    margins = (top2[:, 1] - top2[:, 0])[~agree]  # how close to a tie each flipped image was
    return {"n": int(len(reference)), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "reference_max_abs_logit": float(np.abs(reference).max()),
            "top1_agreement": float(agree.mean()), "disagreements": int((~agree).sum()),
            "flip_reference_margins": [round(float(m), 6) for m in np.sort(margins)[:10]]}


def within_tolerance(parity: dict, precision: str) -> tuple[bool, str]:
    tol = TOLERANCE[precision]
    scale = max(1.0, parity["reference_max_abs_logit"])
    if parity["max_abs_diff"] > tol["rel_max_abs"] * scale:
        return False, (f"max |Δlogit| {parity['max_abs_diff']:.3g} exceeds {tol['rel_max_abs']:g} × {scale:.3g}")
    if parity["top1_agreement"] < tol["top1_agreement"]:
        return False, (f"top-1 agreement {parity['top1_agreement']:.3f} below {tol['top1_agreement']}")
    return True, ""
