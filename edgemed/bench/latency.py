"""Latency statistics and the interleaved timing loop (A B A B …), so the ratios between
artifacts survive a noisy machine: every artifact sees the same background load."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edgemed.errors import EdgemedError

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds per call: n, mean, std, min, p50, p90, p95, p99, max."""

    n: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def from_seconds(cls, samples) -> LatencyStats:
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        if ms.size == 0:
            raise EdgemedError("no latency samples were taken")
        p = np.percentile(ms, PERCENTILES)
        return cls(n=int(ms.size), mean=float(ms.mean()), std=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
                   min=float(ms.min()), p50=float(p[0]), p90=float(p[1]), p95=float(p[2]),
                   p99=float(p[3]), max=float(ms.max()))

    def to_dict(self) -> dict:
        return asdict(self)


def interleaved(calls: dict[str, Callable[[], object]], *, warmup: int = 10,
                iterations: int | None = None, duration: float | None = None,
                min_iterations: int = 10, on_round: Callable[[int], None] | None = None,
                clock=time.perf_counter) -> dict[str, list[float]]:
    """Time each call round-robin. Stops after `iterations` rounds, or when every call has
    spent `duration` seconds in measured runs (at least `min_iterations` rounds either way).
    Warm-up rounds are run first and excluded."""
    if iterations is None and duration is None:
        raise EdgemedError("give a duration or a number of iterations")
    if duration is not None and duration <= 0:
        raise EdgemedError(f"--duration must be > 0 seconds, got {duration}")
    if iterations is not None and iterations < 1:
        raise EdgemedError(f"--iterations must be ≥ 1, got {iterations}")
    if warmup < 0:
        raise EdgemedError("--warmup cannot be negative")
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    spent = dict.fromkeys(calls, 0.0)
    rounds = 0
    while True:
        for key, call in calls.items():
            t = clock()
            call()
            dt = clock() - t
            samples[key].append(dt)
            spent[key] += dt
        rounds += 1
        if on_round:
            on_round(rounds)
        if iterations is not None and rounds >= iterations:
            break
        if duration is not None and rounds >= min_iterations and min(spent.values()) >= duration:
            break
    return samples
