"""`edgemed calibration build`, `edgemed prune` and `edgemed quantize`."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.table import Table

import edgemed.formats as formats_table
from edgemed.cli.common import out, print_json

calibration_app = typer.Typer(no_args_is_help=True, help="Calibration sets for INT8 quantization.")


def _list(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def register(app: typer.Typer) -> None:
    @calibration_app.command("build")
    def build(dataset: str = typer.Argument(..., help="Data set name, .npz path or folder:PATH."),
              size: int = typer.Option(300, help="Images (stratified by class, from the TRAINING split)."),
              seed: int = typer.Option(0),
              out_path: Path = typer.Option(None, "--out", "-o", help="Manifest path (default calibration/DATASET.json)."),
              data_dir: str = typer.Option(None, "--data-dir"),
              force: bool = typer.Option(False, "--force")):
        """Write a calibration manifest: training-split indices + the data file's sha256."""
        from edgemed.compress.calibration import build_calibration

        path = build_calibration(dataset, size=size, seed=seed, data_dir=data_dir, out=out_path, force=force)
        out.print(f"calibration manifest written to {path}")

    app.add_typer(calibration_app, name="calibration")

    @app.command()
    def prune(
        checkpoint: Path = typer.Argument(..., help="Checkpoint to prune."),
        out_path: Path = typer.Option(..., "--out", "-o", help="Pruned checkpoint (.safetensors)."),
        ratio: float = typer.Option(None, "--ratio", help="Share of channels to remove per layer (0–1)."),
        target_macs: float = typer.Option(None, "--target-macs", help="Share of the MACs to keep (0–1)."),
        importance: str = typer.Option("l2", help="l2 (weight magnitude) | taylor (gradient × weight)."),
        round_to: int = typer.Option(8, "--round-to", help="Keep channel counts multiples of this (0: off)."),
        finetune_epochs: int = typer.Option(0, "--finetune-epochs"),
        distill: bool = typer.Option(False, "--distill", help="Distil from the unpruned model while fine-tuning."),
        lr: float = typer.Option(5e-4, help="Fine-tuning learning rate."),
        batch_size: int = typer.Option(128, "--batch-size"),
        data_dir: str = typer.Option(None, "--data-dir"),
        threads: int = typer.Option(None),
        limit_train: int = typer.Option(None, help="Stratified subset of training images for fine-tuning."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Keep fine-tuning state in OUT.train-state each epoch; continue it after an interruption."),
        force: bool = typer.Option(False, "--force"),
    ):
        """Structured pruning (Torch-Pruning): channels really removed; before/after table."""
        from edgemed.compress.prune import prune as prune_api

        r = prune_api(checkpoint, out=out_path, ratio=ratio, target_macs=target_macs, importance=importance,
                      round_to=round_to or None, finetune_epochs=finetune_epochs, distill=distill, lr=lr,
                      batch_size=batch_size, data_dir=data_dir, threads=threads, limit_train=limit_train,
                      resume=resume, force=force)
        t = Table(title=f"pruned {checkpoint} → {r.checkpoint}")
        for c in ("", "params", "MACs", "PyTorch ms (batch 1)", "val accuracy", "val AUC"):
            t.add_column(c, justify="left" if not c else "right")
        for label, d in (("before", r.before), ("after", r.after)):
            t.add_row(label, f"{d['params'] / 1e6:.3f} M", f"{d['macs'] / 1e6:.1f} M", f"{d['torch_latency_ms']:.2f}",
                      f"{d['val_accuracy']:.4f}", "n/a" if d["val_auc"] is None else f"{d['val_auc']:.4f}")
        b, a = r.before, r.after
        t.add_row("ratio", f"{a['params'] / b['params']:.2f}×", f"{a['macs'] / b['macs']:.2f}×",
                  f"{a['torch_latency_ms'] / b['torch_latency_ms']:.2f}×",
                  f"{100 * (a['val_accuracy'] - b['val_accuracy']):+.2f} pt", "")
        out.print(t)
        if r.settings["finetune_epochs"]:
            out.print(f"val accuracy right after pruning, before fine-tuning: {a['val_accuracy_before_finetune']:.4f}")

    @app.command()
    def quantize(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (FP32, pruned or not)."),
        calib: Path = typer.Option(..., "--calib", help="Calibration manifest (.json), image folder, or .npy array."),
        formats: str = typer.Option(",".join(formats_table.QUANTIZE_DEFAULT), "--formats",
                                    help=f"Comma list: {formats_table.listing(formats_table.QUANTIZABLE)}."),
        preset: str = typer.Option("performance", help="performance (symmetric) | mixed (asymmetric activations)."),
        ignore: list[str] = typer.Option(None, "--ignore", help="Layers to keep float: module paths or globs (stages.3.*). Repeatable."),
        max_drop: float = typer.Option(None, "--max-drop", help="Largest allowed drop of --metric on the validation split, in points."),
        metric: str = typer.Option("accuracy", help="accuracy | auc | sensitivity | balanced_accuracy."),
        routes: str = typer.Option(None, help="Per-format routes: " + "; ".join(f"{f}={'|'.join(formats_table.FORMATS[f].routes)}" for f in formats_table.QUANTIZABLE) + " (first: default)."),
        model_type: str = typer.Option("auto", help="auto | cnn | transformer (NNCF model type)."),
        sensitivity: bool = typer.Option(False, "--sensitivity", help="Rank layers by the error INT8 adds (one at a time)."),
        out_path: Path = typer.Option(None, "--out", "-o", help="Bundle folder."),
        data_dir: str = typer.Option(None, "--data-dir"),
        threads: int = typer.Option(None),
        calib_limit: int = typer.Option(None, help="Use only the first N calibration images."),
        val_limit: int = typer.Option(None, help="Stratified subset of validation images."),
        base_bundle: Path = typer.Option(None, "--base-bundle", help="An `edgemed export` bundle of this checkpoint: its artifacts (FP16 too) join the INT8 bundle and its FP32 files are reused."),
        json_out: bool = typer.Option(False, "--json"),
        force: bool = typer.Option(False, "--force"),
    ):
        """INT8 for OpenVINO / ONNX / TFLite / ExecuTorch with accuracy control and a sensitivity report."""
        from edgemed.compress.quantize import quantize as quantize_api

        r = quantize_api(checkpoint, calib=calib, formats=_list(formats), out=out_path, preset=preset,
                         ignore=[i for v in ignore or [] for i in _list(v)], max_drop=max_drop, metric=metric,
                         routes=routes, model_type=model_type, sensitivity=sensitivity, data_dir=data_dir,
                         threads=threads, calib_limit=calib_limit, val_limit=val_limit, base_bundle=base_bundle,
                         force=force, progress=not json_out)
        if json_out:
            return print_json({"bundle": str(r.bundle), "recommended": r.recommended, "note": r.local_note(),
                               "reference": r.reference,
                               "results": r.rows, "sensitivity": r.sensitivity, "suggested_ignore": r.suggested_ignore})
        if r.sensitivity:
            st = Table(title="per-layer sensitivity (INT8 one layer at a time; worst first)")
            for c in ("layer", "type", "KL vs FP32", "max |Δlogit|", "flips"):
                st.add_column(c, justify="left" if c in ("layer", "type") else "right")
            for s in r.sensitivity[:10]:
                st.add_row(s["layer"], s["type"], f"{s['kl']:.2e}", f"{s['max_abs_logit_diff']:.3f}", f"{s['flips']}/{s['n']}")
            out.print(st)
            out.print("suggested --ignore: " + (", ".join(r.suggested_ignore) if r.suggested_ignore else
                                                "none needed (no layer adds measurable error)"))
        ref = r.reference
        t = Table(title=f"INT8 results (validation {ref['metric']}, FP32 {ref['value']:.4f}); ★ recommended")
        for c in ("artifact", "route", f"val {ref['metric']}", "drop (pt)", "95% CI", "changed", "bound",
                  "float layers", "size vs FP32", "p50 ms*", "speed vs FP32*"):
            t.add_column(c, justify="left" if c in ("artifact", "route", "bound", "float layers") else "right")
        for row in r.rows:
            bound = "–" if row["bound_met"] is None else ("met" if row["bound_met"] else "[red]NOT MET (best kept)")
            ci = row.get("drop_ci_points")
            t.add_row(row["artifact"] + (" ★" if row["artifact"] == r.recommended else ""), row["route"],
                      f"{row['metric']:.4f}", f"{row['drop_points']:+.2f}",
                      f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "–", str(row.get("flips", "–")), bound,
                      ", ".join(row["reverted_layers"]) or "–", f"{row['size'] / row['fp32_size']:.2f}×",
                      f"{row['p50_ms_indicative']:.2f}" if row.get("p50_ms_indicative") else "–",
                      f"{row['fp32_p50_ms_indicative'] / row['p50_ms_indicative']:.2f}×"
                      if row.get("p50_ms_indicative") and row.get("fp32_p50_ms_indicative") else "–")
        out.print(t)
        out.print(f"* indicative batch-1 latency (each INT8 build timed beside its format's FP32) used to pick the "
                  f"recommended artifact; measure with `edgemed bench {shlex.quote(str(r.bundle))}`")
        if r.note:
            out.print("note: " + r.local_note(), style="yellow", markup=False)
        out.print(f"bundle written to {r.bundle}")
