"""The report's tables as plain cells, shared by the Markdown and HTML writers. Every table is
built from one section, so rows of different bundles or data cannot end up in one table."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgemed.report.compare import check_bound, pareto_flags
from edgemed.report.decision import DeviceInfo, decision_rows, statuses
from edgemed.report.merge import Entry, Section, Source

MB = 2**20


@dataclass
class Table:
    """Header + string cells; `right` holds the indexes of numeric (right-aligned) columns."""

    columns: list[str]
    rows: list[list[str]]
    right: set[int] = field(default_factory=set)
    caption: str = ""


# ---- number formatting -------------------------------------------------------------------

def fmt_ms(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def fmt_rate(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_mb(v: float | None) -> str:
    return "–" if v is None else f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_metric(metric: str, value: float | None, ci: list[float] | None) -> str:
    """Accuracy in percent, AUC as a fraction, each with its CI: `90.0 [84.7, 94.7]`."""
    if value is None:
        return "n/a"
    scale, digits = (100.0, 1) if metric != "auc" else (1.0, 3)
    s = f"{scale * value:.{digits}f}"
    return f"{s} [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]" if ci else s


def fmt_delta(delta: float | None, ci: tuple[float, float] | list[float] | None) -> str:
    """Signed points with CI: `-0.67 [-2.00, +0.67]`."""
    if delta is None:
        return "n/a"
    s = f"{delta:+.2f}"
    return f"{s} [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else s


def threads_text(t: int | None) -> str:
    return "default" if t is None else str(t)


def metric_label(metric: str) -> str:
    return "AUC" if metric == "auc" else "Accuracy %"


def delta_label(metric: str) -> str:
    return "Δ AUC ×100 vs ref" if metric == "auc" else "Δ vs ref, pt"


def unit(metric: str) -> str:
    return "AUC points (×100)" if metric == "auc" else "percentage points"


def bound_definition(metric: str, max_drop: float) -> str:
    """The meets-bound rule in words, printed in every report."""
    what = "AUC" if metric == "auc" else "accuracy"
    extra = f" (= {max_drop / 100:g} AUC)" if metric == "auc" else ""
    return (f"**Meets bound** = yes when the point estimate of the drop is ≤ {max_drop:g}{extra}, where "
            f"drop = {what} of the run's FP32 reference − {what} of the row, on the same images, in "
            f"{unit(metric)}. **CI within bound** = yes when also the worse (larger-drop) end of the "
            f"paired 95 % bootstrap CI of the drop is ≤ {max_drop:g}: the stricter reading, which a "
            f"small test set often cannot support. The reference row itself is marked *reference*; "
            f"n/a: not measured.")


def _large(e: Entry) -> str:
    tl = e.row.get("throughput_large_batch_ips") or {}
    if tl.get("value") is None:
        return "–"
    return f"{fmt_rate(tl['value'])} @{tl.get('batch')}"


def _cold(e: Entry, key: str) -> float | None:
    cold = e.row.get("cold") or {}
    return cold.get(key) if "error" not in cold else None


def _throughput(e: Entry) -> float:
    tp = e.row.get("throughput_ips") or {}
    return tp.get("value") or e.row["batch"] * 1e3 / e.latency["p50"]


# ---- tables ------------------------------------------------------------------------------

def summary_table(section: Section, metric: str = "accuracy", max_drop: float = 0.5) -> Table:
    """The buyer's table: one row per measured configuration of this section's bundle.

    Example: `summary_table(merged.sections[0], "accuracy", 0.5).rows[0][0]  # "AMD EPYC · cpu"`.
    """
    cols = ["Device", "Artifact", "Format", "Precision", "Runtime", "Threads", "Batch", "p50 ms",
            "p99 ms", "img/s", "img/s large batch", "Peak RAM MB", "Size MB",
            f"{metric_label(metric)} [95% CI]", f"{delta_label(metric)} [95% CI]",
            f"Meets bound (drop ≤ {max_drop:g})", "CI within bound", "Timing", "Run"]
    rows = []
    for e in section.entries:
        b = check_bound(e, metric, max_drop)
        rows.append([e.device, e.row["artifact"], e.row["format"], e.row["precision"], e.row["runtime"],
                     threads_text(e.row["threads"]), str(e.row["batch"]), fmt_ms(e.latency["p50"]),
                     fmt_ms(e.latency["p99"]), fmt_rate(_throughput(e)), _large(e),
                     fmt_mb(_cold(e, "peak_rss_mb")), fmt_mb(e.row["size_bytes"] / MB),
                     fmt_metric(metric, *e.metric(metric)),
                     "reference" if b.status == "reference" else fmt_delta(b.delta, _flip(b.drop_ci)),
                     b.status, b.ci_status, e.stability["verdict"], e.source.run])
    return Table(cols, rows, right={5, 6, 7, 8, 9, 10, 11, 12}, caption=section.title)


def decision_table(section: Section, metric: str = "accuracy", max_drop: float = 0.5,
                   devices: list[DeviceInfo] | None = None) -> Table:
    """Devices side by side: per device the row it would deploy, its speed, memory, cold start,
    accuracy change and bound, and with a devices file images/s per price and per watt."""
    records = decision_rows(section, metric, max_drop, devices)
    priced = any(r["price"] or r["power_w"] for r in records)
    cols = ["Device", "Deploy", "Chosen as", "p50 ms", "p99 ms", "Best img/s @batch", "Peak RAM MB", "Cold start s",
            f"{delta_label(metric)} [95% CI]", f"Meets bound (drop ≤ {max_drop:g})", "Timing", "% of device peak GMAC/s"]
    if priced:
        cols += ["Price", "Power W", "img/s per 1000 of price", "img/s per W"]
    rows = []
    for r in records:
        cold = None if r["load_s"] is None else r["load_s"] + (r["first_inference_ms"] or 0) / 1e3
        row = [r["device"], r["row"], r["why"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
               f"{fmt_rate(r['img_s'])} @{r['img_s_batch']}",
               fmt_mb(r["peak_rss_mb"]), "–" if cold is None else f"{cold:.2f}",
               "reference" if r["meets_bound"] == "reference" else fmt_delta(r["delta"], r["delta_ci"]),
               r["meets_bound"], r["timing"], _compute_cells(r["entry"])[1]]
        if priced:
            row += ["–" if r["price"] is None else f"{r['price']:g} {r['currency']}".strip(),
                    "–" if r["power_w"] is None else f"{r['power_w']:g}",
                    fmt_rate(r["img_s_per_1000_price"]), "–" if r["img_s_per_w"] is None else f"{r['img_s_per_w']:.1f}"]
        rows.append(row)
    return Table(cols, rows, right={3, 4, 5, 6, 7, 11} | ({12, 13, 14, 15} if priced else set()),
                 caption=f"Devices side by side: {section.title}")


def status_table(section: Section, metric: str = "accuracy", max_drop: float = 0.5) -> Table:
    """Every artifact's fate: passed, failed the bound, not run on a device, failed parity or export."""
    rows = [list(s) for s in statuses(section, metric, max_drop)]
    return Table(["Device", "Artifact", "Status", "Detail"], rows, caption=f"Status of every artifact: {section.title}")


def _flip(drop_ci: tuple[float, float] | None) -> tuple[float, float] | None:
    # a drop CI (better, worse) as a signed-change CI (low, high)
    return None if drop_ci is None else (-drop_ci[1], -drop_ci[0])


def _delta_cell(e: Entry, metric: str) -> str:
    if e.is_reference:
        return "reference"
    r = e.retention(metric)
    if not r or r.get("difference") is None:
        return "n/a"
    ci = r.get("ci")
    return fmt_delta(100 * r["difference"], [100 * ci[0], 100 * ci[1]] if ci else None)


def details_table(section: Section, metric: str = "accuracy") -> Table:
    """Every measured number of the section, both accuracy metrics, cold start and the front."""
    cols = ["Device", "Row", "Threads", "Batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "img/s",
            "img/s large batch", "Load s", "First inference ms", "Peak RAM MB", "Model RAM MB",
            "Size MB", "Speedup vs run baseline", "Accuracy % [95% CI]", "Balanced acc. %",
            "AUC [95% CI]", "Δ acc. pt [95% CI]", "Δ AUC ×100 [95% CI]", "Flips %",
            f"Pareto ({metric_label(metric).split()[0].lower()})", "Timed calls", "p99/p50", "CV", "Timing",
            "GMAC/s", "% of device peak GMAC/s", "Run"]
    front = pareto_flags(section.entries, metric)
    rows = []
    for e in section.entries:
        lat, st = e.latency, e.stability
        load = _cold(e, "load_s")
        flips = ((e.row.get("accuracy") or {}).get("retention") or {}).get("flip_rate")
        speedup = (e.row.get("ratio_to_baseline") or {}).get("speedup_p50")
        bal = e.metric("balanced_accuracy")
        rows.append([e.device, e.name, threads_text(e.row["threads"]), str(e.row["batch"]),
                     fmt_ms(lat["p50"]), fmt_ms(lat["p90"]), fmt_ms(lat["p99"]), fmt_ms(lat["mean"]),
                     fmt_rate(_throughput(e)), _large(e), "–" if load is None else f"{load:.3f}",
                     fmt_ms(_cold(e, "first_inference_ms")), fmt_mb(_cold(e, "peak_rss_mb")),
                     fmt_mb(_cold(e, "rss_increase_mb")), fmt_mb(e.row["size_bytes"] / MB),
                     "–" if speedup is None else f"{speedup:.2f}×", fmt_metric("accuracy", *e.metric("accuracy")),
                     fmt_metric("accuracy", bal[0], None), fmt_metric("auc", *e.metric("auc")),
                     _delta_cell(e, "accuracy"), _delta_cell(e, "auc"),
                     "–" if flips is None else f"{100 * flips:.1f}",
                     "★" if front.get(id(e)) else "", str(lat["n"]), _ratio(st["p99_over_p50"]), _ratio(st["cv"]),
                     "; ".join([st["verdict"], *st["reasons"]]), *_compute_cells(e), e.source.run])
    return Table(cols, rows, right=set(range(2, 16)) | {21, 23, 24, 25, 27, 28},
                 caption=f"All measurements: {section.title}")


def _compute_cells(e: Entry) -> list[str]:
    c = e.row.get("compute") or {}
    gmacs, share, peak = c.get("achieved_gmacs"), c.get("share_of_peak"), c.get("peak_gmacs")
    shown = share is not None and peak is not None and c.get("peak_precision") is not None
    return ["–" if gmacs is None else f"{gmacs:.1f}",
            f"{100 * share:.0f} % of {peak:.0f} ({c['peak_precision'].upper()})" if shown else "–"]


def _ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _clinical(e: Entry) -> list[dict]:
    return (e.row.get("accuracy") or {}).get("clinical") or []


def _rate(r: dict) -> str:
    return "–" if r["value"] is None else f"{100 * r['value']:.1f}"


def _rate_delta(r: dict) -> str:
    d, ci = r.get("difference"), r.get("ci")
    return fmt_delta(None if d is None else 100 * d, [100 * ci[0], 100 * ci[1]] if ci else None)


def operating_point(section: Section) -> str:
    """How classes were decided for the clinical rates, in words."""
    points = [src.settings.get("operating_point") or {} for src in section.sources]
    p = points[0] if points else {}
    text = "the most probable class"
    if p.get("threshold") is not None:  # report/schema.py checked it is a fraction
        text = f"{p.get('positive_class')} when its probability is ≥ {p['threshold']:.3f}"
        if p.get("target_sensitivity") is not None:
            text += f", where {p.get('fixed_on')} reaches sensitivity {p['target_sensitivity']:g}"
    differ = any(q != p for q in points)
    return text + (" (runs in this section used different operating points)" if differ else "")


def sensitivity_change(e: Entry, with_rates: bool = True) -> str | None:
    """The row's largest sensitivity loss against the reference in words, with the paired CI:
    "sensitivity for pneumonia drops by 1.3 pt [95% CI -2.9, +0.0]" (None for the reference or
    without clinical rates)."""
    rows = [r for r in _clinical(e) if r["sensitivity"].get("difference") is not None]
    if e.is_reference or not rows:
        return None
    worst = min(rows, key=lambda r: r["sensitivity"]["difference"])
    s = worst["sensitivity"]
    d, ci = 100 * s["difference"], s.get("ci")
    change = "does not change" if d == 0 else f"drops by {-d:.1f} pt" if d < 0 else f"rises by {d:.1f} pt"
    text = f"sensitivity for {worst['class']} {change}" + (f" [95% CI {100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")
    if with_rates and s.get("reference") is not None and s.get("value") is not None:
        text += f" ({100 * s['reference']:.1f} % → {100 * s['value']:.1f} %; n = {worst['n']})"
    return text


def clinical_lines(section: Section) -> list[str]:
    """The decision line per compressed row: its largest sensitivity loss, with the paired CI."""
    return [f"{e.device} · {e.name}: {line}" for e in section.entries if (line := sensitivity_change(e))]


def clinical_table(section: Section) -> Table | None:
    """Per compressed row and class: sensitivity, specificity, PPV, NPV and their change vs the
    reference at the same operating point (paired bootstrap CIs), in percent and points."""
    cols = ["Device", "Row", "Class", "n", "Sensitivity %", "Δ sens. pt [95% CI]", "Specificity %",
            "Δ spec. pt [95% CI]", "PPV %", "Δ PPV pt [95% CI]", "NPV %", "Δ NPV pt [95% CI]"]
    rows = []
    for e in section.entries:
        if e.is_reference:
            continue
        for r in _clinical(e):
            rows.append([e.device, e.name, r["class"], str(r["n"])] +
                        [cell for rate in ("sensitivity", "specificity", "ppv", "npv")
                         for cell in (_rate(r[rate]), _rate_delta(r[rate]))])
    if not rows:
        return None
    return Table(cols, rows, right={3, 4, 6, 8, 10},
                 caption=f"Clinical retention at the reference's operating point ({operating_point(section)})")


def calibration_table(section: Section) -> Table | None:
    """Expected calibration error and Brier score of every row (lower is better)."""
    cols = ["Device", "Row", "ECE", "Δ ECE vs reference", "Brier", "Δ Brier vs reference"]
    refs = {(e.device, e.source.run): (e.row.get("accuracy") or {}).get("calibration")
            for e in section.entries if e.is_reference}
    rows = []
    for e in section.entries:
        cal = (e.row.get("accuracy") or {}).get("calibration")
        if not cal:
            continue
        ref = refs.get((e.device, e.source.run))
        dece = "reference" if e.is_reference else "–" if not ref else f"{cal['ece'] - ref['ece']:+.4f}"
        dbrier = "reference" if e.is_reference else "–" if not ref else f"{cal['brier'] - ref['brier']:+.4f}"
        rows.append([e.device, e.name, f"{cal['ece']:.4f}", dece, f"{cal['brier']:.4f}", dbrier])
    if not rows:
        return None
    return Table(cols, rows, right={2, 3, 4, 5}, caption="Calibration: expected calibration error (top-label "
                 "confidence, 15 bins) and multi-class Brier score; lower is better")


def section_notes(section: Section) -> list[str]:
    """What a reader must know to compare this section's rows."""
    notes = []
    refs = {s.run: s.reference for s in section.sources}
    names = sorted({r for r in refs.values() if r})
    if names:
        per_run = ", ".join(f"{ref} ({run})" for run, ref in refs.items() if ref)
        notes.append(f"Retention is measured against the FP32 reference of the same run on the same "
                     f"device: {per_run}.")
    without = [run for run, ref in refs.items() if not ref]
    if without and section.dataset:
        notes.append(f"{', '.join(without)} measured no FP32 reference, so its rows have no retention "
                     "or bound check (n/a).")
    runs_per_device: dict[str, list[str]] = {}
    for src in section.sources:
        runs_per_device.setdefault(src.device_label, []).append(src.run)
    for device, runs in runs_per_device.items():
        if len(runs) > 1:
            notes.append(f"On {device}, {', '.join(runs)} are separate runs: their rows were not timed "
                         "interleaved with each other, so background load may differ between them.")
    unstable = [e for e in section.entries if e.stability["verdict"] == "unstable"]
    if unstable:
        which = [f"{e.name} ({', '.join(e.stability['reasons'])})" for e in unstable[:6]]
        notes.append(f"Timing of {len(unstable)} of {len(section.entries)} rows is unstable: "
                     f"{'; '.join(which)}{'; …' if len(unstable) > 6 else ''}. Their p99 and the "
                     "ratios between them may not repeat. Rerun them on a quiet machine, with a longer "
                     "--duration, before relying on them; p50 is the most robust figure.")
    batches = sorted({e.row["batch"] for e in section.entries})
    if len(batches) > 1:
        notes.append(f"Rows use different batch sizes ({', '.join(map(str, batches))}): compare "
                     "latency only between rows of one batch size.")
    unmatched = [s.run for s in section.sources if (s.settings.get("split") or {}).get("matches_training_data") is False]
    if unmatched:
        notes.append(f"In {', '.join(unmatched)} the data file differs from the one the bundle was trained on.")
    return notes


def _measured(settings: dict) -> str:
    if settings.get("iterations"):
        return f"{settings['iterations']} calls per row"
    if settings.get("duration_s"):
        return f"{settings['duration_s']:g} s per row (at least {settings.get('min_iterations') or 10} calls)"
    return "–"


def _peak_text(peak: dict | None) -> str:
    if not peak or not peak.get("runtimes"):
        return "not measured"
    per = "; ".join(f"{r} {v.get('fp32', '–')} / {v.get('int8', '–')}" for r, v in peak["runtimes"].items())
    return f"{per} (probe: {peak.get('what', '?')})"


def _load_text(load: dict | None) -> str:
    """Other processes, steal, preemptions, load average and clock while the rows were timed."""
    if not load:
        return "not recorded"
    parts = []
    if load.get("other_processes_cpu_share") is not None:
        parts.append(f"other processes {100 * load['other_processes_cpu_share']:.1f} % of {load.get('cores', '?')} cores")
    if load.get("steal_share") is not None:
        parts.append(f"steal {100 * load['steal_share']:.1f} %")
    if load.get("involuntary_switches_per_s") is not None:
        parts.append(f"{load['involuntary_switches_per_s']:g} preemptions/s")
    if load.get("loadavg_before") and load.get("loadavg_after"):
        parts.append(f"load average {load['loadavg_before'][0]:g} → {load['loadavg_after'][0]:g}")
    if load.get("freq_mhz_before") is not None and load.get("freq_mhz_after") is not None:
        parts.append(f"clock {load['freq_mhz_before']:g} → {load['freq_mhz_after']:g} MHz")
    return ", ".join(parts) or "not recorded"


def _data(settings: dict) -> str:
    split = settings.get("split")
    if not split:
        return "accuracy not measured"
    subset = f", stratified subset of {split['limit']}" if split.get("limit") else ""
    return f"{split['name']} {split['split']} split, n = {split['n']}{subset}"


def measurement_table(sources: list[Source]) -> Table:
    """How each results file was measured: machine, software, settings (one column per run)."""
    fields = [
        ("File", lambda s: s.path),
        ("Measured at (UTC)", lambda s: s.results.get("created", "–")),
        ("Device label", lambda s: s.device_label),
        ("CPU", lambda s: s.system.get("cpu", "–")),
        ("Architecture", lambda s: s.system.get("machine", "–")),
        ("Cores (available / logical)", lambda s: f"{s.system.get('cores_available', '–')} / {s.system.get('cores_logical', '–')}"),
        ("ISA flags", lambda s: ", ".join(s.system.get("isa") or []) or "–"),
        ("OS", lambda s: " · ".join(x for x in (s.system.get("distro"), s.system.get("os")) if x) or "–"),
        ("Libraries", lambda s: ", ".join(f"{k} {v}" for k, v in (s.system.get("libraries") or {}).items())),
        ("Thread env", lambda s: ", ".join(f"{k}={v}" for k, v in (s.system.get("env_threads") or {}).items()) or "–"),
        ("Runtime device", lambda s: s.settings.get("device", "–")),
        ("Threads", lambda s: threads_text(s.settings.get("threads"))),
        ("Batch (latency) / large batch (throughput)", lambda s: f"{s.settings.get('batch')} / {s.settings.get('large_batch') or '–'}"),
        ("Warm-up calls (excluded)", lambda s: str(s.settings.get("warmup", "–"))),
        ("Measured", lambda s: _measured(s.settings)),
        ("Machine while timing", lambda s: _load_text(s.results.get("load"))),
        ("Device peak, GMAC/s (FP32 / INT8)", lambda s: _peak_text(s.results.get("peak"))),
        ("Interleaved (A B A B… in one process)", lambda s: "yes" if s.settings.get("interleaved") else "no"),
        ("Accuracy data", lambda s: _data(s.settings)),
        ("Bootstrap resamples (95 % CI)", lambda s: str(s.settings.get("n_boot", "–"))),
        ("Retention reference", lambda s: s.reference or "–"),
        ("Speed-up baseline", lambda s: s.results.get("baseline", "–")),
        ("Memory", lambda s: s.settings.get("rss_note", "–")),
        ("Bundle", lambda s: f"{s.bundle.get('model')} · {s.bundle['sha256'][:16]}… · {s.bundle['path']}"),
        ("edgemed", lambda s: s.results.get("edgemed_version", "–")),
    ]
    rows = [[label] + [str(get(s)) for s in sources] for label, get in fields]
    return Table(["", *[s.run for s in sources]], rows, caption="How the numbers were measured")
