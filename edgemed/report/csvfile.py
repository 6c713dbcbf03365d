"""results.csv: one flat row per result row of every section, for spreadsheets and scripts.
Raw units (ms, bytes, MiB, fractions; retention in points); `section`, `bundle_sha256`,
`dataset` and `split` say which rows may be compared: never average across sections."""

from __future__ import annotations

import csv
import io

from edgemed.report.compare import check_bound, pareto_flags
from edgemed.report.merge import Entry, Merged

COLUMNS = [
    "section", "run", "device_label", "cpu", "machine", "device", "runtime", "format", "precision",
    "artifact", "name", "threads", "batch",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms", "latency_n",
    "latency_p99_over_p50", "latency_cv", "timing", "timing_reasons",
    "throughput_ips", "large_batch", "large_batch_throughput_ips",
    "load_s", "first_inference_ms", "peak_rss_mb", "rss_increase_mb", "size_bytes",
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "auc", "auc_ci_low", "auc_ci_high",
    "retention_reference", "retention_accuracy_pt", "retention_accuracy_ci_low_pt",
    "retention_accuracy_ci_high_pt", "retention_auc_pt", "retention_auc_ci_low_pt",
    "retention_auc_ci_high_pt", "flip_rate",
    "bound_metric", "max_drop_pt", "meets_bound", "ci_within_bound", "pareto_front",
    "model", "bundle_sha256", "dataset", "dataset_sha256", "split", "n_images",
    "timestamp", "source_file",
]


def _ci(ci, i: int, scale: float = 1.0):
    return "" if not ci else scale * ci[i]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v):
    """A value as a spreadsheet-safe cell: text a spreadsheet would run as a formula gets a
    leading `'` (OWASP's CSV injection rule); numbers stay numbers, negative ones included.

    Example: `csv_cell("=1+1") == "'=1+1" and csv_cell(-2.5) == -2.5`.
    """
    if v is None:
        return ""
    if isinstance(v, str) and v.startswith(FORMULA_START):
        return "'" + v
    return v


def csv_row(e: Entry, section_id: str, metric: str, max_drop: float, on_front: bool | None) -> dict:
    """The flat record of one result row."""
    r, s = e.row, e.source
    cold = r.get("cold") or {}
    large = r.get("throughput_large_batch_ips") or {}
    split = s.settings.get("split") or {}
    acc, acc_ci = e.metric("accuracy")
    auc, auc_ci = e.metric("auc")
    out = {
        "section": section_id, "run": s.run, "device_label": e.device, "cpu": s.system.get("cpu"),
        "machine": s.system.get("machine"), "device": r["device"], "runtime": r["runtime"],
        "format": r["format"], "precision": r["precision"], "artifact": r["artifact"], "name": e.name,
        "threads": r["threads"], "batch": r["batch"],
        "latency_p50_ms": r["latency_ms"]["p50"], "latency_p90_ms": r["latency_ms"]["p90"],
        "latency_p99_ms": r["latency_ms"]["p99"], "latency_mean_ms": r["latency_ms"]["mean"],
        "latency_n": r["latency_ms"]["n"],
        "throughput_ips": (r.get("throughput_ips") or {}).get("value"),
        "large_batch": large.get("batch"), "large_batch_throughput_ips": large.get("value"),
        "load_s": cold.get("load_s"), "first_inference_ms": cold.get("first_inference_ms"),
        "peak_rss_mb": cold.get("peak_rss_mb"), "rss_increase_mb": cold.get("rss_increase_mb"),
        "size_bytes": r["size_bytes"],
        "accuracy": acc, "accuracy_ci_low": _ci(acc_ci, 0), "accuracy_ci_high": _ci(acc_ci, 1),
        "auc": auc, "auc_ci_low": _ci(auc_ci, 0), "auc_ci_high": _ci(auc_ci, 1),
        "retention_reference": s.reference if r.get("accuracy") else None,
        "flip_rate": ((r.get("accuracy") or {}).get("retention") or {}).get("flip_rate"),
        "bound_metric": metric, "max_drop_pt": max_drop,
        "model": s.bundle.get("model"), "bundle_sha256": s.bundle["sha256"],
        "dataset": split.get("name"), "dataset_sha256": split.get("sha256"), "split": split.get("split"),
        "n_images": split.get("n"), "timestamp": s.results.get("created"), "source_file": s.path,
    }
    for m in ("accuracy", "auc"):
        d = e.retention(m) or ({"difference": 0.0, "ci": [0.0, 0.0]} if e.is_reference else {})
        diff = d.get("difference")
        out[f"retention_{m}_pt"] = None if diff is None else 100 * diff
        out[f"retention_{m}_ci_low_pt"] = _ci(d.get("ci"), 0, 100.0)
        out[f"retention_{m}_ci_high_pt"] = _ci(d.get("ci"), 1, 100.0)
    st = e.stability
    out |= {"latency_p99_over_p50": st["p99_over_p50"], "latency_cv": st["cv"], "timing": st["verdict"],
            "timing_reasons": "; ".join(st["reasons"])}
    b = check_bound(e, metric, max_drop)
    out["meets_bound"], out["ci_within_bound"] = b.status, b.ci_status
    out["pareto_front"] = "" if on_front is None else ("yes" if on_front else "no")
    return {k: csv_cell(v) for k, v in out.items()}


def results_csv(merged: Merged, metric: str = "accuracy", max_drop: float = 0.5) -> str:
    """The CSV text. Example: `results_csv(load_all(["a.json"])).splitlines()[0].startswith("section,")`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for section in merged.sections:
        front = pareto_flags(section.entries, metric)
        for e in section.entries:
            writer.writerow(csv_row(e, section.id, metric, max_drop, front.get(id(e))))
    return buf.getvalue()
