"""ExecuTorch programs (.pte) through the ExecuTorch runtime's Python bindings, XNNPACK on CPU.
Its bindings take and return torch tensors, so this runtime needs torch on the device (the
`executorch` extra); the runtime-only install stays torch-free without it."""

from __future__ import annotations

import numpy as np

from edgemed.errors import missing_extra
from edgemed.runtime.base import Session, no_device


def _runtime():
    try:
        import torch
        from executorch.runtime import Runtime
    except ImportError:
        raise missing_extra("executorch", "executorch") from None
    return torch, Runtime.get()


def load_library() -> None:
    """Import the runtime's library only (the cold-start probe's baseline footprint)."""
    import executorch.runtime  # noqa: F401


def devices() -> list[str]:
    try:
        _runtime()
    except Exception:
        return []
    return ["cpu"]


class ExecuTorchSession(Session):
    runtime = "executorch"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None):
        if device.lower() != "cpu":
            raise no_device(self.runtime, device, devices())
        self._torch, runtime = _runtime()
        from executorch.extension.pybindings import portable_lib

        if threads:  # one process-wide XNNPACK thread pool (the bindings' only thread setting)
            portable_lib._unsafe_reset_threadpool(threads)
        try:
            self._method = runtime.load_program(str(path)).load_method("forward")
        except RuntimeError as e:  # the backend logs why natively; say what it means
            raise RuntimeError(f"the ExecuTorch runtime could not load {path} ({e}): a delegate (XNNPACK) "
                               "refused part of the program, e.g. an INT8 op it does not support with these "
                               "quantization parameters; keep that layer float (--ignore) or use another "
                               "format") from None
        shape = self._method.metadata.input_tensor_meta(0).sizes()
        self.static_batch = int(shape[0]) if shape else None
        self.device, self.threads = "cpu", threads or portable_lib._threadpool_get_thread_count()

    def prepare(self, batch: np.ndarray):
        return self._torch.from_numpy(super().prepare(batch))

    def infer(self, prepared):
        return self._method.execute([prepared])[0]

    def finish(self, raw) -> np.ndarray:
        return raw.detach().numpy().astype(np.float32, copy=False)
