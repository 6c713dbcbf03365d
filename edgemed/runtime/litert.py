"""TFLite models on LiteRT (`ai-edge-litert`) with XNNPACK, falling back to the older
`tflite_runtime` interpreter where only that is installed (older ARM boards)."""

from __future__ import annotations

import numpy as np

from edgemed.errors import RuntimeUnavailable
from edgemed.runtime.base import Session, dequantize_output, no_device, quantize_input


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise RuntimeUnavailable(
                'LiteRT is not installed: pip install "edgemed[runtime-litert]" (or tflite-runtime on older boards)'
            ) from None
    return Interpreter


def load_library() -> None:
    """Import the runtime's library only (the cold-start probe's baseline footprint)."""
    interpreter_class()


def devices() -> list[str]:
    try:
        interpreter_class()
    except RuntimeUnavailable:
        return []
    return ["cpu"]


class LiteRTSession(Session):
    runtime = "litert"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None,
                 input_layout: str = "NCHW"):
        if device.lower() != "cpu":
            raise no_device(self.runtime, device, devices())
        from edgemed.fileio import quiet_native

        Interpreter = interpreter_class()
        with quiet_native():  # the XNNPACK delegate announces itself on stderr
            self._it = Interpreter(model_path=str(path), num_threads=threads or None)
            self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self.input_layout = input_layout
        self.static_batch = int(self._in["shape"][0])
        self.device, self.threads = "cpu", threads
        self._in_q = self._in["dtype"] in (np.int8, np.uint8, np.int16)
        self._out_q = self._out["dtype"] in (np.int8, np.uint8, np.int16)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        x = super().prepare(batch)
        if self._in_q:
            scale, zero = self._in["quantization"]
            x = quantize_input(x, scale, zero, self._in["dtype"])
        return x

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        self._it.set_tensor(self._in["index"], prepared)
        self._it.invoke()
        return self._it.get_tensor(self._out["index"])

    def finish(self, raw: np.ndarray) -> np.ndarray:
        if self._out_q:
            scale, zero = self._out["quantization"]
            return dequantize_output(raw, scale, zero)
        return np.asarray(raw, dtype=np.float32).copy()
