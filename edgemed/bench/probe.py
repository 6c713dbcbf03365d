"""Cold-start probe, run in a fresh subprocess per artifact: load time, first-inference time and
peak resident memory of the process while the model runs (ru_maxrss), against the same process's
footprint with the runtime imported but no model loaded.

    python -m edgemed.bench.probe BUNDLE ARTIFACT RUNTIME DEVICE THREADS BATCH ITERATIONS
"""

from __future__ import annotations

import json
import resource
import sys
import time


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    # VmHWM is this process's own high-water mark; ru_maxrss would carry the parent's peak
    # across fork + exec on Linux
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> dict:
    import importlib

    import numpy as np

    from edgemed.export.bundle import load_bundle
    from edgemed.runtime import RUNTIMES, open_session

    bundle_path, artifact_id, runtime, device, threads, batch, iterations = argv
    bundle = load_bundle(bundle_path, verify=False)  # the parent process verified it
    artifact = bundle.artifact(artifact_id)
    # the library's import is the runtime's footprint, not the model's
    importlib.import_module(RUNTIMES[runtime].module).load_library()
    base_rss = _rss_mb()
    t0 = time.perf_counter()
    session = open_session(artifact, device=device, threads=int(threads) or None, runtime=runtime)
    load_s = time.perf_counter() - t0
    spec = bundle.preprocess
    x = np.zeros((int(batch), spec.channels, *spec.size), np.float32)
    prepared = session.prepare(x)
    t0 = time.perf_counter()
    session.infer(prepared)
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(int(iterations)):
        session.infer(prepared)
    return {"load_s": load_s, "first_inference_ms": first_ms, "base_rss_mb": base_rss,
            "peak_rss_mb": _peak_mb(), "rss_increase_mb": max(0.0, _peak_mb() - base_rss)}


if __name__ == "__main__":
    from edgemed.fileio import quiet_native

    with quiet_native():
        result = main(sys.argv[1:])
    print(json.dumps(result))
