"""Data sets by name (MedMNIST-style .npz) or by folder (one sub-folder per class).

Lookup order for a named set: `data_dir` argument (`--data-dir`), else `EDGEMED_DATA_DIR`, else
the user cache (`$XDG_CACHE_HOME/edgemed/data`, default `~/.cache/edgemed/data`). A MedMNIST set
missing everywhere is downloaded from its official URL into the cache, its md5 checked.
"""

from __future__ import annotations

import hashlib
import math
import os
import urllib.request
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgemed.data.catalog import CATALOG, DatasetInfo
from edgemed.data.images import is_image_file, read_image
from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import DataError, EdgemedError
from edgemed.fileio import atomic_path, sha256_file

SPLITS = ("train", "val", "test")
MAX_ARRAY_BYTES = 8 * 2**30  # one array read from a .npz/.npy, checked from its header first
MAX_CLASSES = 10_000  # labels read from a file cannot ask for more classes than this


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgemed" / "data"


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    elif os.environ.get("EDGEMED_DATA_DIR"):
        dirs.append(Path(os.environ["EDGEMED_DATA_DIR"]))
    dirs.append(cache_dir())
    return dirs


@dataclass
class Dataset:
    """A labelled image set with train/val/test splits. Images are uint8 arrays
    (N,H,W[,C]) for .npz sets, or lists of arrays for folders of mixed sizes."""

    name: str
    class_names: list[str]
    task: str
    sha256: str
    source: str
    _splits: dict[str, tuple[object, np.ndarray]] = field(default_factory=dict, repr=False)
    note: str = ""
    from_catalog: bool = False  # found by its catalog name in the data directory

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def recorded_source(self) -> str:
        """Where checkpoints and manifests say the data came from: a catalog set's name when it was
        found by that name (found again through the data directory on any machine, and the builder's
        folders stay out of shipped files), else the path it was loaded from."""
        return self.name if self.from_catalog else self.source

    @property
    def split_names(self) -> list[str]:
        return [s for s in SPLITS if s in self._splits]

    def split(self, name: str) -> tuple[object, np.ndarray]:
        """(images, labels int64 (N,)) of one split."""
        if name not in self._splits:
            raise DataError(
                f"data set {self.name} has no {name!r} split: it has {', '.join(self.split_names)}"
            )
        return self._splits[name]

    @property
    def channels(self) -> int:
        images, _ = self.split(self.split_names[0])
        first = images[0]
        return 1 if first.ndim == 2 else first.shape[-1]

    @property
    def image_size(self) -> tuple[int, int]:
        images, _ = self.split(self.split_names[0])
        return tuple(int(s) for s in images[0].shape[:2])

    def class_counts(self, split: str) -> list[int]:
        _, labels = self.split(split)
        return np.bincount(labels, minlength=self.num_classes).tolist()


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """A data set by catalog name, by .npz path, by image folder (`folder:PATH` or a directory), or
    by a CSV of `path,label[,split]` rows (`csv:PATH` or a .csv path).

    Example: `load_dataset("pneumoniamnist")` with `EDGEMED_DATA_DIR=../shared/data`.
    """
    if name.startswith("folder:"):
        return load_image_folder(name[len("folder:"):])
    if name.startswith("csv:") or name.lower().endswith(".csv"):
        return load_csv(name.removeprefix("csv:"))
    p = Path(name)
    if p.suffix == ".npz" or (p.exists() and p.is_file()):
        return load_npz(p, CATALOG.get(p.stem))
    if p.is_dir():
        return load_image_folder(p)
    info = CATALOG.get(name.lower())
    if info is None:
        raise DataError(
            f"unknown data set {name!r}: use one of {', '.join(CATALOG)}, a path to a .npz file, "
            "or folder:PATH for an image folder (see `edgemed data list`)"
        )
    return replace(load_npz(find_or_download(info, data_dir, download), info), from_catalog=True)


def load_recorded(entry, where, fix: str, data_dir: str | Path | None = None) -> Dataset:
    """The data set a checkpoint or bundle records it was trained on: by catalog name, else by the
    path it was loaded from. `where` names the file for messages, `fix` says how to give data."""
    name = entry.get("name") if isinstance(entry, dict) else None
    name = name if isinstance(name, str) else ""
    source = name if name in CATALOG else (entry.get("source") if isinstance(entry, dict) else None) or name
    if not isinstance(source, str) or len(source) > 4096:
        raise DataError(f"{where}: its data set entry is malformed: {fix}")
    if not source:
        raise DataError(f"{where} names no data set to validate or calibrate on: {fix}")
    return load_dataset(source, data_dir)


def find_or_download(info: DatasetInfo, data_dir=None, download: bool = True) -> Path:
    dirs = search_dirs(data_dir)
    for d in dirs:
        candidate = d / info.filename
        if candidate.is_file():
            return candidate
    where = ", ".join(str(d) for d in dirs)
    if info.url is None or not download:
        raise DataError(
            f"{info.filename} not found in {where}: set EDGEMED_DATA_DIR or pass --data-dir to "
            f"a folder that holds it"
        )
    return _download(info, cache_dir(), where)


def _download(info: DatasetInfo, dest_dir: Path, where: str) -> Path:
    dest = dest_dir / info.filename
    try:
        with urllib.request.urlopen(info.url, timeout=30) as r, atomic_path(dest) as tmp:
            md5 = hashlib.md5()
            with open(tmp, "wb") as f:
                for block in iter(lambda: r.read(1 << 20), b""):
                    md5.update(block)
                    f.write(block)
    except OSError as e:
        raise DataError(
            f"{info.filename} not found in {where} and the download from {info.url} failed "
            f"({e}): set EDGEMED_DATA_DIR or pass --data-dir to a folder that holds it"
        ) from None
    if info.md5 and md5.hexdigest() != info.md5:
        warnings.warn(
            f"{dest}: md5 {md5.hexdigest()} differs from the published {info.md5}", stacklevel=2
        )
    return dest


def check_npy_header(fp, where: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from a .npy header at fp's position, refused before anything is allocated
    or decompressed if it is not a plain numeric array within MAX_ARRAY_BYTES."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fp)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fp)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as e:  # ValueError for bad magic or header; zip/OS errors for corrupt files
        raise DataError(f"{where} is not a plain .npy array ({e}): re-create it with numpy.save") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {dtype}; edgemed reads plain numeric arrays only "
                        "(never pickled objects): save it as uint8 or float32")
    if any(d < 0 for d in shape):
        raise DataError(f"{where} declares the impossible shape {shape}: re-create it with numpy.save")
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes > MAX_ARRAY_BYTES:
        raise DataError(f"{where} declares shape {shape} {dtype} ({n_bytes / 2**30:.1f} GiB), over edgemed's "
                        f"limit of {MAX_ARRAY_BYTES // 2**30} GiB per array: subsample or split the data")
    return shape, dtype


def _npz_array(p: Path, npz, key: str) -> np.ndarray:
    """One member of an open .npz, its header checked before numpy allocates or inflates it."""
    where = f"{p}: member {key}"
    try:
        info = npz.zip.getinfo(f"{key}.npy")
        with npz.zip.open(info) as f:
            shape, dtype = check_npy_header(f, where)
        if info.file_size < math.prod(shape) * dtype.itemsize:
            raise DataError(f"{where} declares shape {shape} but holds only {info.file_size} bytes: "
                            "the file is truncated; re-download or replace it")
        return npz[key]
    except DataError:
        raise
    except Exception as e:  # zip/ValueError/OSError/MemoryError on corrupt or hostile files
        raise DataError(f"{where} is corrupt ({e.__class__.__name__}: {e}): re-download or replace "
                        "the file") from None


def load_npz(path: str | Path, info: DatasetInfo | None = None) -> Dataset:
    """A MedMNIST-layout .npz: train/val/test _images (uint8) and _labels (N,1) or (N,).
    Every array's header is checked (dtype, MAX_ARRAY_BYTES) before it is loaded."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file: check the path, or give a catalog name (see `edgemed data list`)")
    try:
        with open(p, "rb") as f:
            is_zip = f.read(4) == b"PK\x03\x04"
        # only a zip reaches np.load: a bare .npy would be read whole before any check
        npz = np.load(p, allow_pickle=False) if is_zip else None
        keys = set(npz.files) if is_zip else set()
    except Exception as e:  # zipfile/ValueError/OSError on corrupt files
        raise DataError(f"{p}: not a readable .npz data file ({e}): re-download or replace it") from None
    if npz is None:
        raise DataError(f"{p}: not a readable .npz data file (a zip of train/val/test _images/_labels "
                        "arrays): re-download or replace it")
    with npz:
        splits = _npz_splits(p, npz, keys)
    if not splits:
        raise DataError(f"{p}: no train/val/test _images/_labels arrays found (keys: {sorted(keys)[:20]}): "
                        "save it with numpy.savez(path, train_images=..., train_labels=..., ...)")
    n_labels = int(max(int(lab.max()) for _, lab in splits.values() if len(lab)) + 1)
    if info is not None:
        class_names = list(info.class_names)
        if n_labels > len(class_names):
            raise DataError(f"{p}: labels go up to {n_labels - 1} but {info.name} has {len(class_names)} classes: "
                            "the file is not this data set; re-download or replace it")
        task = "binary" if len(class_names) == 2 else "multiclass"
        name, note = info.name, info.note
    else:
        if n_labels > MAX_CLASSES:
            raise DataError(f"{p}: labels go up to {n_labels - 1}, over edgemed's limit of {MAX_CLASSES} "
                            "classes: number the classes 0..K-1")
        class_names = [str(i) for i in range(n_labels)]
        task = "binary" if n_labels == 2 else "multiclass"
        name, note = p.stem, ""
    return Dataset(name=name, class_names=class_names, task=task, sha256=sha256_file(p),
                   source=str(p), _splits=splits, note=note)


def _npz_splits(p: Path, npz, keys: set[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    splits = {}
    for s in SPLITS:
        if f"{s}_images" not in keys and f"{s}_labels" not in keys:
            continue
        if f"{s}_images" not in keys or f"{s}_labels" not in keys:
            raise DataError(f"{p}: has {s}_images or {s}_labels but not both: save both arrays for the {s} split, "
                            "or neither")
        images = _npz_array(p, npz, f"{s}_images")
        labels = _npz_array(p, npz, f"{s}_labels")
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
            raise DataError(f"{p}: {s}_images has shape {images.shape}; expected (N,H,W) or (N,H,W,3)")
        if images.dtype != np.uint8:
            raise DataError(f"{p}: {s}_images has dtype {images.dtype}; expected uint8: save it with "
                            ".astype(numpy.uint8) (pixel values 0..255)")
        if labels.ndim == 2 and labels.shape[1] > 1:
            raise DataError(f"{p}: {s}_labels is multi-label {labels.shape}; edgemed trains single-label classifiers: "
                            "give one class number per image")
        if labels.ndim not in (1, 2):
            raise DataError(f"{p}: {s}_labels has shape {labels.shape}; expected (N,) or (N, 1)")
        if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
            raise DataError(f"{p}: {s}_labels holds non-integer values; labels are class numbers 0..K-1")
        labels = labels.reshape(-1).astype(np.int64)
        if len(images) != len(labels):
            raise DataError(
                f"{p}: {s} has {len(images)} images but {len(labels)} labels: the file is inconsistent; "
                "give every image one label, or re-download the file"
            )
        if len(labels) and labels.min() < 0:
            raise DataError(f"{p}: {s}_labels has negative labels: number the classes 0..K-1")
        splits[s] = (images, labels)
    return splits


def load_image_folder(root: str | Path, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> Dataset:
    """Images in one sub-folder per class. If `root` has train/ val/ test/ sub-folders, those
    are the splits; otherwise each class is split by `fractions` with `seed` (stratified)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such image folder: check the path (folder:PATH needs one sub-folder of "
                        "images per class)")
    if (root / "train").is_dir():
        split_roots = {s: root / s for s in SPLITS if (root / s).is_dir()}
        class_names = sorted(d.name for d in split_roots["train"].iterdir() if d.is_dir())
        files = {s: _class_files(r, class_names) for s, r in split_roots.items()}
    else:
        class_names = sorted(d.name for d in root.iterdir() if d.is_dir())
        files = _split_files(_class_files(root, class_names), fractions, seed)
    if len(class_names) < 2:
        raise DataError(f"{root}: needs at least two class sub-folders with images, found {class_names}: "
                        "put each class's images in its own sub-folder, e.g. PATH/normal/, PATH/pneumonia/")
    return _read_splits(root.name, class_names, files, root, str(root), hash_labels=False)


MAX_CSV_BYTES, MAX_CSV_ROWS = 64 << 20, 1_000_000


def load_csv(path: str | Path, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> Dataset:
    """Images listed in a CSV with a header `path,label` (and optionally `split`: train, val,
    test). Paths are relative to the CSV's folder and must stay inside it; labels are class names
    (sorted to fix their order) or integers 0..K-1. Without a split column each class is split by
    `fractions` with `seed`, as for image folders."""
    import csv
    import io

    from edgemed.fileio import confined, read_bounded

    p = Path(path)
    fix = "give a CSV with a header path,label[,split] and one image per row"
    text = read_bounded(p, "image list", MAX_CSV_BYTES, fix)
    try:
        rows = list(csv.DictReader(io.StringIO(text.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{p}: not a readable CSV ({e}): {fix}") from None
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(f"{p}: needs the columns path and label (found {', '.join(rows[0]) if rows else 'no rows'}): {fix}")
    if len(rows) > MAX_CSV_ROWS:
        raise DataError(f"{p}: {len(rows):,} rows, over edgemed's limit of {MAX_CSV_ROWS:,}: split the list")
    labels = [(r.get("label") or "").strip() for r in rows]
    if not all(labels):
        line = next(i for i, v in enumerate(labels) if not v) + 2
        raise DataError(f"{p}:{line}: empty label: give every row a class")
    numeric = all(v.isascii() and v.isdigit() for v in labels)
    class_names = sorted(set(labels)) if not numeric else [str(i) for i in range(max(map(int, labels)) + 1)] \
        if max(len(v) for v in labels) <= 5 and max(map(int, labels)) < MAX_CLASSES else None
    if class_names is None or len(class_names) > MAX_CLASSES:
        raise DataError(f"{p}: more than {MAX_CLASSES:,} classes: label rows 0..K-1 or by class name")
    if len(set(labels)) < 2:
        raise DataError(f"{p}: every row has the class {labels[0]!r}: a classifier needs at least two classes")
    items, splits_given = [], "split" in rows[0]
    for i, (row, label) in enumerate(zip(rows, labels), start=2):
        rel = (row.get("path") or "").strip()
        try:
            f = confined(p.parent, rel, f"{p}:{i}")
        except EdgemedError as e:
            raise DataError(f"{e}: list images by paths relative to the CSV's folder") from None
        if not f.is_file():
            raise DataError(f"{p}:{i}: image {rel} does not exist: fix the path (relative to the CSV's folder)")
        split = (row.get("split") or "").strip().lower() if splits_given else ""
        if splits_given and split not in SPLITS:
            raise DataError(f"{p}:{i}: split {split!r} is not one of {', '.join(SPLITS)}")
        items.append((f, int(label) if numeric else class_names.index(label), split))
    if splits_given:
        files = {s: [(f, lab) for f, lab, sp in items if sp == s] for s in SPLITS}
        files = {s: v for s, v in files.items() if v}
        if "train" not in files:
            raise DataError(f"{p}: no row has split train: mark the training images, or leave out the split column")
    else:
        files = _split_files([(f, lab) for f, lab, _ in items], fractions, seed)
    return _read_splits(p.stem, class_names, files, p.parent, str(p), hash_labels=True)


def _read_splits(name: str, class_names: list[str], files: dict, root: Path, source: str,
                 hash_labels: bool) -> Dataset:
    """Read listed images into splits; the data hash covers every file's path and bytes, and its
    label where the path does not imply it (a CSV)."""
    digest = hashlib.sha256()
    splits = {}
    for s, items in files.items():
        images, labels = [], []
        for path, label in items:
            images.append(read_image(path))
            labels.append(label)
            tag = f":{label}" if hash_labels else ""
            digest.update(f"{s}/{path.relative_to(root)}{tag}:{sha256_file(path)}\n".encode())
        if images:
            splits[s] = (images, np.asarray(labels, dtype=np.int64))
    return Dataset(name=name, class_names=class_names, task="binary" if len(class_names) == 2 else "multiclass",
                   sha256=digest.hexdigest(), source=source, _splits=splits)


MAX_FOLDER_IMAGES = 1_000_000  # an image folder read whole: a mistyped folder:/ must not walk the disk


def _class_files(root: Path, class_names: list[str]) -> list[tuple[Path, int]]:
    out = []
    for label, cls in enumerate(class_names):
        d = root / cls
        if d.is_dir():
            found = []
            for f in d.rglob("*"):  # counted while walking: sorted() would walk everything first
                if is_image_file(f) and f.is_file():
                    found.append(f)
                    if len(out) + len(found) > MAX_FOLDER_IMAGES:
                        raise DataError(f"{root}: more than {MAX_FOLDER_IMAGES:,} images: is it the right folder? "
                                        "give the folder of one data set (one sub-folder per class)")
            out += [(f, label) for f in sorted(found)]
    if not out:
        raise DataError(f"{root}: no PNG/JPEG/DICOM images in its class sub-folders: put the images in "
                        "one sub-folder per class")
    return out


def _split_files(items, fractions, seed):
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(f"split fractions must be three numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    out = {s: [] for s in SPLITS}
    labels = sorted({lab for _, lab in items})
    for lab in labels:
        members = [it for it in items if it[1] == lab]
        order = rng.permutation(len(members))
        n_train = round(fractions[0] * len(members))
        n_val = round(fractions[1] * len(members))
        for rank, i in enumerate(order):
            s = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            out[s].append(members[i])
    return {s: v for s, v in out.items() if v}


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a class-stratified random subset of exactly n images (largest-remainder
    allocation, at least one per class), for calibration sets, quick runs and tests."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * n / len(labels)
    take = np.maximum(1, np.floor(share).astype(int))
    for i in np.argsort(-(share - np.floor(share))):
        if take.sum() >= n:
            break
        if take[i] < counts[i]:
            take[i] += 1
    out = [rng.choice(np.flatnonzero(labels == c), size=min(k, cnt), replace=False)
           for c, k, cnt in zip(classes, take, counts)]
    return np.sort(np.concatenate(out))


def prepare_split(ds: Dataset, split: str, spec: PreprocessSpec, limit: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NHWC images fitted to the spec, int64 labels) of a split."""
    images, labels = ds.split(split)
    if limit:
        idx = stratified_subset(labels, limit, seed)
        images = images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]
        labels = labels[idx]
    return spec.fit(images), labels
