"""`edgemed report`: merge results files from many devices and runs into one folder with
report.html (self-contained), report.md, results.csv and plots/. Works without torch."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from edgemed.bounds import check_max_drop
from edgemed.errors import EdgemedError
from edgemed.fileio import atomic_dir
from edgemed.report.compare import METRICS, check_bound
from edgemed.report.csvfile import results_csv
from edgemed.report.decision import check_gates, load_devices, parse_gates
from edgemed.report.gallery import flip_rows
from edgemed.report.html import html_report
from edgemed.report.markdown import gallery_path, markdown_report
from edgemed.report.merge import load_all

REPORT_FILES = ("report.html", "report.md", "results.csv")


def check_arguments(results_paths: list, out, max_drop: float, metric: str) -> None:
    """Refuse bad arguments before anything is read or written."""
    if not results_paths:
        raise EdgemedError("no results files given: edgemed report RESULTS.json... --out FOLDER "
                           "(results come from `edgemed bench ... --out RESULTS.json`)")
    if out is None or str(out) == "":
        raise EdgemedError("give the output folder with --out FOLDER")
    if metric not in METRICS:
        raise EdgemedError(f"unknown --metric {metric!r}: use one of {', '.join(METRICS)}")
    check_max_drop(max_drop)


def check_target(out: Path, results_paths: list, force: bool) -> None:
    """--force replaces only an earlier report folder, and never one that holds an input."""
    if not out.exists():
        return
    if not force:
        raise EdgemedError(f"{out} already exists: choose another --out or pass --force to replace it")
    if not out.is_dir():
        raise EdgemedError(f"{out} exists and is not a folder: choose another --out")
    entries = [p.name for p in out.iterdir()]
    if entries and not any(name in entries for name in REPORT_FILES):
        # --force swaps the whole folder: refuse anything that does not look like our own output
        raise EdgemedError(f"{out} is not an edgemed report folder; refusing to replace it even with "
                           f"--force: choose another --out")
    root = out.resolve()
    for p in results_paths:
        if root in Path(p).resolve().parents:
            raise EdgemedError(f"{p} is inside the output folder {out}, which --force would replace: "
                               "move it or choose another --out")


def report(results_paths: list[str | Path], out: str | Path, *, max_drop: float = 0.5,
           metric: str = "accuracy", force: bool = False, devices: str | Path | None = None,
           fail_below: list[str] | None = None) -> dict:
    """Merge bench results from any number of devices and runs into a report folder.

    Args:
        results_paths: results JSON files written by `edgemed bench --out`.
        out: the folder to write (report.html, report.md, results.csv, plots/).
        max_drop: the accepted drop vs the FP32 reference in points (accuracy: percentage
            points; auc: AUC × 100, so 0.5 is 0.005 AUC).
        metric: "accuracy" or "auc": the metric of the summary, the bound and the Pareto plot.
        force: replace an existing report folder.
        devices: a devices file (YAML: `devices: [{match, name, price, currency, power_w}]`)
            that names devices and adds images/s per price and per watt.
        fail_below: CI gates ["accuracy=0.9", "img_s=200", ...] checked on the row each device
            would deploy; the report is written either way, and `gate_passed` says the verdict.

    Returns: a summary dict (out, files, sections, rows, meets_bound counts, gate, gate_passed, notes).

    Example: `report(["pi5.json", "nuc.json"], "report/", max_drop=1.0)`.
    """
    if isinstance(results_paths, (str, Path)):
        results_paths = [results_paths]
    check_arguments(list(results_paths), out, max_drop, metric)
    gates = parse_gates(fail_below or [])
    device_list = load_devices(devices) if devices else None
    paths = [Path(p) for p in results_paths]
    out = Path(out)
    check_target(out, paths, force)
    merged = load_all(paths)
    gate = check_gates(merged.sections, gates, metric, max_drop) if gates else []
    from edgemed import __version__
    from edgemed.report.plots import section_plots

    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    plots = {s.id: section_plots(s, metric) for s in merged.sections}
    plot_files = {sid: {name: f"plots/{sid}_{name}.png" for name in ps} for sid, ps in plots.items()}
    with atomic_dir(out, force) as tmp:  # a failure leaves no half-written report behind
        (tmp / "plots").mkdir()
        for s in merged.sections:  # the flipped cases' thumbnails report.md links to
            for r in flip_rows(s):
                for c in r.cases:
                    if c.png:
                        (tmp / "gallery").mkdir(exist_ok=True)
                        (tmp / gallery_path(r.run, c.index)).write_bytes(c.png)
        for sid, ps in plots.items():
            for name, png in ps.items():
                (tmp / plot_files[sid][name]).write_bytes(png)
        shared = {"metric": metric, "max_drop": max_drop, "created": created, "version": __version__,
                  "devices": device_list, "gates": gate}
        (tmp / "report.html").write_text(html_report(merged, plots, **shared), encoding="utf-8")
        (tmp / "report.md").write_text(markdown_report(merged, plot_files, **shared), encoding="utf-8")
        (tmp / "results.csv").write_text(results_csv(merged, metric, max_drop), encoding="utf-8")
    counts: dict[str, int] = {}
    for e in merged.entries:
        status = check_bound(e, metric, max_drop).status
        counts[status] = counts.get(status, 0) + 1
    return {"out": str(out), "files": [str(out / f) for f in REPORT_FILES],
            "sections": [{"id": s.id, "title": s.title, "rows": len(s.entries), "devices": s.devices}
                         for s in merged.sections],
            "rows": len(merged.entries), "sources": [s.path for s in merged.sources],
            "metric": metric, "max_drop": max_drop, "meets_bound": counts, "notes": merged.notes,
            "gate": gate, "gate_passed": all(g["passed"] for g in gate)}
