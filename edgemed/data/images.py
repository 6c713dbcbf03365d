"""Reading image files (PNG, JPEG, BMP, TIFF; DICOM with the `dicom` extra) into uint8 arrays.

Files are untrusted: size and pixel count are checked from the header before anything is decoded.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np

from edgemed.errors import DataError, missing_extra

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
DICOM_SUFFIXES = {".dcm", ".dicom"}
MAX_IMAGE_PIXELS = 8192 * 8192  # per image (67 MP): plenty for CT, X-ray and pathology tiles
MAX_IMAGE_BYTES = 512 * 2**20  # per file, checked before it is opened
_MP = 1e6


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES | DICOM_SUFFIXES


def _too_large(p: Path, pixels: int, dims: str = "") -> DataError:
    side = math.isqrt(MAX_IMAGE_PIXELS)
    what = f"{dims} ({pixels / _MP:.0f} MP)" if dims else f"{pixels / _MP:.0f} MP ({pixels} pixels)"
    return DataError(f"{p}: image is {what}, over edgemed's limit of {MAX_IMAGE_PIXELS / _MP:.0f} MP "
                     f"({side}×{side}): downscale it to at most that and retry")


def _check_pixels(p: Path, width: int, height: int, frames: int = 1, over: bool = False) -> None:
    pixels = width * height * frames
    dims = f"{width}×{height}" + (f"×{frames}" if frames > 1 else "")
    if pixels > MAX_IMAGE_PIXELS:
        raise _too_large(p, pixels, dims)
    if over:  # PIL.Image.MAX_IMAGE_PIXELS was set below edgemed's limit in this process
        raise DataError(f"{p}: image is {dims}, over PIL.Image.MAX_IMAGE_PIXELS as set in this process: "
                        "downscale it or raise that limit")


def read_image(path: str | Path, window: tuple[float, float] | None = None) -> np.ndarray:
    """An image file → array (H,W) or (H,W,3). Raises DataError naming the file if unreadable,
    too large (MAX_IMAGE_BYTES on disk, MAX_IMAGE_PIXELS decoded) or not a single 2-D image."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file: check the path")
    n_bytes = p.stat().st_size
    if n_bytes > MAX_IMAGE_BYTES:
        raise DataError(f"{p}: file is {n_bytes / 2**20:.0f} MiB, over edgemed's limit of "
                        f"{MAX_IMAGE_BYTES // 2**20} MiB per image: downscale or recompress it")
    if p.suffix.lower() in DICOM_SUFFIXES:
        return _read_dicom(p, window)
    from PIL import Image

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            im = Image.open(p)  # reads the header only
        with im:
            # nothing is decoded yet; PIL's warning counts too, should its limit be set lower
            bomb = any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)
            _check_pixels(p, *im.size, over=bomb)
            im.load()
            if im.mode in ("I;16", "I;16B", "I", "F"):
                return np.asarray(im)
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im)
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        # PIL's own limit refused the header before we saw its size: its message has the count
        m = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(p, int(m.group(1)) if m else MAX_IMAGE_PIXELS + 1) from None
    except Exception as e:  # any decoder failure on an untrusted file is this file's problem
        raise DataError(f"{p}: not a readable image ({e.__class__.__name__}: {e}): re-export or replace it") from None


def _read_dicom(p: Path, window: tuple[float, float] | None = None) -> np.ndarray:
    """Pixels in the modality's units (RescaleSlope/Intercept: Hounsfield units for CT), then the
    display window — `window` (center, width) if given, else the file's WindowCenter/WindowWidth —
    to uint8, so every image of a series is scaled alike. Without a window the image is scaled to
    its own min..max (as for other 16-bit images)."""
    try:
        import pydicom
    except ImportError:
        raise missing_extra("pydicom (for DICOM files)", "dicom") from None
    try:
        ds = pydicom.dcmread(p)
        rows, cols = _tag(ds, "Rows", 0, int), _tag(ds, "Columns", 0, int)
        frames, samples = _tag(ds, "NumberOfFrames", 1, int), _tag(ds, "SamplesPerPixel", 1, int)
    except Exception as e:  # pydicom raises many types for bad files
        raise DataError(f"{p}: not a readable DICOM file ({e.__class__.__name__}: {e}): re-export or replace it") from None
    # the header alone says how much pixel_array would decode: check it first
    if rows < 1 or cols < 1 or frames < 1:
        raise DataError(f"{p}: DICOM header gives {cols}×{rows} pixels, {frames} frames: "
                        "not an image; export the image again from its source")
    if samples not in (1, 3):
        raise DataError(f"{p}: DICOM has {samples} samples per pixel; edgemed reads grey (1) or "
                        "colour (3): convert it to one of those")
    _check_pixels(p, cols, rows, frames)
    if frames > 1:
        raise DataError(f"{p}: DICOM holds {frames} frames (a volume or cine); edgemed classifies "
                        "single 2-D images: save the slice to classify as its own file")
    try:
        arr = ds.pixel_array.astype(np.float32)
        slope = _tag(ds, "RescaleSlope", 1.0, float)
        intercept = _tag(ds, "RescaleIntercept", 0.0, float)
    except Exception as e:
        raise DataError(f"{p}: not a readable DICOM file ({e.__class__.__name__}: {e}): re-export or replace it") from None
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise DataError(f"{p}: DICOM rescale slope/intercept are not finite: fix its header")
    arr = arr * slope + intercept
    if not np.isfinite(arr).all():
        raise DataError(f"{p}: DICOM pixels are NaN or infinite after rescaling: fix its header")
    if window is None:
        window = _file_window(ds)
    if window is not None:
        center, width = window
        if not (math.isfinite(center) and math.isfinite(width) and width > 0):
            raise DataError(f"{p}: window center {center}, width {width} is not a display window: give "
                            "--window CENTER,WIDTH with a width > 0 (e.g. 40,400 for CT soft tissue)")
        lo = center - width / 2
        arr = np.round(np.clip((arr - lo) / width, 0.0, 1.0) * 255).astype(np.uint8)
        if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
            arr = 255 - arr
        return arr
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        arr = arr.max() - arr
    return arr


def _file_window(ds) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair of a DICOM header, if it has one."""
    try:
        c, w = ds.get("WindowCenter"), ds.get("WindowWidth")
        if c is None or w is None or c == "" or w == "":
            return None
        first = [float(v[0] if hasattr(v, "__len__") and not isinstance(v, str) else v) for v in (c, w)]
    except (TypeError, ValueError, IndexError):
        return None
    return first[0], first[1]


def _tag(ds, keyword: str, default, kind):
    """A single-valued numeric header field; absent or empty gives the default."""
    value = ds.get(keyword)
    return default if value is None or value == "" else kind(value)
