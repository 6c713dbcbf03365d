"""Results objects for the report tests, built from one real `edgemed bench` output
(data/results_mednext_1thread.json: mednext_small on a 150-image PneumoniaMNIST test subset,
4 rows on one x86 CPU, 1 thread; latency samples thinned to 25 per row to keep it small)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
REAL = DATA / "results_mednext_1thread.json"


def real_results() -> dict:
    return json.loads(REAL.read_text())


def variant(base: dict | None = None, *, cpu: str | None = None, machine: str | None = None,
            bundle_sha: str | None = None, dataset: str | None = None, split: str | None = None,
            n: int | None = None, latency_scale: float = 1.0, threads: int | None = None) -> dict:
    """A copy of the real results as if measured elsewhere or on other data."""
    r = copy.deepcopy(base or real_results())
    if cpu:
        r["system"]["cpu"] = cpu
    if machine:
        r["system"]["machine"] = machine
    if bundle_sha:
        r["bundle"]["sha256"] = bundle_sha
    s = r["settings"]["split"]
    if dataset:
        s["name"] = dataset
    if split:
        s["split"] = split
    if n:
        s["n"] = n
    for row in r["rows"]:
        for k in ("mean", "std", "min", "p50", "p90", "p95", "p99", "max"):
            row["latency_ms"][k] *= latency_scale
        row["latency_samples_ms"] = [v * latency_scale for v in row.get("latency_samples_ms", [])]
        if threads is not None:
            row["threads"] = threads
    if threads is not None:
        r["settings"]["threads"] = threads
    return r


def set_retention(row: dict, metric: str, difference: float | None, ci: list[float] | None) -> dict:
    """Give a row a retention of `metric` vs the reference (difference = row − reference)."""
    ret = row["accuracy"].setdefault("retention", {"reference": "torch-fp32", "flip_rate": 0.0})
    ret[metric] = {"metric": metric, "difference": difference, "ci": ci, "flip_rate": 0.0, "flips": 0, "n": 150}
    return row


def write(path: Path, obj) -> Path:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path
