"""OpenVINO IR (or ONNX) models on the OpenVINO runtime: CPU, and GPU / NPU where present."""

from __future__ import annotations

import numpy as np

from edgemed.errors import missing_extra
from edgemed.runtime.base import Session, no_device


def _core():
    try:
        import openvino as ov
    except ImportError:
        raise missing_extra("OpenVINO", "openvino") from None
    return ov.Core()


def devices() -> list[str]:
    try:
        return [d.lower() for d in _core().available_devices]
    except Exception:
        return []


class OpenVINOSession(Session):
    runtime = "openvino"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None,
                 hint: str = "LATENCY"):
        core = _core()
        name = device.upper()
        available = core.available_devices
        match = [d for d in available if d == name or d.split(".")[0] == name]
        if not match:
            raise no_device(self.runtime, device, [d.lower() for d in available])
        config = {"PERFORMANCE_HINT": hint}
        if threads and name == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
        if name == "CPU":
            # keep FP32 artifacts FP32 on bf16-capable CPUs: parity and accuracy are measured
            # on what the artifact says it is
            config["INFERENCE_PRECISION_HINT"] = "f32"
        self._compiled = core.compile_model(str(path), match[0], config)
        self._request = self._compiled.create_infer_request()
        shape = self._compiled.input(0).get_partial_shape()
        self.static_batch = shape[0].get_length() if shape[0].is_static else None
        self.device, self.threads = device.lower(), threads

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return self._request.infer({0: prepared})[0]
