"""Calibration sets for post-training quantization.

A manifest (`calibration/DATASET.json`, from `edgemed calibration build`) names stratified
indices of the TRAINING split — never validation or test, which judge the quantized model — plus
the data file's sha256, so a quantization run can refuse data that changed. Quantization applies
the model's own PreprocessSpec (from its checkpoint) to these images; the manifest records the
data set's native spec for reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgemed.data.catalog import CATALOG
from edgemed.data.datasets import load_dataset, stratified_subset
from edgemed.data.images import is_image_file, read_image
from edgemed.data.preprocess import PreprocessSpec, spec_for
from edgemed.errors import DataError, EdgemedError
from edgemed.fileio import atomic_write_json, check_output, read_json

SCHEMA = "edgemed-calibration"
SCHEMA_VERSION = 1
MIN_IMAGES = 32  # fewer gives unstable activation ranges


@dataclass
class CalibrationSet:
    x: np.ndarray  # float32 NCHW, preprocessed with the model's spec
    info: dict


def build_calibration(dataset: str, *, size: int = 300, seed: int = 0, data_dir: str | None = None,
                      out: str | Path | None = None, force: bool = False) -> Path:
    """Write a calibration manifest: `size` stratified training-split indices of `dataset`.

    Example: `build_calibration("bloodmnist", size=300)` → calibration/bloodmnist.json.
    """
    if size < MIN_IMAGES:
        raise EdgemedError(f"--size {size} is too small: a calibration set needs at least {MIN_IMAGES} images")
    ds = load_dataset(dataset, data_dir)
    images, labels = ds.split("train")
    if len(labels) < MIN_IMAGES:
        raise DataError(f"{ds.name} has only {len(labels)} training images; at least {MIN_IMAGES} are needed")
    idx = stratified_subset(labels, size, seed)
    out = check_output(Path(out) if out else Path("calibration") / f"{ds.name}.json", force)
    native = PreprocessSpec(size=ds.image_size, channels=ds.channels, mean=(0.0,) * ds.channels,
                            std=(1.0,) * ds.channels)
    fitted = native.fit(images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx])
    manifest = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "dataset": ds.name, "source": ds.name if ds.name in CATALOG else ds.source,
        "data_sha256": ds.sha256, "split": "train", "seed": seed, "size": int(len(idx)),
        "class_names": ds.class_names,
        "class_counts": np.bincount(labels[idx], minlength=ds.num_classes).tolist(),
        "preprocess": spec_for(fitted, ds.image_size, ds.channels).to_dict(),
        "note": "quantization applies the model's own PreprocessSpec to these images",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "indices": idx.tolist(),
    }
    return atomic_write_json(out, manifest)


def load_calibration(source: str | Path, ckpt, *, data_dir: str | None = None,
                     limit: int | None = None) -> CalibrationSet:
    """Calibration images for a checkpoint, preprocessed with its spec, from a manifest (.json),
    a folder of images, or a preprocessed float32 NCHW array (.npy)."""
    p = Path(source)
    spec = ckpt.preprocess
    if p.suffix == ".json":
        x, info = _from_manifest(p, ckpt, data_dir)
    elif p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
        if not files:
            raise DataError(f"calibration folder {p} has no PNG/JPEG/DICOM images")
        x = spec([read_image(f) for f in files])
        info = {"source": str(p), "kind": "folder", "size": len(files)}
    elif p.suffix == ".npy":
        if not p.is_file():
            raise DataError(f"calibration array not found: {p}")
        try:
            x = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"{p}: not a plain .npy array ({e})") from None
        want = spec.input_shape[1:]
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise DataError(f"calibration array {p} has shape {tuple(x.shape)}; expected (N, {', '.join(map(str, want))}) "
                            "preprocessed with the model's PreprocessSpec")
        x = x.astype(np.float32)
        info = {"source": str(p), "kind": "array", "size": int(len(x))}
    else:
        raise DataError(f"calibration source {p} must be a manifest .json, a folder of images or a .npy array")
    if limit:
        x = x[:limit]
    if len(x) < MIN_IMAGES:
        raise DataError(f"calibration set {p} has {len(x)} images; at least {MIN_IMAGES} are needed "
                        f"(edgemed calibration build DATASET --size 300)")
    bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).sum())
    if bad:
        raise DataError(f"calibration set {p} has {bad} images with NaN or infinite values")
    info["used"] = int(len(x))
    return CalibrationSet(np.ascontiguousarray(x, dtype=np.float32), info)


def _from_manifest(p: Path, ckpt, data_dir) -> tuple[np.ndarray, dict]:
    m = read_json(p, "calibration manifest")
    if not isinstance(m, dict) or m.get("schema") != SCHEMA:
        raise DataError(f"{p} is not an edgemed calibration manifest (build one with `edgemed calibration build`)")
    if m.get("schema_version", 0) > SCHEMA_VERSION:
        raise DataError(f"{p}: calibration schema {m['schema_version']} is newer than this edgemed; upgrade")
    trained_on = ckpt.dataset.get("name")
    if m.get("dataset") != trained_on:
        raise DataError(f"{p} is a calibration set for {m.get('dataset')}, but the model was trained on "
                        f"{trained_on}: use calibration/{trained_on}.json")
    if m.get("split") != "train":
        raise DataError(f"{p}: calibration must come from the training split, not {m.get('split')!r}")
    ds = load_dataset(m.get("source", m["dataset"]), data_dir)
    if ds.sha256 != m["data_sha256"]:
        raise DataError(f"{ds.source} (sha256 {ds.sha256[:12]}…) is not the data {p} was built from "
                        f"({m['data_sha256'][:12]}…): rebuild it with `edgemed calibration build {m['dataset']}`")
    images, _ = ds.split("train")
    idx = np.asarray(m["indices"], dtype=np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(images)):
        raise DataError(f"{p}: indices fall outside the training split of {len(images)} images")
    chosen = images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]
    x = ckpt.preprocess(chosen)
    return x, {"source": str(p), "kind": "manifest", "dataset": m["dataset"], "data_sha256": m["data_sha256"],
               "size": int(len(idx)), "seed": m.get("seed")}
