"""`edgemed export`: a checkpoint → a bundle with ONNX, OpenVINO and TFLite artifacts, each
checked for parity with the PyTorch model on real validation images."""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgemed.errors import EdgemedError, ExportError
from edgemed.export.base import describe_failure
from edgemed.export.bundle import BundleWriter, load_bundle
from edgemed.export.parity import compare, within_tolerance
from edgemed.export.parity import parity_images as parity_batch
from edgemed.fileio import atomic_dir, quiet_native
from edgemed.formats import DEFAULT_FORMATS, EXPORTABLE
from edgemed.formats import FORMATS as TABLE
from edgemed.progress import console, progress_bar
from edgemed.versions import library_versions


@dataclass
class ExportResult:
    bundle: Path
    artifacts: list[str]
    failed: list[dict]


def parse_list(value, allowed, what: str) -> list[str]:
    items = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise EdgemedError(f"unknown {what} {', '.join(bad) or '(none)'}: use {', '.join(allowed)}")
    return items


def macs_per_image(model, example) -> int | None:
    """Multiply-accumulates of one forward pass on one image (torch's FLOP counter: convolutions
    and matrix products; flops / 2), for bench's share of the device's peak throughput."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            model(example[:1])
        return int(counter.get_total_flops() // 2) or None
    except Exception:  # a model the counter cannot trace still exports; bench then shows no share
        return None


def start_bundle(root: Path, ckpt, extra_provenance: dict | None = None, model=None, example=None) -> BundleWriter:
    """A BundleWriter whose manifest describes the checkpoint; copies it in as the torch artifact.
    With the model and an example input, it also records the model's MACs per image."""
    provenance = {
        "checkpoint": {"file": ckpt.path.name, "sha256": ckpt.sha256},
        "dataset": {k: ckpt.dataset.get(k) for k in ("name", "sha256")},
        "lineage": ckpt.lineage, "libraries": library_versions(), **(extra_provenance or {}),
    }
    writer = BundleWriter(root, class_names=ckpt.class_names, preprocess=ckpt.preprocess,
                          model={"name": ckpt.model_name, "kwargs": ckpt.model_kwargs,
                                 "num_classes": ckpt.num_classes, "task": ckpt.task,
                                 "metrics": {s: {k: ckpt.metrics[s][k] for k in ("accuracy", "auc", "n")}
                                             for s in ckpt.metrics if isinstance(ckpt.metrics[s], dict) and "accuracy" in ckpt.metrics[s]},
                                 "macs_per_image": macs_per_image(model, example) if model is not None else None},
                          provenance=provenance)
    torch_dir = root / "torch"
    torch_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ckpt.path, torch_dir / "model.safetensors")
    writer.add("torch-fp32", "torch", "fp32", [torch_dir / "model.safetensors"],
               details={"role": "FP32 reference (PyTorch eager)"})
    return writer


def check_parity(writer: BundleWriter, artifact, x, reference, threads=None) -> dict:
    from edgemed.runtime import open_session

    with quiet_native():
        session = open_session(artifact, threads=threads)
    try:
        out = session.run(x)
    finally:
        session.close()
    return compare(reference, out)


def export(checkpoint: str | Path, formats=DEFAULT_FORMATS, precision=("fp32",),
           out: str | Path | None = None, *, force: bool = False, data_dir: str | None = None,
           parity_images: int = 128, static_batch: bool = False, tflite_layout: str = "NCHW",
           strict: bool = False, threads: int | None = None, progress: bool = True) -> ExportResult:
    """Export a checkpoint to a bundle; every artifact gets a parity check against PyTorch.

    A format that cannot take the model fails alone (its op named in `failed`); the export fails
    only when no format succeeds, or with `strict=True` when any does.

    Example: `export("m.safetensors", ["onnx", "tflite"], ["fp32", "fp16"], out="bundle/")`.
    """
    from edgemed.onnx_source import export_onnx_source, is_onnx_source, onnx_formats

    if is_onnx_source(checkpoint):  # an ONNX file or an imported ONNX bundle: no PyTorch model
        return export_onnx_source(checkpoint, onnx_formats(parse_list(formats, EXPORTABLE, "format"), DEFAULT_FORMATS),
                                  parse_list(precision, ("fp32", "fp16"), "precision"), out, force=force,
                                  data_dir=data_dir, parity_images=parity_images, threads=threads)
    import torch

    from edgemed.checkpoint import load_checkpoint

    formats = parse_list(formats, EXPORTABLE, "format")
    precisions = parse_list(precision, ("fp32", "fp16"), "precision")
    if tflite_layout not in TABLE["tflite"].layouts:
        raise EdgemedError(f"unknown --tflite-layout {tflite_layout!r}: use {', '.join(TABLE['tflite'].layouts)}")
    from edgemed.models import deploy_form

    ckpt, model = load_checkpoint(checkpoint)
    model = deploy_form(model)  # same outputs, fewer ops on every runtime
    out = Path(out) if out else Path("bundles") / Path(checkpoint).stem
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if parity_images:
        x, _ = parity_batch(ckpt, data_dir, parity_images)
        with torch.inference_mode():
            reference = model(torch.from_numpy(x)).float().numpy()
    else:
        console.print("[yellow]warning: parity check skipped (--parity-images 0)")
        x = reference = None
    example = torch.from_numpy(x[:1]) if x is not None else torch.zeros(ckpt.preprocess.input_shape)
    jobs = [(f, p) for f in formats for p in precisions]
    skipped = [f"{f}-{p}" for f, p in jobs if p not in TABLE[f].precisions]
    if skipped:
        console.print(f"[yellow]warning: {', '.join(skipped)} not made: "
                      + "; ".join(f"{f} exports {'/'.join(TABLE[f].precisions)}" for f in formats
                                  if any(p not in TABLE[f].precisions for p in precisions)))
    jobs = [(f, p) for f, p in jobs if p in TABLE[f].precisions]
    with atomic_dir(out, force) as tmp, progress_bar(progress) as bar:
        writer = start_bundle(tmp, ckpt, {"export": {"formats": formats, "precisions": precisions,
                                                     "parity_images": parity_images, "parity_split": "val"}},
                              model, example)
        task = bar.add_task("export", total=len(jobs), info="")
        for fmt, precision in jobs:
            bar.update(task, description=f"export {fmt} {precision}")
            module = importlib.import_module(TABLE[fmt].exporter)
            artifact_id = f"{fmt}-{precision}"
            try:
                layout = tflite_layout if tflite_layout in TABLE[fmt].layouts else TABLE[fmt].layouts[0]
                with quiet_native():
                    files = module.export(model, example, tmp, precision, static_batch=static_batch, layout=layout)
                artifact = writer.add(artifact_id, fmt, precision, files.files,
                                      input_layout=files.input_layout, static_batch=files.static_batch,
                                      details=files.details)
                if x is not None:
                    parity = check_parity(writer, artifact, x, reference, threads)
                    ok, why = within_tolerance(parity, precision)
                    parity["tolerance_met"] = ok
                    writer.update(artifact_id, parity=parity)
                    if not ok:
                        raise ExportError(f"{artifact_id} failed parity with PyTorch: {why}")
                bar.console.log(f"{artifact_id}: ok" + (f" (max |Δ| {parity['max_abs_diff']:.2e}, top-1 "
                                                         f"agreement {parity['top1_agreement']:.4f})" if x is not None else ""))
            except EdgemedError as e:
                if isinstance(e, ExportError):
                    message = str(e)
                else:
                    raise
                writer.remove(artifact_id)
                writer.fail(fmt, precision, message)
                bar.console.log(f"[red]{artifact_id}: {message}")
            except Exception as e:  # an exporter/converter that cannot take the model
                writer.remove(artifact_id)
                message = describe_failure(fmt, e)
                writer.fail(fmt, precision, message)
                bar.console.log(f"[red]{artifact_id}: {message}")
            bar.advance(task)
        exported = [a for a in writer.artifact_ids if a != "torch-fp32"]
        failed = writer.failures
        if not exported:
            raise ExportError("no format exported: " + "; ".join(f["error"] for f in failed))
        if strict and failed:
            raise ExportError("export failed (--strict): " + "; ".join(f["error"] for f in failed))
        remove_unreferenced(tmp, writer)
        writer.write()
    load_bundle(out)  # read back and verify every hash before declaring success
    return ExportResult(out, exported, failed)


def remove_unreferenced(root: Path, writer: BundleWriter) -> None:
    """Drop intermediate files (e.g. the FP32 TFLite behind an FP16-only export)."""
    from edgemed.card import DOCUMENTS

    keep = {f["path"] for a in writer.manifest["artifacts"] for f in a["files"]} | set(DOCUMENTS)
    for p in sorted(root.rglob("*"), reverse=True):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in keep and rel != "edgemed.json":
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
