"""ONNX models on onnxruntime: CPU, and CUDA / TensorRT execution providers where installed."""

from __future__ import annotations

import numpy as np

from edgemed.errors import missing_extra
from edgemed.runtime.base import Session, no_device

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider"}


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise missing_extra("onnxruntime", "runtime") from None
    return onnxruntime


def load_library() -> None:
    """Import the runtime's library only (the cold-start probe's baseline footprint)."""
    _ort()


def devices() -> list[str]:
    try:
        available = set(_ort().get_available_providers())
    except Exception:
        return []
    return [d for d, p in PROVIDERS.items() if p in available and d != "gpu"]


class OnnxSession(Session):
    runtime = "onnxruntime"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None):
        ort = _ort()
        device = device.lower()
        provider = PROVIDERS.get(device)
        if provider is None or provider not in ort.get_available_providers():
            raise no_device(self.runtime, device, devices())
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        providers = [provider] + (["CPUExecutionProvider"] if provider != "CPUExecutionProvider" else [])
        self._sess = ort.InferenceSession(str(path), opts, providers=providers)
        inp = self._sess.get_inputs()[0]
        self._input = inp.name
        self.device, self.threads = device, threads
        batch = inp.shape[0]
        self.static_batch = batch if isinstance(batch, int) else None
        self._int_input = inp.type == "tensor(int8)" or inp.type == "tensor(uint8)"

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        return self._sess.run(None, {self._input: prepared})[0]
