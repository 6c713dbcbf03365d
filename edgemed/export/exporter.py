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
from edgemed.export.parity import compare, parity_images, within_tolerance
from edgemed.fileio import atomic_dir, quiet_native
from edgemed.progress import console, progress_bar
from edgemed.versions import library_versions

FORMATS = {"onnx": "edgemed.export.onnx", "openvino": "edgemed.export.openvino",
           "tflite": "edgemed.export.tflite"}


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


def start_bundle(root: Path, ckpt, extra_provenance: dict | None = None) -> BundleWriter:
    """A BundleWriter whose manifest describes the checkpoint; copies it in as the torch artifact."""
    provenance = {
        "checkpoint": {"file": ckpt.path.name, "sha256": ckpt.sha256},
        "dataset": {k: ckpt.dataset.get(k) for k in ("name", "sha256")},
        "lineage": ckpt.lineage, "libraries": library_versions(), **(extra_provenance or {}),
    }
    writer = BundleWriter(root, class_names=ckpt.class_names, preprocess=ckpt.preprocess,
                          model={"name": ckpt.model_name, "kwargs": ckpt.model_kwargs,
                                 "num_classes": ckpt.num_classes, "task": ckpt.task,
                                 "metrics": {s: {k: ckpt.metrics[s][k] for k in ("accuracy", "auc", "n")}
                                             for s in ckpt.metrics if isinstance(ckpt.metrics[s], dict) and "accuracy" in ckpt.metrics[s]}},
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


def export(checkpoint: str | Path, formats=("onnx", "openvino", "tflite"), precisions=("fp32",),
           out: str | Path | None = None, *, force: bool = False, data_dir: str | None = None,
           parity_count: int = 128, dynamic_batch: bool = True, tflite_layout: str = "NCHW",
           strict: bool = False, threads: int | None = None, progress: bool = True) -> ExportResult:
    """Export a checkpoint to a bundle; every artifact gets a parity check against PyTorch.

    A format that cannot take the model fails alone (its op named in `failed`); the export fails
    only when no format succeeds, or with `strict=True` when any does.

    Example: `export("m.safetensors", ["onnx", "tflite"], ["fp32", "fp16"], out="bundle/")`.
    """
    from edgemed.onnx_source import export_onnx_source, is_onnx_source, onnx_formats

    if is_onnx_source(checkpoint):  # an ONNX file or an imported ONNX bundle: no PyTorch model
        return export_onnx_source(checkpoint, onnx_formats(parse_list(formats, FORMATS, "format"), tuple(FORMATS)),
                                  parse_list(precisions, ("fp32", "fp16"), "precision"), out, force=force,
                                  data_dir=data_dir, parity_count=parity_count, threads=threads)
    import torch

    from edgemed.checkpoint import load_checkpoint

    formats = parse_list(formats, tuple(FORMATS), "format")
    precisions = parse_list(precisions, ("fp32", "fp16"), "precision")
    from edgemed.models import deploy_form

    ckpt, model = load_checkpoint(checkpoint)
    model = deploy_form(model)  # same outputs, fewer ops on every runtime
    out = Path(out) if out else Path("bundles") / Path(checkpoint).stem
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if parity_count:
        x, _ = parity_images(ckpt, data_dir, parity_count)
        with torch.inference_mode():
            reference = model(torch.from_numpy(x)).float().numpy()
    else:
        console.print("[yellow]warning: parity check skipped (--parity-images 0)")
        x = reference = None
    example = torch.from_numpy(x[:1]) if x is not None else torch.zeros(ckpt.preprocess.input_shape)
    jobs = [(f, p) for f in formats for p in precisions]
    with atomic_dir(out, force) as tmp, progress_bar(progress) as bar:
        writer = start_bundle(tmp, ckpt, {"export": {"formats": formats, "precisions": precisions,
                                                     "parity_images": parity_count, "parity_split": "val"}})
        task = bar.add_task("export", total=len(jobs), info="")
        for fmt, precision in jobs:
            bar.update(task, description=f"export {fmt} {precision}")
            module = importlib.import_module(FORMATS[fmt])
            artifact_id = f"{fmt}-{precision}"
            try:
                kwargs = {"layout": tflite_layout} if fmt == "tflite" else {"dynamic_batch": dynamic_batch}
                with quiet_native():
                    files = module.export(model, example, tmp, precision, **kwargs)
                artifact = writer.add(artifact_id, fmt, precision, files.files,
                                      input_layout=files.input_layout, static_batch=files.static_batch,
                                      details=files.details)
                if x is not None:
                    parity = check_parity(writer, artifact, x, reference, threads)
                    ok, why = within_tolerance(parity, precision)
                    parity["tolerance_met"] = ok
                    writer.add(artifact_id, fmt, precision, files.files, input_layout=files.input_layout,
                               static_batch=files.static_batch, parity=parity, details=files.details)
                    if not ok:
                        raise ExportError(f"{artifact_id} failed parity with PyTorch: {why}")
                bar.console.log(f"{artifact_id}: ok" + (f" (max |Δ| {parity['max_abs_diff']:.2e}, top-1 "
                                                         f"agreement {parity['top1_agreement']:.4f})" if x is not None else ""))
            except EdgemedError as e:
                if isinstance(e, ExportError):
                    message = str(e)
                else:
                    raise
                writer.manifest["artifacts"] = [a for a in writer.manifest["artifacts"] if a["id"] != artifact_id]
                writer.fail(fmt, precision, message)
                bar.console.log(f"[red]{artifact_id}: {message}")
            except Exception as e:  # an exporter/converter that cannot take the model
                writer.manifest["artifacts"] = [a for a in writer.manifest["artifacts"] if a["id"] != artifact_id]
                message = describe_failure(fmt, e)
                writer.fail(fmt, precision, message)
                bar.console.log(f"[red]{artifact_id}: {message}")
            bar.advance(task)
        exported = [a for a in writer.artifact_ids if a != "torch-fp32"]
        failed = writer.manifest["failed"]
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
    keep = {f["path"] for a in writer.manifest["artifacts"] for f in a["files"]}
    for p in sorted(root.rglob("*"), reverse=True):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in keep and rel != "edgemed.json":
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
