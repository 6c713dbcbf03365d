"""The versioned results schema of `edgemed bench` (documented in edgemed/report/results.schema.json).

A results file holds one bench run: the bundle it measured (path, manifest sha256, model, data
set), the machine (`system`), the settings, the baseline artifact, and one row per (artifact,
runtime, device, threads, batch): latency stats in ms, throughput, load/first-inference time,
peak memory, size, pre/post-processing time, ratios to the baseline, accuracy metrics with 95 %
CIs and retention against the FP32 reference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NoReturn

from edgemed.errors import EdgemedError

SCHEMA = "edgemed-bench-results"
SCHEMA_VERSION = 1
TOP_LEVEL = ("schema", "schema_version", "edgemed_version", "created", "bundle", "system", "settings", "rows")
ROW_REQUIRED = ("artifact", "format", "precision", "runtime", "device", "threads", "batch", "size_bytes",
                "latency_ms")
LATENCY_KEYS = ("n", "mean", "std", "min", "p50", "p90", "p95", "p99", "max")
METRICS = ("accuracy", "auc")  # accuracy metrics the report reads (each {"value", "ci"})


MAX_BYTES = 64 * 2**20  # a real results file is well under 1 MiB
MAX_DEPTH = 32  # a real one nests 8 deep; deeper input would only exhaust the stack
MAX_ROWS = 1000  # every row is drawn and labelled in the plots
MAX_SAMPLES = 500  # bench keeps at most 500 evenly spaced samples per row
MAX_NAME = 200  # names are drawn in plots: a longer one would make a huge image
MAX_TEXT = 4096  # paths, notes, error lines
MAX_CLASSES = 10_000  # as many as a bundle may have (export/bundle.py); one clinical-table row per class and row
MAX_CASES = 100  # flipped cases shown per row (bench keeps 24)
MAX_THUMBNAILS = 5000
MAX_THUMBNAIL_CHARS = 64 * 1024  # base64 of a ≤ 256 px PNG
FIX = "regenerate it with `edgemed bench BUNDLE --out RESULTS.json`"


class ResultsError(EdgemedError):
    pass


def _fail(where: str, problem: str) -> NoReturn:
    raise ResultsError(f"{where} {problem}: {FIX}")


def _depth(obj) -> int:
    # iterative: recursion is what a hostile file would exhaust
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, d)
            if d > MAX_DEPTH:
                return d
            stack += [(v, d + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def _number(v, low: float = -1e15, high: float = 1e15) -> bool:
    # finite and bounded, so any product or format the report makes of it stays finite
    return isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high


def _integer(v, low: int = -(2**53)) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= 2**53


def _pair(v, low: float, high: float) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_number(x, low, high) for x in v)


def _text(v, limit: int) -> bool:
    return isinstance(v, str) and len(v) <= limit


# kind → (test, words for the error); the report formats, sorts and hashes these values as is
KINDS = {
    "name": (lambda v: _text(v, MAX_NAME), f"a string of at most {MAX_NAME} characters"),
    "text": (lambda v: _text(v, MAX_TEXT), f"a string of at most {MAX_TEXT} characters"),
    "names": (lambda v: isinstance(v, list) and all(_text(x, MAX_NAME) for x in v), "a list of short strings"),
    "strings": (lambda v: isinstance(v, dict) and all(_text(x, MAX_TEXT) for x in v.values()),
                "an object of strings"),
    "sha256": (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
               "64 lowercase hex digits"),
    "int": (_integer, "an integer"),
    "count": (lambda v: _integer(v, 0), "an integer ≥ 0"),
    "positive": (lambda v: _integer(v, 1), "an integer ≥ 1"),
    "number": (_number, "a finite number"),
    "size": (lambda v: _number(v, 0), "a finite number ≥ 0"),
    "fraction": (lambda v: _number(v, 0, 1), "a number in [0, 1]"),
    "difference": (lambda v: _number(v, -1, 1), "a number in [-1, 1]"),
    "ci": (lambda v: _pair(v, 0, 1), "a pair of numbers in [0, 1]"),
    "difference_ci": (lambda v: _pair(v, -1, 1), "a pair of numbers in [-1, 1]"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "loadavg": (lambda v: isinstance(v, list) and len(v) == 3 and all(_number(x, 0) for x in v),
                "three numbers ≥ 0"),
    "records": (lambda v: isinstance(v, list) and len(v) <= MAX_ROWS and all(
        isinstance(r, dict) and all(_text(x, MAX_TEXT) for x in r.values()) for r in v),
                f"a list of at most {MAX_ROWS} objects of strings"),
    "probs": (lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(_number(x, 0, 1) for x in v),
              f"a list of at most {MAX_CLASSES} probabilities"),
    "samples": (lambda v: isinstance(v, list) and len(v) <= MAX_SAMPLES and all(_number(x, 0) for x in v),
                f"a list of at most {MAX_SAMPLES} numbers ≥ 0"),
}

# the fields the report reads, by object; a field not listed is ignored, one listed may be null
# unless required (then it must be present, and null only where its kind ends with "?")
BUNDLE = {"sha256": "sha256", "path": "text", "model": "name", "failed": "records", "recommended": "name",
          "class_names": "names"}
SYSTEM = {"cpu": "name", "machine": "name", "cores_logical": "int", "cores_available": "int",
          "os": "text", "distro": "text", "isa": "names", "libraries": "strings", "env_threads": "strings"}
SETTINGS = {"device": "name", "threads": "int", "batch": "int", "large_batch": "int", "warmup": "int",
            "duration_s": "number", "iterations": "int", "min_iterations": "int", "interleaved": "bool", "split": "object",
            "n_boot": "int", "rss_note": "text", "operating_point": "object"}
LOAD = {"seconds": "size", "cores": "int", "other_processes_cpu_share": "fraction", "steal_share": "fraction",
        "own_cpu_share": "fraction", "involuntary_switches_per_s": "size", "loadavg_before": "loadavg",
        "loadavg_after": "loadavg", "freq_mhz_before": "size", "freq_mhz_after": "size"}
OPERATING_POINT = {"rule": "name", "threshold": "fraction", "target_sensitivity": "fraction", "fixed_on": "name",
                   "positive_class": "name"}
SPLIT = {"name": "name", "split": "name", "n": "count", "sha256": "text", "limit": "count",
         "matches_training_data": "bool"}
ROW = {"artifact": "name", "name": "name", "format": "name", "precision": "name", "runtime": "name",
       "device": "name", "threads": "int?", "batch": "positive", "size_bytes": "size",
       "latency_ms": "object", "latency_samples_ms": "samples", "throughput_ips": "object",
       "throughput_large_batch_ips": "object", "cold": "object", "accuracy": "object",
       "ratio_to_baseline": "object", "compute": "object"}
COMPUTE = {"macs_per_image": "count", "achieved_gmacs": "size", "peak_gmacs": "size", "share_of_peak": "size",
           "peak_precision": "name"}
THROUGHPUT = {"batch": "int", "value": "size"}
COLD = {"load_s": "size", "first_inference_ms": "size", "peak_rss_mb": "size", "rss_increase_mb": "number",
        "error": "text"}
ESTIMATE = {"value": "fraction", "ci": "ci"}
RETENTION = {"reference": "name", "flip_rate": "fraction"}
DIFFERENCE = {"difference": "difference", "ci": "difference_ci"}
CALIBRATION = {"ece": "fraction", "brier": "size"}
CALIBRATION_BIN = {"low": "fraction", "high": "fraction", "n": "count", "accuracy": "fraction", "confidence": "fraction"}
MAX_BINS = 100
CLINICAL_CLASS = {"class": "name", "n": "count"}
CLINICAL_RATE = {"reference": "fraction", "value": "fraction", "difference": "difference", "ci": "difference_ci"}
CLINICAL_RATES = ("sensitivity", "specificity", "ppv", "npv")
FLIPS = {"count": "count", "n": "count"}
FLIP_CLASS = {"class": "name", "count": "count", "n": "count", "now_correct": "count"}
FLIP_CASE = {"index": "count", "label": "count", "reference_decision": "count", "decision": "count",
             "reference_probs": "probs", "probs": "probs"}


def _fields(obj, where: str, spec: dict[str, str], required=()) -> dict:
    if not isinstance(obj, dict):
        _fail(where, "is not an object")
    missing = [k for k in required if k not in obj]
    if missing:
        _fail(where, f"lacks {', '.join(missing)}")
    for key, kind in spec.items():
        value = obj.get(key)
        if value is None and (key not in required or kind.endswith("?")):
            continue
        test, words = KINDS[kind.rstrip("?")]
        if not test(value):
            _fail(f"{where}:", f"{key} must be {words}, not {_show(value)}")
    return obj


def _show(v) -> str:
    """A short, one-line, terminal-safe picture of a bad value."""
    if isinstance(v, str):
        return repr(v[:40]) + ("…" if len(v) > 40 else "")
    if isinstance(v, (bool, float)) or v is None or (isinstance(v, int) and abs(v) < 10**18):
        return repr(v)
    return {dict: "an object", list: "a list", int: "a huge integer"}.get(type(v), type(v).__name__)


def validate(obj, source: str = "results") -> dict:
    """Check a results object's shape, version and every field the report reads; returns it.
    Raises ResultsError naming the problem.

    Example: `validate(json.loads(Path("r.json").read_text()), "r.json")`.
    """
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise ResultsError(f"{source} is not an edgemed bench results file: give one written by "
                           "`edgemed bench BUNDLE --out RESULTS.json`")
    version = obj.get("schema_version")
    if not _integer(version, 1):
        _fail(f"{source}:", f"invalid schema_version {_show(version)}")
    if version > SCHEMA_VERSION:
        raise ResultsError(f"{source} uses results schema {version}, newer than this edgemed reads "
                           f"({SCHEMA_VERSION}): upgrade edgemed")
    if _depth(obj) > MAX_DEPTH:
        _fail(source, f"is nested too deeply (over {MAX_DEPTH} levels)")
    _fields(obj, source, {"edgemed_version": "name", "created": "name", "baseline": "name",
                          "bundle": "object", "system": "object", "settings": "object"}, TOP_LEVEL)
    _fields(obj["bundle"], f"{source}: bundle", BUNDLE, ("sha256", "path"))
    _fields(obj["system"], f"{source}: system", SYSTEM)
    settings = _fields(obj["settings"], f"{source}: settings", SETTINGS)
    if settings.get("split") is not None:
        _fields(settings["split"], f"{source}: settings.split", SPLIT, ("name", "split", "n"))
    if settings.get("operating_point") is not None:
        _fields(settings["operating_point"], f"{source}: settings.operating_point", OPERATING_POINT)
    _fields(obj, source, {"skipped": "records"})
    if len(obj["bundle"].get("class_names") or []) > MAX_CLASSES:
        _fail(f"{source}:", f"bundle.class_names lists more than {MAX_CLASSES} classes")
    card = obj["bundle"].get("card")
    if card is not None:
        sections = card.get("sections") if isinstance(card, dict) else None
        if not isinstance(sections, list) or len(sections) > 20 or not all(
                isinstance(x, dict) and _text(x.get("title"), MAX_NAME) and isinstance(x.get("items"), list)
                and len(x["items"]) <= 100 and all(isinstance(i, dict) and _text(i.get("label"), MAX_NAME)
                                                   and _text(i.get("value"), 4 * MAX_TEXT) for i in x["items"])
                for x in sections):
            _fail(f"{source}:", "bundle.card must hold at most 20 sections of at most 100 (label, value) texts")
    thumbs = obj.get("thumbnails")
    if thumbs is not None and not (isinstance(thumbs, dict) and len(thumbs) <= MAX_THUMBNAILS and all(
            isinstance(k, str) and k.isdigit() and len(k) <= 12 and _text(v, MAX_THUMBNAIL_CHARS)
            for k, v in thumbs.items())):
        _fail(f"{source}:", f"thumbnails must map at most {MAX_THUMBNAILS} image indexes to base64 PNGs of at most "
                            f"{MAX_THUMBNAIL_CHARS} characters")
    peak = obj.get("peak")
    if peak is not None:
        _fields(peak, f"{source}: peak", {"what": "text", "macs_per_call": "count", "runtimes": "object"})
        if len(peak.get("runtimes") or {}) > 50:
            _fail(f"{source}:", "peak.runtimes lists more than 50 runtimes")
        for name, values in (peak.get("runtimes") or {}).items():
            if not _text(name, MAX_NAME):
                _fail(f"{source}:", "peak.runtimes has a runtime name that is not short text")
            _fields(values, f"{source}: peak.runtimes.{name[:40]}", {"fp32": "size", "int8": "size"})
    if obj.get("load") is not None:
        _fields(obj["load"], f"{source}: load", LOAD)
    rows = obj["rows"]
    if not isinstance(rows, list) or not rows:
        _fail(source, "has no result rows")
    if len(rows) > MAX_ROWS:
        _fail(source, f"has {len(rows)} result rows, more than the {MAX_ROWS} a report can show")
    for i, row in enumerate(rows):
        _check_row(row, f"{source}: row {i}")
    return obj


def _check_row(row, where: str) -> None:
    # the report reads these fields without further checks, so a hand-edited file fails here
    # with the field named rather than deep inside a table or plot
    _fields(row, where, ROW, ROW_REQUIRED)
    lat = row["latency_ms"]
    if any(k not in lat for k in LATENCY_KEYS):
        _fail(where, "has malformed latency_ms")
    if not all(_number(lat[k], 0) for k in LATENCY_KEYS):
        _fail(f"{where}:", "latency_ms holds a value that is not a number ≥ 0")
    if lat["p50"] <= 0:  # throughput is batch / p50
        _fail(f"{where}:", "latency_ms.p50 must be > 0")
    for key, spec in (("throughput_ips", THROUGHPUT), ("throughput_large_batch_ips", THROUGHPUT),
                      ("cold", COLD), ("ratio_to_baseline", {"speedup_p50": "size"}), ("compute", COMPUTE)):
        if row.get(key) is not None:
            _fields(row[key], f"{where}: {key}", spec)
    acc = row.get("accuracy")
    if acc is None:
        return
    metrics = acc.get("metrics")
    if not isinstance(metrics, dict) or not all(isinstance(metrics.get(k), dict) for k in METRICS):
        _fail(f"{where}:", f"accuracy.metrics lacks {', '.join(METRICS)}")
    for key in (*METRICS, "balanced_accuracy"):
        if metrics.get(key) is not None:
            _fields(metrics[key], f"{where}: accuracy.metrics.{key}", ESTIMATE)
    per_class = metrics.get("per_class")
    if per_class is not None:  # the gate reads its sensitivity and specificity
        if not isinstance(per_class, list) or len(per_class) > MAX_CLASSES:
            _fail(f"{where}:", f"accuracy.metrics.per_class must be a list of at most {MAX_CLASSES} classes")
        for i, entry in enumerate(per_class):
            _fields(entry, f"{where}: accuracy.metrics.per_class[{i}]", CLINICAL_CLASS, ("class", "sensitivity", "specificity"))
            for rate in ("sensitivity", "specificity"):
                _fields(entry[rate], f"{where}: accuracy.metrics.per_class[{i}].{rate}", ESTIMATE)
    if acc.get("calibration") is not None:
        _fields(acc["calibration"], f"{where}: accuracy.calibration", CALIBRATION, ("ece", "brier"))
        bins = acc["calibration"].get("bins") or []
        if not isinstance(bins, list) or len(bins) > MAX_BINS:
            _fail(f"{where}:", f"accuracy.calibration.bins must be a list of at most {MAX_BINS} bins")
        for i, b in enumerate(bins):
            _fields(b, f"{where}: accuracy.calibration.bins[{i}]", CALIBRATION_BIN, tuple(CALIBRATION_BIN))
    clinical = acc.get("clinical")
    if clinical is not None:
        if not isinstance(clinical, list) or len(clinical) > MAX_CLASSES:
            _fail(f"{where}:", f"accuracy.clinical must be a list of at most {MAX_CLASSES} classes")
        for i, entry in enumerate(clinical):
            _fields(entry, f"{where}: accuracy.clinical[{i}]", CLINICAL_CLASS, ("class", "n", *CLINICAL_RATES))
            for rate in CLINICAL_RATES:
                _fields(entry[rate], f"{where}: accuracy.clinical[{i}].{rate}", CLINICAL_RATE)
    flips = acc.get("flips")
    if flips is not None:
        _fields(flips, f"{where}: accuracy.flips", FLIPS, ("count", "n"))
        for key, spec, limit in (("by_class", FLIP_CLASS, MAX_CLASSES), ("cases", FLIP_CASE, MAX_CASES)):
            items = flips.get(key) or []
            if not isinstance(items, list) or len(items) > limit:
                _fail(f"{where}:", f"accuracy.flips.{key} must be a list of at most {limit} entries")
            for i, item in enumerate(items):
                _fields(item, f"{where}: accuracy.flips.{key}[{i}]", spec, tuple(spec))
    retention = acc.get("retention")
    if retention is None:
        return
    if not isinstance(retention, dict) or not all(isinstance(retention.get(k), dict) for k in METRICS):
        _fail(f"{where}:", f"accuracy.retention lacks {', '.join(METRICS)}")
    _fields(retention, f"{where}: accuracy.retention", RETENTION)
    for key in (*METRICS, "balanced_accuracy"):
        if retention.get(key) is not None:
            _fields(retention[key], f"{where}: accuracy.retention.{key}", DIFFERENCE)


def load_results(path: str | Path) -> dict:
    """Read and validate one results file. Example: `load_results("results.json")["rows"]`."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"results file not found: {p}: check the path (results are written by "
                           "`edgemed bench BUNDLE --out RESULTS.json`)")
    try:
        with p.open("rb") as f:
            data = f.read(MAX_BYTES + 1)  # bounded: the size on disk may change under us
    except OSError as e:
        raise ResultsError(f"cannot read {p} ({e.strerror or e}): check its permissions") from None
    if len(data) > MAX_BYTES:
        _fail(str(p), f"is larger than {MAX_BYTES // 2**20} MiB, too large for a results file")
    try:
        obj = json.loads(data.decode("utf-8"))
    except RecursionError:
        _fail(str(p), f"is nested too deeply (over {MAX_DEPTH} levels)")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers over 4300 digits
        reason = str(e).splitlines()[0][:100] if str(e) else type(e).__name__
        raise ResultsError(f"{p} is corrupt: not valid JSON ({reason}); rerun `edgemed bench "
                           "BUNDLE --out RESULTS.json`") from None
    return validate(obj, str(p))
