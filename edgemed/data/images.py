"""Reading image files (PNG, JPEG, BMP, TIFF; DICOM with the `dicom` extra) into uint8 arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemed.errors import DataError, missing_extra

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
DICOM_SUFFIXES = {".dcm", ".dicom"}


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES | DICOM_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """An image file → array (H,W) or (H,W,3). Raises DataError naming the file if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix.lower() in DICOM_SUFFIXES:
        return _read_dicom(p)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I", "F"):
                return np.asarray(im)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{p}: not a readable image ({e.__class__.__name__}: {e})") from None


def _read_dicom(p: Path) -> np.ndarray:
    try:
        import pydicom
    except ImportError:
        raise missing_extra("pydicom (for DICOM files)", "dicom") from None
    try:
        ds = pydicom.dcmread(p)
        arr = ds.pixel_array.astype(np.float32)
    except Exception as e:  # pydicom raises many types for bad files
        raise DataError(f"{p}: not a readable DICOM file ({e.__class__.__name__}: {e})") from None
    slope = float(getattr(ds, "RescaleSlope", 1.0))
    intercept = float(getattr(ds, "RescaleIntercept", 0.0))
    arr = arr * slope + intercept
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        arr = arr.max() - arr
    return arr
