"""Accuracy of artifacts on a data split through the bundle's PreprocessSpec, and retention
against the FP32 reference: metric differences with paired-bootstrap CIs and the flip rate."""

from __future__ import annotations

import numpy as np

from edgemed.errors import DataError
from edgemed.metrics import (
    calibration,
    classification_metrics,
    clinical_retention,
    flipped_cases,
    paired_difference,
    softmax,
)


def load_split(bundle, dataset, split: str, data_dir=None, limit: int | None = None,
               seed: int = 0, positions: list | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(uint8 images fitted to the spec, labels, info) of a split; no torch needed.
    `dataset`: a name, a loaded data set (see `open_dataset`), or None for the bundle's own.
    `positions`: a list that receives each returned image's index in the whole split."""
    ds = open_dataset(bundle, dataset, data_dir) if dataset is None or isinstance(dataset, str) else dataset
    if ds.num_classes != len(bundle.class_names):
        raise DataError(f"{ds.name} has {ds.num_classes} classes but the bundle predicts {len(bundle.class_names)}: "
                        "pass the --dataset the bundle was trained on, or leave --dataset out")
    images, labels = ds.split(split)
    idx = np.arange(len(labels))
    if limit:
        from edgemed.data.datasets import stratified_subset

        idx = stratified_subset(labels, limit, seed)
        images = images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]
        labels = labels[idx]
    if positions is not None:
        positions[:] = idx.tolist()
    expected = (bundle.manifest.get("provenance", {}).get("dataset", {}) or {}).get("sha256")
    info = {"name": ds.name, "split": split, "n": int(len(labels)), "sha256": ds.sha256,
            "matches_training_data": expected == ds.sha256 if expected else None, "limit": limit}
    return bundle.preprocess.fit(images), labels, info


def open_dataset(bundle, dataset: str | None = None, data_dir=None):
    """The named data set, or the one the bundle was trained on."""
    from edgemed.data.datasets import load_dataset

    name = dataset or (bundle.manifest.get("provenance", {}).get("dataset", {}) or {}).get("name")
    if not name:
        raise DataError("the bundle does not name its data set: pass --dataset")
    return load_dataset(name, data_dir)


def artifact_probs(session, spec, fitted: np.ndarray, batch: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(fitted), batch):
        out.append(softmax(session.run(spec.normalize(fitted[i:i + batch]))))
    return np.concatenate(out)


def accuracy_report(labels, probs, class_names, reference_probs=None, reference_name=None,
                    n_boot: int = 1000, threshold: float | None = None) -> dict:
    """Metrics with CIs, calibration (ECE, Brier, reliability bins), and against the reference:
    retention of accuracy/AUC/balanced accuracy and, per class at the reference's operating point
    (`threshold` for two classes, else the most probable class), the change in sensitivity,
    specificity, PPV and NPV with paired bootstrap CIs."""
    out = {"metrics": classification_metrics(labels, probs, class_names, n_boot=n_boot),
           "calibration": calibration(labels, probs)}
    if reference_probs is not None:
        out["retention"] = {"reference": reference_name}
        for metric in ("accuracy", "auc", "balanced_accuracy"):
            out["retention"][metric] = paired_difference(labels, reference_probs, probs, metric, n_boot=n_boot)
        out["retention"]["flip_rate"] = out["retention"]["accuracy"]["flip_rate"]
        out["clinical"] = clinical_retention(labels, reference_probs, probs, class_names, threshold=threshold,
                                             n_boot=n_boot)
        out["flips"] = flipped_cases(labels, reference_probs, probs, class_names, threshold=threshold)
    return out


def thumbnails(fitted: np.ndarray, indexes, size: int = 96, positions: list | None = None) -> dict[str, str]:
    """{image index in the split: base64 PNG} of the given images (positions in `fitted`; with
    `positions`, their indexes in the whole split), at most `size` px a side, for the report's
    gallery of flipped cases (the images stay where bench ran; only these thumbnails travel)."""
    import base64
    import io

    from PIL import Image

    out = {}
    for i in sorted(set(indexes)):
        img = np.asarray(fitted[i])
        img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
        pil = Image.fromarray(img.astype(np.uint8))
        pil.thumbnail((size, size))
        buf = io.BytesIO()
        pil.save(buf, format="PNG", optimize=True)
        out[str(positions[i] if positions else i)] = base64.b64encode(buf.getvalue()).decode("ascii")
    return out


def outputs(labels, probs: dict[str, np.ndarray], positions: list[int] | None = None,
            max_values: int = 1_000_000) -> dict | None:
    """Per-image labels and class probabilities of every row (rounded to 6 digits), with each
    image's index in the split, so metrics can be recomputed where the report runs; None when
    they would make the file too large."""
    if sum(p.size for p in probs.values()) > max_values:
        return None
    return {"indexes": list(positions) if positions else list(range(len(labels))),
            "labels": [int(v) for v in labels],
            "probs": {name: np.round(p, 6).tolist() for name, p in probs.items()}}
