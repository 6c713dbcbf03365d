"""The PyTorch FP32 reference: an edgemed checkpoint run in eager mode."""

from __future__ import annotations

import numpy as np

from edgemed.errors import missing_extra
from edgemed.runtime.base import Session, no_device


def load_library() -> None:
    """Import the runtime's library only (the cold-start probe's baseline footprint)."""
    import torch  # noqa: F401


def devices() -> list[str]:
    try:
        import torch
    except ImportError:
        return []
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class TorchSession(Session):
    runtime = "torch"

    def __init__(self, path: str, device: str = "cpu", threads: int | None = None):
        try:
            import torch
        except ImportError:
            raise missing_extra("torch", "train") from None
        from edgemed.checkpoint import load_checkpoint

        if device.lower() not in devices():
            raise no_device(self.runtime, device, devices())
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device, self.threads = device.lower(), threads
        _, self._model = load_checkpoint(path)
        self._model = self._model.to(self.device).eval()

    def infer(self, prepared: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            out = self._model(torch.from_numpy(prepared).to(self.device))
        return out.float().cpu().numpy()
