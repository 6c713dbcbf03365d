"""`edgemed predict`: classify image files with a bundle artifact, applying the bundle's
PreprocessSpec exactly. No torch needed (runtime-only installs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemed.data.images import is_image_file, read_image
from edgemed.errors import DataError, EdgemedError
from edgemed.export.bundle import Artifact, Bundle, load_bundle
from edgemed.formats import FORMATS, RUNTIMES
from edgemed.metrics import softmax


@dataclass
class Prediction:
    file: str
    ok: bool
    top: list[tuple[str, float]] | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        d = {"file": self.file, "ok": self.ok}
        if self.ok:
            d["class"], d["probability"] = self.top[0]
            d["top"] = [{"class": c, "probability": p} for c, p in self.top]
        else:
            d["error"] = self.error
        return d


def choose_artifact(bundle: Bundle, artifact_id: str | None = None, fmt: str | None = None,
                    precision: str | None = None) -> Artifact:
    from edgemed.runtime import available_devices, runtimes_for

    if artifact_id:
        return bundle.artifact(artifact_id)
    candidates = bundle.select(formats=[fmt] if fmt else None, precisions=[precision] if precision else None)
    # with no choice given: the manifest's recommendation, else the first artifact whose runtime is
    # installed, small on-device runtimes first (the table's preference), torch last
    order = sorted(candidates, key=lambda a: FORMATS[a.format].preference if a.format in FORMATS else 99)
    if bundle.recommended and not fmt and not precision:
        order.insert(0, bundle.artifact(bundle.recommended))
    for a in order:
        if available_devices(runtimes_for(a.format)[0]):
            return a
    extras = sorted({RUNTIMES[runtimes_for(a.format)[0]].extra for a in candidates})
    raise EdgemedError(f"no installed runtime can run {', '.join(a.id for a in candidates)} from "
                       f"{bundle.root}: pip install \"edgemed[{','.join(extras)}]\"")


def collect_images(inputs: list[str | Path]) -> list[Path]:
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f))
        else:
            files.append(p)
    if not files:
        raise DataError("no images given (files or folders with PNG/JPEG/DICOM images): the folders given hold "
                        "none; pass image files or folders that hold some")
    return files


def predict(bundle: str | Path | Bundle, images: list[str | Path], *, artifact: str | None = None,
            fmt: str | None = None, top_k: int = 1, threads: int | None = None,
            device: str = "cpu", batch_size: int = 32,
            window: tuple[float, float] | None = None) -> tuple[Artifact, list[Prediction]]:
    """Classify images; unreadable files are reported in their Prediction and the rest still run.
    `window`: (center, width) for DICOM files in modality units (default: each file's own window).

    Example: `art, preds = predict("bundle/", ["scan.png"], top_k=2)`.
    """
    from edgemed.runtime import open_session

    b = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
    if top_k < 1:
        raise EdgemedError("--top-k must be at least 1")
    chosen = choose_artifact(b, artifact, fmt)
    spec = b.preprocess
    files = collect_images(images)
    session = open_session(chosen, device=device, threads=threads)
    results: list[Prediction] = []
    fitted, index = [], []
    for f in files:
        try:
            fitted.append(spec.fit_one(read_image(f, window)))
            index.append(len(results))
            results.append(Prediction(str(f), True))
        except EdgemedError as e:
            results.append(Prediction(str(f), False, error=str(e)))
    k = min(top_k, len(b.class_names))
    for start in range(0, len(fitted), batch_size):
        x = spec.normalize(np.stack(fitted[start:start + batch_size]))
        probs = softmax(session.run(x))
        for row, i in zip(probs, index[start:start + batch_size]):
            best = np.argsort(-row)[:k]
            results[i].top = [(b.class_names[j], float(row[j])) for j in best]
    session.close()
    return chosen, results


# `edgemed.predict(...)` must stay the verb even after `import edgemed.predict` binds the module.
from edgemed._verbs import callable_package  # noqa: E402

callable_package(__name__, "edgemed.predict:predict")
