"""`edgemed report`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgemed.cli.common import err, out, print_json

GATE_FAILED = 3  # the report was written; a --fail-below check missed (1 and 2 are errors and usage)


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        results: list[Path] = typer.Argument(None, help="Results JSON files from `edgemed bench --out` (any devices and runs)."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Report folder to write (report.html, report.md, results.csv, plots/)."),
        max_drop: float = typer.Option(0.5, "--max-drop", help="Accepted drop vs the FP32 reference in points (accuracy: percentage points; auc: AUC×100)."),
        metric: str = typer.Option("accuracy", "--metric", help="accuracy | auc: metric of the summary, the bound and the Pareto plot."),
        force: bool = typer.Option(False, "--force", help="Replace an existing report folder."),
        json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        devices: Path = typer.Option(None, "--devices", help="YAML naming devices with price and power "
                                     "(devices: [{match, name, price, currency, power_w}]): adds img/s per price and per W."),
        fail_below: list[str] = typer.Option(None, "--fail-below", help="CI gate METRIC=VALUE (repeatable; "
                                             "accuracy, balanced_accuracy, auc, sensitivity, specificity as fractions, "
                                             "img_s, speedup): exit 3 when a device's chosen row is below it."),
    ):
        """Merge bench results from many devices into an HTML/Markdown/CSV report."""
        from edgemed.report.build import report as report_api

        summary = report_api(results or [], out_dir, max_drop=max_drop, metric=metric, force=force,
                             devices=devices, fail_below=fail_below)
        if json_out:
            print_json(summary)
            if not summary["gate_passed"]:
                raise typer.Exit(GATE_FAILED)
            return
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
        if summary["gate"]:
            from edgemed.report.text import gate_lines

            for line in gate_lines(summary["gate"]):
                (out if summary["gate_passed"] else err).print(line, markup=False, soft_wrap=True)
            if not summary["gate_passed"]:
                raise typer.Exit(GATE_FAILED)
