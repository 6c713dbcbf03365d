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


class ResultsError(EdgemedError):
    pass


def validate(obj, source: str = "results") -> dict:
    """Check a results object's shape and version; returns it. Raises ResultsError naming the problem."""
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
    if not isinstance(obj["rows"], list) or not obj["rows"]:
        raise ResultsError(f"{source} has no result rows")
    for i, row in enumerate(obj["rows"]):
        missing = [k for k in ROW_REQUIRED if k not in row]
        if missing:
            raise ResultsError(f"{source}: row {i} lacks {', '.join(missing)}")
        lat = row["latency_ms"]
        if not isinstance(lat, dict) or any(k not in lat for k in LATENCY_KEYS):
            raise ResultsError(f"{source}: row {i} has malformed latency_ms")
    for key in ("sha256", "path"):
        if key not in obj["bundle"]:
            raise ResultsError(f"{source}: bundle lacks {key}")
    return obj


def load_results(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"results file not found: {p}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p} is corrupt: not valid JSON ({e}); rerun `edgemed bench`") from None
    return validate(obj, str(p))
