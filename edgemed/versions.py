"""Versions of edgemed and the libraries it uses, read from package metadata (no imports)."""

from __future__ import annotations

import contextlib
import platform
from importlib import metadata

LIBRARIES = ("numpy", "torch", "onnx", "onnxruntime", "openvino", "nncf", "litert-torch",
             "ai-edge-litert", "tflite-runtime", "ai-edge-quantizer", "torch-pruning", "torchao",
             "scikit-learn", "executorch")


def library_versions() -> dict[str, str]:
    from edgemed import __version__

    out = {"edgemed": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out
