"""How far each row is from this device's limit: the dense FP32 and INT8 throughput (GMAC/s) of
each runtime, measured once per bench run on a probe of two large 1×1 convolutions
(edgemed/bench/peak/, made by benchmarks/peak_models.py), and each row's achieved GMAC/s
(the model's MACs per image × batch / p50) as a share of the peak for its precision.

A share near 100 % says a faster model will not come from this runtime on this device; a
low share says the model (small or depth-wise layers, memory-bound ops) leaves compute unused."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

PEAK_DIR = Path(__file__).resolve().parent / "peak"


def probe_format(runtime: str) -> str | None:
    """The format of the probe this runtime reads (peak.json lists the probe's files by format)."""
    from edgemed.runtime import runtimes_for

    return next((f for f in probe_info()["files"]["fp32"] if runtime in runtimes_for(f)), None)


def probed(runtimes) -> set[str]:
    """Those of `runtimes` that have a probe to time."""
    return {r for r in runtimes if probe_format(r)}


@functools.cache
def probe_info() -> dict:
    return json.loads((PEAK_DIR / "peak.json").read_text())


def measure_peaks(runtimes, device: str = "cpu", threads: int | None = None, duration: float = 1.0) -> dict:
    """{runtime: {"fp32": GMAC/s, "int8": GMAC/s}} for each of `runtimes` that has a probe here
    (FP32 and INT8 of one runtime timed interleaved, 10th percentile of the calls); a probe that fails is left out with
    its reason under "errors"."""
    from edgemed.bench.latency import time_artifacts

    info = probe_info()
    x = np.random.default_rng(0).standard_normal(info["input_shape"]).astype(np.float32)
    out: dict = {"what": info["what"], "macs_per_call": info["macs_per_call"], "runtimes": {}, "errors": {}}
    for runtime in sorted(set(runtimes)):
        fmt = probe_format(runtime)
        if fmt is None:
            continue
        files = {p: (str(PEAK_DIR / info["files"][p][fmt]), runtime) for p in ("fp32", "int8")}
        samples = None
        for wanted in (files, {"fp32": files["fp32"]}):  # without INT8 kernels here, FP32 alone
            try:
                samples = time_artifacts(wanted, x, threads=threads, device=device, warmup=10, duration=duration,
                                         min_iterations=5)
                break
            except Exception as e:  # noqa: BLE001 — a probe that cannot run must not stop bench
                out["errors"][runtime] = f"{type(e).__name__}: {str(e)[:200]}"
        if samples is None:
            continue
        # the fast end (10th percentile) of the calls: what the device attains, steadier than the
        # median against a neighbour's bursts on a shared machine
        out["runtimes"][runtime] = {p: round(info["macs_per_call"] / float(np.percentile(s, 10)) / 1e9, 2)
                                    for p, s in samples.items()}
    return out


def peak_precision(precision: str) -> str:
    """Which peak a row is held against: INT8 for int8 and mixed artifacts, else FP32."""
    return "int8" if precision in ("int8", "mixed") else "fp32"


def compute_share(row: dict, macs_per_image: int | None, peaks: dict | None) -> dict | None:
    """A row's achieved GMAC/s and its share of the runtime's peak for its precision (None
    without the model's MACs or a peak for its runtime)."""
    if not macs_per_image:
        return None
    achieved = macs_per_image * row["batch"] / (row["latency_ms"]["p50"] / 1e3) / 1e9
    which = peak_precision(row["precision"])
    peak = ((peaks or {}).get("runtimes") or {}).get(row["runtime"], {}).get(which)
    return {"macs_per_image": int(macs_per_image), "achieved_gmacs": round(achieved, 3), "peak_precision": which,
            "peak_gmacs": peak, "share_of_peak": round(achieved / peak, 4) if peak else None}
