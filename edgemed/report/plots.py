"""The report's plots as PNG bytes (matplotlib's Agg canvas: no display, no torch): per section
the latency–accuracy Pareto front per device, the latency distribution of every row, and size
against latency."""

from __future__ import annotations

import io

from edgemed.errors import missing_extra
from edgemed.report.compare import front_group, pareto_flags
from edgemed.report.merge import Entry, Section
from edgemed.report.tables import MB, threads_text

DPI = 110
# Labels come from results files: every text drawn from them is set with parse_math=False, since
# matplotlib would read "$...$" in a name as math and fail on a malformed one.


def _figure(height: float):
    """A figure on its own Agg canvas: no pyplot, so no global backend switch in the caller's
    process (a notebook keeps its own) and no display needed on headless devices."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise missing_extra("matplotlib", "report") from None
    fig = Figure(figsize=(9, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _colors(section: Section) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {d: cmap(i % 10) for i, d in enumerate(section.devices)}


def _label(e: Entry, section: Section) -> str:
    """Point label: the row name, plus threads/batch when the section has several."""
    parts = [e.name]
    if len({x.row["threads"] for x in section.entries}) > 1:
        parts.append(f"t{threads_text(e.row['threads'])}")
    if len({x.row["batch"] for x in section.entries}) > 1:
        parts.append(f"b{e.row['batch']}")
    return " ".join(parts)


def _annotate(ax, xs: list[float], ys: list[float], labels: list[str]) -> None:
    """Label points, moving a label above or below its point when it would cover one already
    placed (rows of equal accuracy or size sit side by side)."""
    fig = ax.figure
    fig.canvas.draw()  # final limits and scales, so label boxes are measured where they land
    renderer = fig.canvas.get_renderer()
    placed = []
    offsets = [(5, 4), (5, -11), (5, 13), (5, -20), (5, 22), (5, -29), (5, 31), (5, -38)]
    for i in sorted(range(len(xs)), key=lambda i: (xs[i], ys[i])):
        for dx, dy in offsets:
            ann = ax.annotate(labels[i], (xs[i], ys[i]), textcoords="offset points", xytext=(dx, dy),
                              fontsize=7.5, color="#333", parse_math=False)
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(b) for b in placed) or (dx, dy) == offsets[-1]:
                placed.append(box)
                break
            ann.remove()


def _legend_below(ax) -> None:
    # below the axes: inside, it would hide points of a crowded plot
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        legend = ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13),
                           ncol=min(3, len(handles)), frameon=False)
        for t in legend.get_texts():
            t.set_parse_math(False)


def _log_if_wide(ax, values: list[float], axis: str = "x") -> None:
    vals = [v for v in values if v and v > 0]
    if vals and max(vals) / min(vals) > 10:  # an order of magnitude apart: linear hides the fast rows
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def pareto_plot(section: Section, metric: str = "accuracy") -> bytes | None:
    """p50 latency (x) against accuracy or AUC with 95 % CI (y), the front per device and batch
    drawn as a line; None when the section has no accuracy."""
    rows = [e for e in section.entries if e.metric(metric)[0] is not None]
    if not rows:
        return None
    fig, ax = _figure(5.2)
    colors = _colors(section)
    scale = 100.0 if metric != "auc" else 1.0
    front = pareto_flags(rows, metric)
    groups: dict[tuple, list[Entry]] = {}
    for e in rows:
        groups.setdefault(front_group(e), []).append(e)
    for (device, batch), group in groups.items():
        c = colors[device]
        xs = [e.latency["p50"] for e in group]
        ys = [scale * e.metric(metric)[0] for e in group]
        cis = [e.metric(metric)[1] or [y / scale, y / scale] for e, y in zip(group, ys, strict=True)]
        err = [[max(0.0, y - scale * ci[0]) for ci, y in zip(cis, ys, strict=True)],
               [max(0.0, scale * ci[1] - y) for ci, y in zip(cis, ys, strict=True)]]
        multi_batch = len({b for _, b in groups}) > 1
        name = f"{device}" + (f", batch {batch}" if multi_batch else "")
        ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=c, alpha=0.45, capsize=3, lw=1)
        on = [e for e in group if front.get(id(e))]
        off = [e for e in group if not front.get(id(e))]
        ax.scatter([e.latency["p50"] for e in off], [scale * e.metric(metric)[0] for e in off],
                   facecolors="white", edgecolors=[c], s=46, zorder=3)
        ax.scatter([e.latency["p50"] for e in on], [scale * e.metric(metric)[0] for e in on],
                   color=c, s=60, zorder=4, label=f"{name}: Pareto front")
        on.sort(key=lambda e: e.latency["p50"])
        if len(on) > 1:
            ax.step([e.latency["p50"] for e in on], [scale * e.metric(metric)[0] for e in on],
                    where="post", color=c, lw=1.6, alpha=0.8, zorder=2)
    _log_if_wide(ax, [e.latency["p50"] for e in rows])
    _annotate(ax, [e.latency["p50"] for e in rows], [scale * e.metric(metric)[0] for e in rows],
              [_label(e, section) for e in rows])
    ax.set_xlabel("p50 latency per call, ms (lower is better)")
    ax.set_ylabel(("AUC" if metric == "auc" else "accuracy, %") + " with 95 % CI (higher is better)")
    ax.set_title("Latency vs " + ("AUC" if metric == "auc" else "accuracy") +
                 ": filled points are on their device's Pareto front, hollow ones are beaten", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    return _png(fig)


def _hboxplot(ax, data, **kw):
    try:
        return ax.boxplot(data, orientation="horizontal", **kw)
    except TypeError:  # matplotlib < 3.10 has only vert=
        return ax.boxplot(data, vert=False, **kw)


def latency_plot(section: Section) -> bytes:
    """Latency distribution of each row: a box of the measured calls (whiskers 1st–99th
    percentile), or the stored percentiles (min, p50, p90, p99, max) when samples are absent."""
    entries = section.entries
    fig, ax = _figure(1.2 + 0.42 * len(entries))
    colors = _colors(section)
    positions = list(range(len(entries), 0, -1))  # first row at the top, as in the tables
    with_samples = [(p, e) for p, e in zip(positions, entries, strict=True) if e.row.get("latency_samples_ms")]
    if with_samples:
        bp = _hboxplot(ax, [e.row["latency_samples_ms"] for _, e in with_samples],
                       positions=[p for p, _ in with_samples], whis=(1, 99), widths=0.6,
                       patch_artist=True, showfliers=True, medianprops={"color": "black"},
                       flierprops={"marker": ".", "markersize": 2, "alpha": 0.4})
        for patch, (_, e) in zip(bp["boxes"], with_samples, strict=True):
            patch.set_facecolor(colors[e.device])
            patch.set_alpha(0.55)
    for p, e in zip(positions, entries, strict=True):
        lat, c = e.latency, colors[e.device]
        if not e.row.get("latency_samples_ms"):
            ax.plot([lat["min"], lat["max"]], [p, p], color=c, lw=1)
            ax.plot([lat["p50"]], [p], marker="|", color="black", markersize=14, mew=2)
            ax.plot([lat["p90"]], [p], marker="|", color=c, markersize=10, mew=2)
        ax.plot([lat["p99"]], [p], marker="v", color=c, markersize=5, ls="none")
    labels = [f"{e.device} · {_label(e, section)}" + ("" if e.row.get("latency_samples_ms")
                                                     else " (percentiles only)") for e in entries]
    ax.set_yticks(positions, labels, fontsize=8, parse_math=False)
    _log_if_wide(ax, [e.latency["min"] for e in entries] + [e.latency["max"] for e in entries])
    ax.set_xlabel("latency per call, ms: box = middle half of the calls, black line = median, "
                  "whiskers = 1st–99th percentile, ▼ = p99")
    ax.set_title("Latency distribution per row (measured calls after warm-up)", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def size_plot(section: Section) -> bytes:
    """Model size on disk (x) against p50 latency (y), coloured by device."""
    fig, ax = _figure(4.8)
    colors = _colors(section)
    for device in section.devices:
        group = [e for e in section.entries if e.device == device]
        xs = [e.row["size_bytes"] / MB for e in group]
        ys = [e.latency["p50"] for e in group]
        ax.scatter(xs, ys, color=colors[device], s=46, label=device, zorder=3)
    _log_if_wide(ax, [e.row["size_bytes"] / MB for e in section.entries], "x")
    _log_if_wide(ax, [e.latency["p50"] for e in section.entries], "y")
    _annotate(ax, [e.row["size_bytes"] / MB for e in section.entries],
              [e.latency["p50"] for e in section.entries], [_label(e, section) for e in section.entries])
    ax.set_xlabel("model size on disk, MB")
    ax.set_ylabel("p50 latency per call, ms")
    ax.set_title("Size vs latency", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    return _png(fig)


def reliability_plot(section: Section, most: int = 12) -> bytes | None:
    """Reliability diagram: accuracy against mean top-label confidence per bin, one line per row
    (the first `most` rows with calibration); the diagonal is perfect calibration."""
    rows = [e for e in section.entries if ((e.row.get("accuracy") or {}).get("calibration") or {}).get("bins")][:most]
    if not rows:
        return None
    fig, ax = _figure(5.2)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
    for e in rows:
        cal = e.row["accuracy"]["calibration"]
        bins = cal["bins"]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", markersize=3.5,
                linewidth=1.2, label=f"{_label(e, section)} · {e.device} (ECE {cal['ece']:.3f})")
    low = min(min(b["confidence"], b["accuracy"]) for e in rows for b in e.row["accuracy"]["calibration"]["bins"])
    ax.set_xlim(max(0.0, low - 0.05), 1.0)
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.set_xlabel("mean confidence of the predicted class in the bin")
    ax.set_ylabel("accuracy in the bin")
    ax.set_title("Reliability diagram (15 equal-width bins; bins without images left out)", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    return _png(fig)


def section_plots(section: Section, metric: str = "accuracy") -> dict[str, bytes]:
    """{"pareto", "latency", "size"} → PNG bytes for one section (pareto absent without accuracy).

    Example: `section_plots(merged.sections[0])["latency"][:4] == b"\\x89PNG"`.
    """
    plots = {"latency": latency_plot(section), "size": size_plot(section)}
    pareto = pareto_plot(section, metric)
    if pareto is not None:
        plots = {"pareto": pareto, **plots}
    reliability = reliability_plot(section)
    if reliability is not None:
        plots["reliability"] = reliability
    return plots
