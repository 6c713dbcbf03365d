"""edgemed: take trained medical image classifiers to edge devices and prove, with numbers,
what they cost and what they lose on the way.

The public Python API mirrors the CLI verbs. Heavy frameworks are imported only when a verb
runs, so `import edgemed` is fast and works in the runtime-only install.

    import edgemed
    result = edgemed.train("mednext_small", dataset="pneumoniamnist", epochs=5, out="m.safetensors")
    metrics = edgemed.evaluate("m.safetensors", split="test")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# verb → module that defines it (imported on first use)
_API = {
    "load_dataset": "edgemed.data",
    "PreprocessSpec": "edgemed.data",
    "create_model": "edgemed.models",
    "list_models": "edgemed.models",
    "train": "edgemed.train",
    "evaluate": "edgemed.train",
    "load_checkpoint": "edgemed.checkpoint",
    "import_model": "edgemed.importer",
    "build_calibration": "edgemed.compress.calibration",
    "prune": "edgemed.compress.prune",
    "quantize": "edgemed.compress.quantize",
    "optimize": "edgemed.pipeline.optimize",
    "run": "edgemed.pipeline.runner",
    "classification_metrics": "edgemed.metrics",
    "export": "edgemed.export",
    "load_bundle": "edgemed.export",
    "open_session": "edgemed.runtime",
    "predict": "edgemed.predict",
    "bench": "edgemed.bench",
    "report": "edgemed.report",
    "doctor": "edgemed.doctor",
}

__all__ = sorted(_API) + ["__version__"]


_RENAMED = {"run": "run_recipe"}  # the CLI's verb → the function's own name


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'edgemed' has no attribute {name!r}")
