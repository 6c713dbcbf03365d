"""Runtimes behind one Session protocol. This package imports no torch at module level: a device
with only `edgemed[runtime]` (numpy, onnxruntime, ai-edge-litert) runs bundles through it.

    session = open_session(bundle.artifact("onnx-fp32"), device="cpu", threads=2)
    logits = session.run(batch)   # float32 NCHW → float32 logits
"""

from __future__ import annotations

import importlib
from pathlib import Path

from edgemed.errors import EdgemedError

# The formats and runtimes live in one table (edgemed/formats.py); this package only opens them.
from edgemed.formats import FORMATS, RUNTIMES, of_file
from edgemed.runtime.base import Session


def runtimes_for(fmt: str) -> tuple[str, ...]:
    if fmt not in FORMATS:
        raise EdgemedError(f"no runtime for format {fmt!r}: known formats are {', '.join(FORMATS)}")
    return FORMATS[fmt].runtimes


def available_devices(runtime: str) -> list[str]:
    return importlib.import_module(RUNTIMES[runtime].module).devices()


def open_session(artifact, device: str = "cpu", threads: int | None = None,
                 runtime: str | None = None) -> Session:
    """A Session for a bundle artifact (or a model file path): picks the runtime by format.

    Args:
        artifact: a bundle `Artifact`, or a model file path (.onnx, .xml, .tflite, .pte, .safetensors).
        device: "cpu", "gpu"/"cuda", "tensorrt", "npu" (what the runtime offers here).
        threads: intra-op threads (None: the runtime's default).
        runtime: override the default runtime (e.g. "openvino" for an ONNX file).
    """
    check_threads(threads)
    if isinstance(artifact, (str, Path)):
        path, fmt, layout, classes = Path(artifact), of_file(artifact), "NCHW", None
    else:
        path, fmt, layout, classes = artifact.path, artifact.format, artifact.input_layout, artifact.num_classes
    allowed = runtimes_for(fmt)
    runtime = runtime or allowed[0]
    if runtime not in allowed:
        raise EdgemedError(f"runtime {runtime!r} cannot run {fmt} models: use {', '.join(allowed)}")
    session_cls = getattr(importlib.import_module(RUNTIMES[runtime].module), RUNTIMES[runtime].session)
    kwargs = {"input_layout": layout} if runtime == "litert" else {}
    session = session_cls(str(path), device=device, threads=threads, **kwargs)
    if layout == "NHWC" and runtime != "litert":
        session.input_layout = "NHWC"
    session.source, session.num_classes = str(path), classes
    return session


def check_threads(threads: int | None) -> None:
    """A thread count is a positive whole number, or None for the runtime's default."""
    if threads is not None and (type(threads) is not int or threads < 1):
        raise EdgemedError(f"--threads must be a whole number ≥ 1, got {threads!r} "
                           "(leave it out for the runtime's default)")


__all__ = ["RUNTIMES", "Session", "available_devices", "check_threads", "open_session",
           "runtimes_for"]
