"""The Session protocol every runtime implements, and the input/output conversions they share.

A session runs one model artifact: `run(batch)` takes the PreprocessSpec's float32 NCHW batch
and returns float32 logits. It is split into `prepare` (layout transpose, INT8 input
quantization), `infer` (the model call alone, what latency measures) and `finish`
(dequantization), so the harness can time pre/post-processing apart from the model.
"""

from __future__ import annotations

import numpy as np

from edgemed.errors import EdgemedError, RuntimeUnavailable


class Session:
    runtime: str = ""
    device: str = "cpu"
    threads: int | None = None
    input_layout: str = "NCHW"
    static_batch: int | None = None  # set when the artifact only takes this batch size
    source: str = ""  # the model file, for messages
    num_classes: int | None = None  # scores per image the bundle promises (checked on every run)

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"expected an NCHW batch, got shape {x.shape}")
        if self.static_batch is not None and x.shape[0] != self.static_batch:
            from edgemed.errors import EdgemedError

            raise EdgemedError(
                f"this {self.runtime} artifact has a static batch of {self.static_batch}; got {x.shape[0]}: "
                f"use --batch {self.static_batch} or export with a dynamic batch"
            )
        if self.input_layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x)

    def infer(self, prepared: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw, dtype=np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 NCHW batch → float32 logits (N, classes); a wrong shape or a non-finite score
        is an error, never a silent number."""
        return self.check_logits(self._run(batch), len(batch))

    def check_logits(self, out: np.ndarray, n: int) -> np.ndarray:
        name = self.source or f"the {self.runtime} model"
        if out.ndim != 2 or out.shape[0] != n:
            raise EdgemedError(f"{name}: the model returned scores of shape {tuple(out.shape)} for {n} "
                               "image(s), not one row of class scores each: it is not a classifier edgemed can run")
        if self.num_classes is not None and out.shape[1] != self.num_classes:
            raise EdgemedError(f"{name}: the model gives {out.shape[1]} scores per image but its bundle names "
                               f"{self.num_classes} classes: the manifest does not belong to this model; "
                               "export the bundle again")
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise EdgemedError(f"{name}: the model produced NaN or infinite scores for {int(bad.sum())} of {n} "
                               "image(s): its weights are damaged; export it again from a good checkpoint")
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        b = self.static_batch
        if b is not None and len(batch) != b:
            # a static-batch artifact runs in chunks of its batch; the last chunk is zero-padded
            outs = []
            for i in range(0, len(batch), b):
                chunk = batch[i:i + b]
                n = len(chunk)
                if n < b:
                    chunk = np.concatenate([chunk, np.zeros((b - n, *chunk.shape[1:]), chunk.dtype)])
                outs.append(self.finish(self.infer(self.prepare(chunk)))[:n])
            return np.concatenate(outs)
        return self.finish(self.infer(self.prepare(batch)))

    def describe(self) -> dict:
        return {"runtime": self.runtime, "device": self.device, "threads": self.threads,
                "input_layout": self.input_layout, "static_batch": self.static_batch}

    def close(self) -> None:
        pass


def no_device(runtime: str, device: str, available: list[str]) -> RuntimeUnavailable:
    return RuntimeUnavailable(
        f"device {device!r} is not available to {runtime} here: available devices are {', '.join(available) or 'none'}"
    )


def quantize_input(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.round(x / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)
