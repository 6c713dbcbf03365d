"""The buyer's view: per device the artifact it would deploy, with cost per image/s and watt
from an optional devices file; every artifact's status (passed, failed the bound or parity,
failed to export, not run on a device); and the CI gate (`--fail-below METRIC=VALUE`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgemed.errors import EdgemedError
from edgemed.report.compare import check_bound
from edgemed.report.merge import Entry, Section

MAX_DEVICES = 200
DEVICES_FIX = ("write it as `devices: [{match: \"Cortex-A76\", name: \"Raspberry Pi 5\", price: 80, "
               "currency: EUR, power_w: 7}]` (match: part of the report's device label or a run id)")


@dataclass(frozen=True)
class DeviceInfo:
    """What the buyer knows about a device: its price and power draw."""

    match: str
    name: str
    price: float | None = None
    currency: str = ""
    power_w: float | None = None


def load_devices(path: str | Path) -> list[DeviceInfo]:
    """Read a devices file (YAML or JSON: a `devices` list of {match, name, price, currency,
    power_w}); bounded, no code, one clear error naming the entry otherwise."""
    from edgemed.fileio import read_yaml

    doc = read_yaml(path, "devices file", fix=DEVICES_FIX)
    items = doc.get("devices") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise EdgemedError(f"devices file {path} has no `devices` list: {DEVICES_FIX}")
    if len(items) > MAX_DEVICES:
        raise EdgemedError(f"devices file {path} lists {len(items)} devices, more than {MAX_DEVICES}: split it")
    out = []
    for i, d in enumerate(items):
        where = f"devices file {path}: entry {i + 1}"
        if not isinstance(d, dict) or not isinstance(d.get("match"), str) or not d["match"].strip():
            raise EdgemedError(f"{where} needs `match`, a part of a device label or a run id: {DEVICES_FIX}")
        unknown = set(d) - {"match", "name", "price", "currency", "power_w"}
        if unknown:
            raise EdgemedError(f"{where} has unknown keys {', '.join(sorted(map(str, unknown)))}: {DEVICES_FIX}")
        for key in ("price", "power_w"):
            v = d.get(key)
            # the range first: a 400-digit integer is a number YAML reads and isfinite() cannot take
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1e9
                                  or not math.isfinite(v)):
                raise EdgemedError(f"{where}: {key} must be a number > 0, not {v!r}")
        for key in ("match", "name", "currency"):
            if d.get(key) is not None and (not isinstance(d[key], str) or len(d[key]) > 200):
                raise EdgemedError(f"{where}: {key} must be text of at most 200 characters")
        out.append(DeviceInfo(d["match"].strip(), (d.get("name") or d["match"]).strip(),
                              None if d.get("price") is None else float(d["price"]), d.get("currency") or "",
                              None if d.get("power_w") is None else float(d["power_w"])))
    return out


def device_info(entry: Entry, devices: list[DeviceInfo]) -> DeviceInfo | None:
    """The devices-file entry for a row: one naming its run id (R1, R2…) exactly, else the one
    whose `match` is the longest part of its device label ("Cortex-A76" before "Cortex-A7")."""
    import re

    for d in devices:
        if re.fullmatch(r"R\d+", d.match) and d.match == entry.source.run:
            return d
    label = entry.device.lower()
    found = [d for d in devices if not re.fullmatch(r"R\d+", d.match) and d.match.lower() in label]
    return max(found, key=lambda d: len(d.match)) if found else None


def _recommended_id(entry: Entry) -> str | None:
    rec = entry.source.bundle.get("recommended")
    if isinstance(rec, dict):
        rec = rec.get("id") or rec.get("artifact")
    return rec if isinstance(rec, str) else None


def chosen_rows(section: Section, metric: str, max_drop: float) -> list[tuple[Entry, str]]:
    """Per device: the row it would deploy and why. The bundle's recommended artifact where it
    was measured there; else the fastest row that meets the bound (the reference if none does)."""
    out = []
    for device in section.devices:
        rows = [e for e in section.entries if e.device == device]
        ok = {id(e) for e in rows if check_bound(e, metric, max_drop).status in ("yes", "reference")}
        # the recommendation holds only where it meets the bound on this device (runtimes differ)
        rec = [e for e in rows if e.row["artifact"] == _recommended_id(e) and id(e) in ok]
        if rec:
            out.append((min(rec, key=lambda e: e.latency["p50"]), "the bundle's recommendation"))
            continue
        within = [e for e in rows if id(e) in ok]
        if within:
            out.append((min(within, key=lambda e: e.latency["p50"]), "fastest within the bound"))
        elif any(e.metric(metric)[0] is not None for e in rows):
            out.append((min(rows, key=lambda e: e.latency["p50"]), "fastest; no row meets the bound"))
        else:
            out.append((min(rows, key=lambda e: e.latency["p50"]), "fastest (accuracy not measured)"))
    return out


def _best_throughput(e: Entry) -> tuple[float, int]:
    """(images/s, at batch): the row's batch or the large batch, whichever gives more."""
    large = e.row.get("throughput_large_batch_ips") or {}
    small = (e.row.get("throughput_ips") or {}).get("value") or e.row["batch"] * 1e3 / e.latency["p50"]
    if large.get("value") and large["value"] > small:
        return large["value"], large.get("batch") or e.row["batch"]
    return small, e.row["batch"]


def decision_rows(section: Section, metric: str, max_drop: float,
                  devices: list[DeviceInfo] | None = None) -> list[dict]:
    """The decision table's records: one per device, numbers raw (the writers format them)."""
    records = []
    for e, why in chosen_rows(section, metric, max_drop):
        b = check_bound(e, metric, max_drop)
        cold = e.row.get("cold") or {}
        info = device_info(e, devices or [])
        ips, ips_batch = _best_throughput(e)
        records.append({
            "device": info.name if info else e.device, "device_label": e.device, "row": e.name, "why": why,
            "p50_ms": e.latency["p50"], "p99_ms": e.latency["p99"], "img_s": ips, "img_s_batch": ips_batch,
            "peak_rss_mb": cold.get("peak_rss_mb"), "load_s": cold.get("load_s"),
            "first_inference_ms": cold.get("first_inference_ms"), "delta": b.delta,
            "delta_ci": None if b.drop_ci is None else (-b.drop_ci[1], -b.drop_ci[0]),
            "meets_bound": b.status, "timing": e.stability["verdict"],
            "price": info.price if info else None, "currency": info.currency if info else "",
            "power_w": info.power_w if info else None,
            "img_s_per_1000_price": None if not info or not info.price else 1000 * ips / info.price,
            "img_s_per_w": None if not info or not info.power_w else ips / info.power_w,
            "entry": e,
        })
    return records


def statuses(section: Section, metric: str, max_drop: float) -> list[tuple[str, str, str, str]]:
    """(device, artifact, status, detail) for every artifact of the section's bundle: measured
    rows, the ones a device could not run, and the ones that never made it into the bundle."""
    out = []
    for e in section.entries:
        b = check_bound(e, metric, max_drop)
        status = {"yes": "passed", "reference": "passed (reference)", "no": "failed the bound",
                  "n/a": "measured (no accuracy)"}[b.status]
        detail = "" if b.drop is None or b.status == "reference" else f"change {b.delta + 0.0:+.2f} pt"
        if e.stability["verdict"] == "unstable":
            detail = "; ".join(x for x in (detail, "timing unstable") if x)
        out.append((e.device, e.name, status, detail))
    for src in section.sources:
        for s in src.results.get("skipped") or []:
            out.append((src.device_label, str(s.get("artifact", "?")), "not run on this device",
                        str(s.get("reason", ""))))
    failed = {}
    for src in section.sources:  # one bundle per section: its failures once
        for f in src.bundle.get("failed") or []:
            failed.setdefault((f.get("format"), f.get("precision")), f)
    for (fmt, precision), f in failed.items():
        error = str(f.get("error", ""))
        status = "exported, failed parity" if "parity" in error else "failed to export"
        out.append(("all", f"{fmt}-{precision}", status, error))
    return out


# ---- the CI gate ---------------------------------------------------------------------------

GATE_METRICS = {
    "accuracy": "accuracy (fraction)", "balanced_accuracy": "balanced accuracy (fraction)",
    "auc": "ROC AUC", "sensitivity": "the lowest per-class sensitivity at the operating point",
    "specificity": "the lowest per-class specificity at the operating point",
    "img_s": "images per second", "speedup": "p50 speed-up over the run's baseline",
}


def parse_gates(specs: list[str]) -> list[tuple[str, float]]:
    """["accuracy=0.9", "img_s=200"] → [("accuracy", 0.9), ("img_s", 200.0)]; bad text is one
    clear error naming the fix."""
    gates = []
    for spec in specs or []:
        name, sep, value = str(spec).partition("=")
        name = name.strip()
        if not sep or name not in GATE_METRICS:
            raise EdgemedError(f"--fail-below {spec!r}: write METRIC=VALUE with METRIC one of "
                               f"{', '.join(GATE_METRICS)} (e.g. --fail-below accuracy=0.9)")
        try:
            v = float(value)
        except ValueError:
            raise EdgemedError(f"--fail-below {spec!r}: {value!r} is not a number") from None
        if not math.isfinite(v) or v < 0 or (name in ("accuracy", "balanced_accuracy", "auc", "sensitivity",
                                                     "specificity") and v > 1):
            raise EdgemedError(f"--fail-below {spec!r}: {name} is a fraction in [0, 1] (0.9, not 90)"
                               if v > 1 else f"--fail-below {spec!r}: give a finite value ≥ 0")
        gates.append((name, v))
    return gates


def gate_value(e: Entry, name: str) -> float | None:
    acc = e.row.get("accuracy") or {}
    if name in ("accuracy", "balanced_accuracy", "auc"):
        return e.metric(name)[0]
    if name in ("sensitivity", "specificity"):
        # at the run's operating point: a compressed row's own clinical rates; the reference's are
        # the "reference" rates recorded beside any compressed row of its run
        if e.is_reference:
            sibling = next((x for x in e.source.results["rows"] if (x.get("accuracy") or {}).get("clinical")), None)
            clinical, key = ((sibling or {}).get("accuracy") or {}).get("clinical") or [], "reference"
        else:
            clinical, key = acc.get("clinical") or [], "value"
        values = [c[name][key] for c in clinical if c[name].get(key) is not None]
        if not values and not clinical:  # a run without clinical rates: the per-class rates at the argmax
            values = [c[name]["value"] for c in (acc.get("metrics") or {}).get("per_class") or []
                      if c[name].get("value") is not None]
        return min(values) if values else None
    if name == "img_s":
        return _best_throughput(e)[0]
    return (e.row.get("ratio_to_baseline") or {}).get("speedup_p50")


def check_gates(sections: list[Section], gates: list[tuple[str, float]], metric: str,
                max_drop: float) -> list[dict]:
    """Each device's chosen row against each gate; a metric that was not measured fails (a gate
    that cannot be checked must not pass)."""
    results = []
    for s in sections:
        for e, _why in chosen_rows(s, metric, max_drop):
            for name, minimum in gates:
                value = gate_value(e, name)
                results.append({"section": s.id, "device": e.device, "row": e.name, "metric": name,
                                "value": value, "minimum": minimum,
                                "passed": value is not None and value >= minimum})
    return results
