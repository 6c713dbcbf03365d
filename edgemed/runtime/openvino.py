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


def load_library() -> None:
    """Import the runtime's library only (the cold-start probe's baseline footprint)."""
    import openvino  # noqa: F401


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
        self._core, self._target, self._config = core, match[0], config
        self._model = core.read_model(str(path))
        shape = self._model.input(0).get_partial_shape()
        self.static_batch = shape[0].get_length() if shape[0].is_static else None
        self._requests: dict[int, object] = {}
        self.device, self.threads = device.lower(), threads
        self._request_for(self.static_batch or 1)  # compile now: load cost and errors belong to opening

    def _request_for(self, batch: int):
        """A dynamic-batch IR re-infers shapes on every call (the harness trailed benchmark_app
        by 20–30 % on small models until this); compile it as static, once per batch size."""
        if self.static_batch is not None:  # OpenVINO refuses any other batch: compile it as it is
            if self.static_batch not in self._requests:
                compiled = self._core.compile_model(self._model, self._target, self._config)
                self._requests[self.static_batch] = compiled.create_infer_request()
            return self._requests[self.static_batch]
        if batch not in self._requests:
            dims = self._model.input(0).get_partial_shape()
            self._model.reshape({self._model.input(0): [batch, *(d.get_length() for d in list(dims)[1:])]})
            if len(self._requests) >= 3:  # bound memory: drop the oldest batch size
                self._requests.pop(next(iter(self._requests)))
            compiled = self._core.compile_model(self._model, self._target, self._config)
            self._requests[batch] = compiled.create_infer_request()
        return self._requests[batch]

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return self._request_for(prepared.shape[0]).infer({0: prepared})[0]
