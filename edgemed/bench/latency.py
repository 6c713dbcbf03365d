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
            raise EdgemedError("no latency samples were taken: give a longer --duration or more --iterations")
        p = np.percentile(ms, PERCENTILES)
        return cls(n=int(ms.size), mean=float(ms.mean()), std=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
                   min=float(ms.min()), p50=float(p[0]), p90=float(p[1]), p95=float(p[2]),
                   p99=float(p[3]), max=float(ms.max()))

    def to_dict(self) -> dict:
        return asdict(self)


def interleaved(calls: dict[str, Callable[[], object]], *, warmup: int = 10,
                iterations: int | None = None, duration: float | None = None,
                min_iterations: int = 10, on_round: Callable[[int], None] | None = None,
                clock=time.perf_counter, turn_seconds: float = 0.05,
                settle_seconds: float = 0.01) -> dict[str, list[float]]:
    """Time the calls in turns, round-robin: A×k B×k A×k … Each turn first runs unmeasured calls
    for `settle_seconds` (at least one), then measured calls for about `turn_seconds`.

    Why turns rather than A B A B: runtimes keep their own worker threads spinning for a while
    after a call, and on a small machine those spinning threads steal the cores from the next
    runtime; settling after each switch measures every runtime in its steady state, while the
    alternation still gives all of them the same background load. With one call there are no
    switches, so no turns. `turn_seconds=0` gives strict A B A B.

    Stops when every call has `iterations` measured samples, or has spent `duration` seconds in
    measured calls (and has at least `min_iterations` samples). Warm-up calls are excluded.
    `on_round` gets the smallest sample count so far after every round.
    """
    if iterations is None and duration is None:
        raise EdgemedError("give a duration or a number of iterations")
    if duration is not None and duration <= 0:
        raise EdgemedError(f"--duration must be > 0 seconds, got {duration}")
    if iterations is not None and iterations < 1:
        raise EdgemedError(f"--iterations must be ≥ 1, got {iterations}")
    if warmup < 0:
        raise EdgemedError("--warmup cannot be negative")
    estimate = dict.fromkeys(calls, 0.0)
    for _ in range(warmup):
        for key, call in calls.items():
            t = clock()
            call()
            estimate[key] = clock() - t
    turns = len(calls) > 1 and turn_seconds > 0
    block = {k: max(1, min(10_000, int(turn_seconds / e))) if turns and e > 0 else 1 for k, e in estimate.items()}
    samples: dict[str, list[float]] = {k: [] for k in calls}
    spent = dict.fromkeys(calls, 0.0)
    rounds = 0
    while True:
        for key, call in calls.items():
            if turns:  # let the previous runtime's threads go quiet; not measured
                t0 = clock()
                call()
                while clock() - t0 < settle_seconds:
                    call()
            turn = 0.0
            n = 0
            for _ in range(block[key]):
                if iterations is not None and len(samples[key]) >= iterations:
                    break
                t = clock()
                call()
                dt = clock() - t
                samples[key].append(dt)
                spent[key] += dt
                turn += dt
                n += 1
            if turns and n:  # the next turn's length from this turn's calls, not from a cold warm-up
                block[key] = max(1, min(10_000, int(turn_seconds * n / turn))) if turn > 0 else block[key]
        rounds += 1
        counts = min(len(v) for v in samples.values())
        if on_round:
            on_round(counts)
        if iterations is not None and counts >= iterations:
            break
        if duration is not None and counts >= min_iterations and min(spent.values()) >= duration:
            break
    return samples


def time_sessions(sessions: dict, x: np.ndarray, **interleave) -> dict[str, list[float]]:
    """The one "prepare the batch once, then time each session's model call interleaved" loop:
    bench, quantize's indicative timing, optimize and prune all measure through it.
    `interleave`: `interleaved`'s options (warmup, iterations or duration, on_round, ...)."""
    calls = {k: (lambda s=s, p=s.prepare(x): s.infer(p)) for k, s in sessions.items()}
    return interleaved(calls, **interleave)


def time_artifacts(artifacts: dict, x: np.ndarray, *, threads: int | None = None, device: str = "cpu",
                   **interleave) -> dict[str, list[float]]:
    """Open a session per bundle artifact (`{key: artifact}` or `{key: (artifact, runtime)}`),
    time them with `time_sessions`, close them."""
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    sessions = {}
    try:
        with quiet_native():
            for key, a in artifacts.items():
                artifact, runtime = a if isinstance(a, tuple) else (a, None)
                sessions[key] = open_session(artifact, device=device, threads=threads, runtime=runtime)
        return time_sessions(sessions, x, **interleave)
    finally:
        for s in sessions.values():
            s.close()


class _TorchModule:
    """A torch module behind the Session calls `time_sessions` makes (prepare, infer), so eager
    PyTorch is timed by the same loop as the runtimes."""

    def __init__(self, model):
        self.model = model

    def prepare(self, x):
        import torch

        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def infer(self, x):
        return self.model(x)


def time_torch(models: dict, x: np.ndarray, threads: int, **interleave) -> dict[str, list[float]]:
    """Eager PyTorch models timed like artifacts (interleaved), at `threads` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    with torch.inference_mode():
        return time_sessions({k: _TorchModule(m) for k, m in models.items()}, x, **interleave)


def median_ms(samples: dict[str, list[float]]) -> dict[str, float]:
    return {k: float(np.median(v)) * 1e3 for k, v in samples.items()}


# ---- when a row's timing cannot be trusted (the one rule; bench records it, report applies it) --

MIN_QUERIES = 100  # MLPerf's habit: a minimum number of timed calls per row as well as a duration
MAX_TAIL = 3.0  # p99 / p50: a wider tail is the machine (or the runtime's threads) interfering
MAX_CV = 1.0  # standard deviation / mean
MAX_OTHER_CPU = 0.10  # share of this process's cores used by other processes while timing
MAX_STEAL = 0.05  # share of the cores a virtual machine's host took back while timing


def stability(latency: dict, load: dict | None = None) -> dict:
    """The spread of one row's latencies and a verdict: "stable", or "unstable" with the reasons
    (each says what was seen). `latency`: a row's latency_ms; `load`: the run's load object.

    Example: `stability({"n": 500, "p50": 6.0, "p99": 82.0, "mean": 9.0, "std": 20.0})["verdict"]
    == "unstable"`.
    """
    tail = latency["p99"] / latency["p50"] if latency.get("p50") else None
    cv = latency["std"] / latency["mean"] if latency.get("mean") else None
    reasons = []
    if latency["n"] < MIN_QUERIES:
        reasons.append(f"only {latency['n']} timed calls (fewer than {MIN_QUERIES})")
    if tail is not None and tail > MAX_TAIL:
        reasons.append(f"p99 is {tail:.1f}× p50 (more than {MAX_TAIL:g}×)")
    if cv is not None and cv > MAX_CV:
        reasons.append(f"coefficient of variation {cv:.2f} (more than {MAX_CV:g})")
    load = load or {}
    other, steal = load.get("other_processes_cpu_share"), load.get("steal_share")
    if other is not None and other > MAX_OTHER_CPU:
        reasons.append(f"other processes used {100 * other:.0f} % of the cores while timing")
    if steal is not None and steal > MAX_STEAL:
        reasons.append(f"the host stole {100 * steal:.0f} % of the CPU time while timing")
    return {"p99_over_p50": None if tail is None else round(tail, 3), "cv": None if cv is None else round(cv, 3),
            "verdict": "unstable" if reasons else "stable", "reasons": reasons}
