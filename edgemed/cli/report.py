"""`edgemed report`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgemed.cli.common import err, out, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        results: list[Path] = typer.Argument(None, help="Results JSON files from `edgemed bench --out` (any devices and runs)."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Report folder to write (report.html, report.md, results.csv, plots/)."),
        max_drop: float = typer.Option(0.5, "--max-drop", help="Accepted drop vs the FP32 reference in points (accuracy: percentage points; auc: AUC×100)."),
        metric: str = typer.Option("accuracy", "--metric", help="accuracy | auc: metric of the summary, the bound and the Pareto plot."),
        force: bool = typer.Option(False, "--force", help="Replace an existing report folder."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ):
        """Merge bench results from many devices into an HTML/Markdown/CSV report."""
        from edgemed.report.build import report as report_api

        summary = report_api(results or [], out_dir, max_drop=max_drop, metric=metric, force=force)
        if json_out:
            return print_json(summary)
        for note in summary["notes"]:
            err.print(f"note: {note}", style="yellow", markup=False, soft_wrap=True)
        for s in summary["sections"]:
            out.print(f"{s['id']}: {s['title']}: {s['rows']} rows on {', '.join(s['devices'])}", markup=False, soft_wrap=True)
        counts = summary["meets_bound"]
        out.print(f"meets bound (drop in {metric} ≤ {max_drop:g} pt): {counts.get('yes', 0)} yes, "
                  f"{counts.get('no', 0)} no, {counts.get('reference', 0)} reference, {counts.get('n/a', 0)} n/a",
                  markup=False, soft_wrap=True)
        out.print(f"report written to {Path(summary['out']) / 'report.html'} (+ report.md, results.csv)",
                  markup=False, soft_wrap=True)
