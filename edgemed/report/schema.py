"""The versioned results schema of `edgemed bench` (documented in edgemed/report/results.schema.json).

A results file holds one bench run: the bundle it measured (path, manifest sha256, model, data
set), the machine (`system`), the settings, the baseline artifact, and one row per (artifact,
runtime, device, threads, batch): latency stats in ms, throughput, load/first-inference time,
peak memory, size, pre/post-processing time, ratios to the baseline, accuracy metrics with 95 %
CIs and retention against the FP32 reference.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgemed.errors import EdgemedError

SCHEMA = "edgemed-bench-results"
SCHEMA_VERSION = 1
TOP_LEVEL = ("schema", "schema_version", "edgemed_version", "created", "bundle", "system", "settings", "rows")
ROW_REQUIRED = ("artifact", "format", "precision", "runtime", "device", "threads", "batch", "size_bytes",
                "latency_ms")
LATENCY_KEYS = ("n", "mean", "std", "min", "p50", "p90", "p95", "p99", "max")
METRICS = ("accuracy", "auc")  # accuracy metrics the report reads (each {"value", "ci"})


class ResultsError(EdgemedError):
    pass


def validate(obj, source: str = "results") -> dict:
    """Check a results object's shape and version; returns it. Raises ResultsError naming the problem.

    Example: `validate(json.loads(Path("r.json").read_text()), "r.json")`.
    """
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise ResultsError(f"{source} is not an edgemed bench results file")
    version = obj.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ResultsError(f"{source}: invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{source} uses results schema {version}, newer than this edgemed reads "
                           f"({SCHEMA_VERSION}): upgrade edgemed")
    missing = [k for k in TOP_LEVEL if k not in obj]
    if missing:
        raise ResultsError(f"{source} lacks {', '.join(missing)}")
    for key in ("bundle", "system", "settings"):
        if not isinstance(obj[key], dict):
            raise ResultsError(f"{source}: {key} is not an object")
    if not isinstance(obj["rows"], list) or not obj["rows"]:
        raise ResultsError(f"{source} has no result rows")
    for i, row in enumerate(obj["rows"]):
        _check_row(row, f"{source}: row {i}")
    for key in ("sha256", "path"):
        if key not in obj["bundle"]:
            raise ResultsError(f"{source}: bundle lacks {key}")
    return obj


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_row(row, where: str) -> None:
    # the report reads these fields without further checks, so a hand-edited file fails here
    # with the field named rather than deep inside a table or plot
    if not isinstance(row, dict):
        raise ResultsError(f"{where} is not an object")
    missing = [k for k in ROW_REQUIRED if k not in row]
    if missing:
        raise ResultsError(f"{where} lacks {', '.join(missing)}")
    lat = row["latency_ms"]
    if not isinstance(lat, dict) or any(k not in lat for k in LATENCY_KEYS):
        raise ResultsError(f"{where} has malformed latency_ms")
    if any(not _number(lat[k]) for k in LATENCY_KEYS):
        raise ResultsError(f"{where}: latency_ms holds a value that is not a number")
    if not _number(row["size_bytes"]) or not isinstance(row["batch"], int) or row["batch"] < 1:
        raise ResultsError(f"{where}: size_bytes and batch must be numbers (batch ≥ 1)")
    if row["threads"] is not None and not isinstance(row["threads"], int):
        raise ResultsError(f"{where}: threads must be an integer or null")
    samples = row.get("latency_samples_ms")
    if samples is not None and (not isinstance(samples, list) or not all(_number(v) for v in samples)):
        raise ResultsError(f"{where}: latency_samples_ms must be a list of numbers")
    acc = row.get("accuracy")
    if acc is not None:
        metrics = acc.get("metrics") if isinstance(acc, dict) else None
        if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), dict) for k in METRICS):
            raise ResultsError(f"{where}: accuracy.metrics lacks {', '.join(METRICS)}")
        retention = acc.get("retention")
        if retention is not None and (not isinstance(retention, dict)
                                      or not all(isinstance(retention.get(k), dict) for k in METRICS)):
            raise ResultsError(f"{where}: accuracy.retention lacks {', '.join(METRICS)}")


def load_results(path: str | Path) -> dict:
    """Read and validate one results file. Example: `load_results("results.json")["rows"]`."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"results file not found: {p}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p} is corrupt: not valid JSON ({e}); rerun `edgemed bench`") from None
    return validate(obj, str(p))
