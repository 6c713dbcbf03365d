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
        self._core, self._path, self._target, self._config = core, str(path), match[0], config
        self._compiled = core.compile_model(str(path), match[0], config)
        self._request = self._compiled.create_infer_request()
        shape = self._compiled.input(0).get_partial_shape()
        self.static_batch = shape[0].get_length() if shape[0].is_static else None
        self._by_batch: dict[int, object] = {}
        self.device, self.threads = device.lower(), threads

    def _request_for(self, batch: int):
        """A dynamic-batch IR re-infers shapes on every call (measured ~20–30 % of a small
        model's time); compile it once per batch size seen, as static, like benchmark_app."""
        if self.static_batch is not None:
            return self._request
        if batch not in self._by_batch:
            model = self._core.read_model(self._path)
            dims = model.input(0).get_partial_shape()
            model.reshape({model.input(0): [batch, *(dims[i].get_length() for i in range(1, dims.rank.get_length()))]})
            if len(self._by_batch) >= 3:  # bound memory: keep the most recent few
                self._by_batch.pop(next(iter(self._by_batch)))
            self._by_batch[batch] = self._core.compile_model(model, self._target, self._config).create_infer_request()
        return self._by_batch[batch]

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return self._request_for(prepared.shape[0]).infer({0: prepared})[0]
