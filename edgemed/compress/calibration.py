"""Calibration sets for post-training quantization.

A manifest (`calibration/DATASET.json`, from `edgemed calibration build`) names stratified
indices of the TRAINING split — never validation or test, which judge the quantized model — plus
the data file's sha256, so a quantization run can refuse data that changed. Quantization applies
the model's own PreprocessSpec (from its checkpoint) to these images; the manifest records the
data set's native spec for reference.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePath

import numpy as np

from edgemed.data.catalog import CATALOG
from edgemed.data.datasets import check_npy_header, load_dataset, stratified_subset
from edgemed.data.images import is_image_file, read_image
from edgemed.data.preprocess import PreprocessSpec, spec_for
from edgemed.errors import DataError, EdgemedError
from edgemed.fileio import atomic_write_json, check_output, read_json

SCHEMA = "edgemed-calibration"
SCHEMA_VERSION = 1
MIN_IMAGES = 32  # fewer gives unstable activation ranges
MAX_IMAGES = 100_000  # a calibration set is hundreds of images: more is a mistake or hostile
MAX_MANIFEST_BYTES = 16 * 2**20  # a manifest of MAX_IMAGES indices is under 1 MiB
MAX_NAME_CHARS = 4096  # data set names and sources are short strings
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOW = reprlib.Repr()  # short one-line reprs of hostile values in messages
_SHOW.maxstring = _SHOW.maxother = 40
_SHOW.maxlist = _SHOW.maxdict = 4
_SHOW.maxlevel = 2


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
        raise EdgemedError(f"--size {size} is too small: a calibration set needs at least {MIN_IMAGES} images; "
                           f"pass --size {MIN_IMAGES} or more (300 is the default)")
    ds = load_dataset(dataset, data_dir)
    images, labels = ds.split("train")
    if len(labels) < MIN_IMAGES:
        raise DataError(f"{ds.name} has only {len(labels)} training images; at least {MIN_IMAGES} are needed: "
                        "calibrate with a folder of images or a .npy array (quantize --calib PATH) instead")
    idx = stratified_subset(labels, size, seed)
    out = check_output(Path(out) if out else Path("calibration") / f"{ds.name}.json", force)
    native = PreprocessSpec(size=ds.image_size, channels=ds.channels, mean=(0.0,) * ds.channels,
                            std=(1.0,) * ds.channels)
    fitted = native.fit(images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx])
    manifest = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "dataset": ds.name, "source": ds.recorded_source,
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
            raise DataError(f"calibration folder {p} has no PNG/JPEG/DICOM images: put images in it, or pass a "
                            "manifest from `edgemed calibration build DATASET` to --calib")
        n_files = len(files)
        files = files[:limit] if limit else files  # read only the images that will be used
        if len(files) > MAX_IMAGES:
            raise DataError(f"calibration folder {p} has {len(files)} images, over edgemed's limit of "
                            f"{MAX_IMAGES}: pass --calib-limit 300 or use a smaller folder")
        x = spec([read_image(f) for f in files])
        info = {"source": str(p), "kind": "folder", "size": n_files}
    elif p.suffix == ".npy":
        if not p.is_file():
            raise DataError(f"calibration array not found: {p}: check the path, or pass a manifest from "
                            "`edgemed calibration build DATASET` to --calib")
        try:
            with open(p, "rb") as f:
                check_npy_header(f, str(p))  # shape, dtype and size before numpy allocates
            x = np.load(p, allow_pickle=False)
        except (ValueError, OSError, MemoryError) as e:
            raise DataError(f"{p}: not a plain .npy array ({e}): re-create it with numpy.save") from None
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
        raise DataError(f"calibration set {p} has {bad} images with NaN or infinite values: remove them or "
                        "rebuild the set with `edgemed calibration build DATASET`")
    info["used"] = int(len(x))
    return CalibrationSet(np.ascontiguousarray(x, dtype=np.float32), info)


def read_manifest(path: str | Path) -> dict:
    """A calibration manifest with every field edgemed reads checked (types, formats, bounds);
    anything else raises DataError naming the file, the field and the fix."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"calibration manifest not found: {p} (build one with `edgemed calibration build DATASET`)")
    try:  # bounded size, any JSON failure (nesting, long numbers) one line
        m = read_json(p, "calibration manifest", MAX_MANIFEST_BYTES,
                      "rebuild it with `edgemed calibration build DATASET`")
    except DataError:
        raise
    except EdgemedError as e:
        raise DataError(str(e)) from None
    if not isinstance(m, dict) or m.get("schema") != SCHEMA:
        raise DataError(f"{p} is not an edgemed calibration manifest (build one with `edgemed calibration build`)")
    name = m.get("dataset")
    ok_name = isinstance(name, str) and 0 < len(name) <= MAX_NAME_CHARS and name.isprintable()
    fix = f"rebuild it with `edgemed calibration build {name if ok_name else 'DATASET'}`"

    def bad(key: str, want: str) -> DataError:
        return DataError(f"{p}: {key!r} must be {want}, not {_SHOW.repr(m.get(key))}: {fix}")

    version = m.get("schema_version")
    if not _is_int(version) or version < 1:
        raise bad("schema_version", "a whole number ≥ 1")
    if version > SCHEMA_VERSION:
        raise DataError(f"{p}: calibration schema {version} is newer than this edgemed; upgrade edgemed")
    if not ok_name:
        raise bad("dataset", "the data set's name (a short string)")
    source = m.get("source", name)
    if not (isinstance(source, str) and 0 < len(source) <= MAX_NAME_CHARS and source.isprintable()):
        raise bad("source", "the data set's name or path (a short string)")
    if not (isinstance(m.get("data_sha256"), str) and _SHA256.fullmatch(m["data_sha256"])):
        raise bad("data_sha256", "the data file's sha256 (64 lowercase hex digits)")
    if m.get("split") != "train":
        raise DataError(f"{p}: calibration must come from the training split, not {_SHOW.repr(m.get('split'))}: {fix}")
    if m.get("seed") is not None and not _is_int(m["seed"]):
        raise bad("seed", "a whole number")
    indices = m.get("indices")
    if not isinstance(indices, list):
        raise bad("indices", "a list of training-split positions")
    if len(indices) > MAX_IMAGES:
        raise DataError(f"{p}: 'indices' lists {len(indices)} images, over edgemed's limit of {MAX_IMAGES}: {fix}")
    for i, v in enumerate(indices):
        if not _is_int(v) or v < 0:
            raise DataError(f"{p}: 'indices' must hold whole numbers ≥ 0 (training-split positions), "
                            f"but item {i} is {_SHOW.repr(v)}: {fix}")
    if len(set(indices)) != len(indices):
        raise DataError(f"{p}: 'indices' repeats {len(indices) - len(set(indices))} positions: {fix}")
    if "size" in m and (not _is_int(m["size"]) or m["size"] != len(indices)):
        raise bad("size", f"the number of indices ({len(indices)})")
    return m


def _is_int(v) -> bool:
    return type(v) is int  # JSON true/false load as bool, a subclass of int: not indices


def _data_source(p: Path, m: dict, ckpt) -> str:
    """Where the manifest's data is: a catalog name, else the path the checkpoint (named by the
    user) records. A path from the manifest itself is used only if confined to its folder."""
    name = m["dataset"]
    if name in CATALOG:
        return name
    if ckpt.dataset.get("source"):
        return ckpt.dataset["source"]
    source = m.get("source", name)
    prefix, rel = ("folder:", source[len("folder:"):]) if source.startswith("folder:") else ("", source)
    pure = PurePath(rel)
    base = p.parent.resolve()
    where = (base / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or not where.is_relative_to(base):
        raise DataError(f"{p}: its source {_SHOW.repr(source)} is not inside the manifest's folder: pass the "
                        f"data with --data-dir or rebuild the manifest with `edgemed calibration build {name}`")
    return prefix + str(where)


def _from_manifest(p: Path, ckpt, data_dir) -> tuple[np.ndarray, dict]:
    m = read_manifest(p)
    trained_on = ckpt.dataset.get("name")
    if m["dataset"] != trained_on:
        raise DataError(f"{p} is a calibration set for {m['dataset']}, but the model was trained on "
                        f"{trained_on}: use calibration/{trained_on}.json")
    ds = load_dataset(_data_source(p, m, ckpt), data_dir)
    if ds.sha256 != m["data_sha256"]:
        raise DataError(f"{ds.source} (sha256 {ds.sha256[:12]}…) is not the data {p} was built from "
                        f"({m['data_sha256'][:12]}…): rebuild it with `edgemed calibration build {m['dataset']}`")
    images, _ = ds.split("train")
    indices = m["indices"]
    if indices and max(indices) >= len(images):
        raise DataError(f"{p}: index {max(indices)} falls outside the training split of {len(images)} images: "
                        f"rebuild it with `edgemed calibration build {m['dataset']}`")
    idx = np.asarray(indices, dtype=np.int64)
    chosen = images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]
    x = ckpt.preprocess(chosen)
    return x, {"source": str(p), "kind": "manifest", "dataset": m["dataset"], "data_sha256": m["data_sha256"],
               "size": int(len(idx)), "seed": m.get("seed")}
