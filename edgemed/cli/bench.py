"""`edgemed bench`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

import edgemed.formats as formats_table
from edgemed.cli.common import fmt_ci, out, print_json


def _list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def results_table(result: dict) -> Table:
    s = result["settings"]
    t = Table(title=f"{result['bundle']['model']} on {result['system']['cpu']}: batch {s['batch']}, "
                    f"threads {s['threads'] or 'default'}; speedup vs {result['baseline']}")
    for c in ("artifact", "p50 ms", "p99 ms", "img/s", "speedup", "MB", "RSS MB", "accuracy", "Δ vs FP32 (pt)",
              "% peak", "timing"):
        t.add_column(c, justify="left" if c in ("artifact", "accuracy", "Δ vs FP32 (pt)", "timing") else "right",
                     no_wrap=c == "artifact")
    for r in result["rows"]:
        acc = r.get("accuracy")
        d = ((acc or {}).get("retention") or {}).get("accuracy")
        if d and d.get("ci"):
            delta = f"{100 * d['difference']:+.2f} [{100 * d['ci'][0]:+.2f},{100 * d['ci'][1]:+.2f}]"
        else:
            delta = "ref" if acc else "–"
        rss = (r.get("cold") or {}).get("peak_rss_mb")
        t.add_row(r["name"], f"{r['latency_ms']['p50']:.3f}", f"{r['latency_ms']['p99']:.3f}",
                  f"{r['throughput_ips']['value']:.0f}", f"{r['ratio_to_baseline']['speedup_p50']:.2f}×",
                  f"{r['size_bytes'] / 2**20:.1f}", f"{rss:.0f}" if rss else "–",
                  fmt_ci(acc["metrics"]["accuracy"], 3) if acc else "–", delta,
                  f"{100 * share:.0f}" if (share := (r.get("compute") or {}).get("share_of_peak")) else "–",
                  (r.get("stability") or {}).get("verdict", "–"))
    return t


def timing_notes(result: dict) -> list[str]:
    """One line per unstable row, saying why, and the device's peaks: printed under the table."""
    lines = [f"unstable timing, rerun on a quiet machine: {r['name']}: {'; '.join(r['stability']['reasons'])}"
             for r in result["rows"] if (r.get("stability") or {}).get("verdict") == "unstable"]
    peaks = (result.get("peak") or {}).get("runtimes") or {}
    if peaks:
        lines.append("device peak, GMAC/s (FP32 / INT8): " + ", ".join(
            f"{k} {v.get('fp32')} / {v.get('int8')}" for k, v in peaks.items()))
    return lines


def register(app: typer.Typer) -> None:
    @app.command()
    def bench(
        bundle: Path = typer.Argument(..., help="Bundle folder."),
        artifacts: str = typer.Option(None, "--artifacts", help="Comma list of artifact ids (default: all)."),
        runtime: str = typer.Option(None, "--runtime", help=f"Comma list: {', '.join(formats_table.RUNTIMES)}."),
        device: str = typer.Option("cpu", "--device", help="cpu | gpu | cuda | tensorrt | npu | NAME."),
        threads: int = typer.Option(None, "--threads", help="Intra-op threads for every runtime."),
        batch: int = typer.Option(1, "--batch"),
        large_batch: int = typer.Option(16, "--large-batch", help="Batch for the throughput measurement (0: skip)."),
        duration: float = typer.Option(None, "--duration", help="Seconds of measured calls per artifact (default 10)."),
        iterations: int = typer.Option(None, "--iterations", help="Measured calls per artifact (instead of --duration)."),
        warmup: int = typer.Option(10, "--warmup", help="Warm-up calls per artifact, excluded."),
        dataset: str = typer.Option(None, "--dataset", help="Data set for accuracy (default: the bundle's)."),
        split: str = typer.Option("test", "--split"),
        limit: int = typer.Option(None, "--limit", help="Stratified subset of the split."),
        no_accuracy: bool = typer.Option(False, "--no-accuracy"),
        threshold: float = typer.Option(None, "--threshold", help="Two-class models: decide the second class when "
                                        "its probability is ≥ this (default: the most probable class)."),
        target_sensitivity: float = typer.Option(None, "--target-sensitivity", help="Two-class models: fix the "
                                                 "threshold where the FP32 reference reaches this sensitivity."),
        no_memory: bool = typer.Option(False, "--no-memory", help="Skip the cold-start/RSS subprocess probes."),
        no_thumbnails: bool = typer.Option(False, "--no-thumbnails", help="Keep no images in the results: the "
                                           "report's flipped cases are then listed without thumbnails."),
        no_peak: bool = typer.Option(False, "--no-peak", help="Skip measuring the device's peak FP32/INT8 GMAC/s "
                                     "(each row's share of it)."),
        data_dir: str = typer.Option(None, "--data-dir"),
        baseline: str = typer.Option(None, "--baseline", help="Artifact for ratios (default: torch-fp32 if torch is installed, else an FP32 artifact)."),
        out_path: Path = typer.Option(None, "--out", "-o", help="Results JSON."),
        json_out: bool = typer.Option(False, "--json", help="Print the results JSON on stdout."),
        force: bool = typer.Option(False, "--force"),
    ):
        """Latency, throughput, memory and accuracy retention of a bundle's artifacts."""
        from edgemed.bench.harness import bench as bench_api

        result = bench_api(bundle, artifacts=_list(artifacts), runtimes=_list(runtime), device=device,
                           threads=threads, batch=batch, large_batch=large_batch or None, duration=duration,
                           iterations=iterations, warmup=warmup, dataset=dataset, split=split,
                           accuracy=not no_accuracy, limit=limit, data_dir=data_dir, baseline=baseline,
                           memory=not no_memory, out=out_path, force=force, progress=not json_out,
                           threshold=threshold, target_sensitivity=target_sensitivity, peak=not no_peak,
                           gallery_images=not no_thumbnails)
        if json_out:
            return print_json(result)
        out.print(results_table(result))
        for line in timing_notes(result):
            out.print(line, markup=False, soft_wrap=True)
        if out_path:
            out.print(f"results written to {out_path}")
