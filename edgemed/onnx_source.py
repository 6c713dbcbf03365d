"""An ONNX file as the model: `edgemed import model.onnx` writes a bundle holding the FP32 ONNX
and its manifest; `export` adds OpenVINO IR read from that ONNX, `quantize` adds INT8 through
onnxruntime's and NNCF's routes on the ONNX graph and NNCF on OpenVINO, with accuracy control
against the FP32 ONNX on the validation split; `bench` and `predict` take the bundle as any other.
What an ONNX file cannot give (pruning, TFLite, which both need the PyTorch model) is refused
in one line. No torch is needed here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemed.bounds import meets_bound
from edgemed.errors import EdgemedError, ExportError, missing_extra
from edgemed.fileio import atomic_dir, check_output, quiet_native, sha256_file

ONNX_FORMATS = ("onnx", "openvino")  # what an ONNX source can be turned into without PyTorch
MIN_OPSET = 13
NEEDS_TORCH = ("edgemed works on an ONNX file without its PyTorch model for quantize, export to "
               f"{' and '.join(ONNX_FORMATS)}, bench and predict")


@dataclass
class OnnxInfo:
    input_name: str
    channels: int | None
    size: tuple[int | None, int | None]
    static_batch: int | None
    outputs: int | None
    opset: int


def inspect_onnx(path: str | Path) -> OnnxInfo:
    """What edgemed needs of an ONNX classifier: FP32, opset ≥ 13, one NCHW image input and one
    (N, classes) output; refused in one line otherwise."""
    try:
        import onnx
    except ImportError:
        raise missing_extra("onnx", "onnx") from None
    p = Path(path)
    if not p.is_file():
        raise EdgemedError(f"ONNX file not found: {p}")
    try:
        model = onnx.load(str(p), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as e:
        raise EdgemedError(f"{p}: not a valid ONNX model ({e.__class__.__name__}: {' '.join(str(e).split())[:160]}): "
                           "export it again with torch.onnx.export") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise EdgemedError(f"{p}: opset {opset} is older than {MIN_OPSET}: export it again with opset_version≥{MIN_OPSET}")
    weights = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise EdgemedError(f"{p}: has {len(inputs)} inputs and {len(model.graph.output)} outputs; edgemed takes "
                           "classifiers with one image input and one logits output: export only those")
    t = inputs[0].type.tensor_type
    if t.elem_type != onnx.TensorProto.FLOAT:
        raise EdgemedError(f"{p}: input {inputs[0].name!r} is not float32: export the FP32 model "
                           "(edgemed quantizes it itself)")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    if len(dims) != 4:
        raise EdgemedError(f"{p}: input {inputs[0].name!r} has {len(dims)} dimensions, not N×C×H×W: export it "
                           "with an NCHW image input")
    out_dims = [d.dim_value if d.HasField("dim_value") else None
                for d in model.graph.output[0].type.tensor_type.shape.dim]
    return OnnxInfo(inputs[0].name, dims[1], (dims[2], dims[3]), dims[0],
                    out_dims[1] if len(out_dims) == 2 else None, opset)


def onnx_metadata(path: Path) -> dict:
    """Metadata the file may carry in `metadata_props` (keys as the import flags; JSON values)."""
    import onnx

    out = {}
    for prop in onnx.load(str(path), load_external_data=False).metadata_props:
        key = prop.key.removeprefix("edgemed.")
        if key in ("classes", "class_names", "mean", "std", "input_size", "channels", "resize", "interpolation"):
            try:
                value = json.loads(prop.value[:100_000])
            except (ValueError, RecursionError):
                value = prop.value.split(",") if key in ("classes", "class_names") else prop.value
            out["classes" if key == "class_names" else key] = value
    return out


def import_onnx(path: str | Path, *, out: str | Path, declared, dataset_meta: dict, force: bool = False) -> Path:
    """Check an ONNX classifier against the declared metadata by running it, then write a bundle
    with it as the FP32 reference (`onnx-fp32`). `declared`: the importer's resolved metadata."""
    from edgemed.export.bundle import BundleWriter
    from edgemed.runtime import open_session
    from edgemed.versions import library_versions

    p = Path(path)
    info = inspect_onnx(p)
    spec, classes = declared.spec, declared.classes
    if info.channels is None:
        raise EdgemedError(f"{p}: its input has no static channel count: export it with a fixed channel dimension")
    if info.channels != spec.channels:
        raise EdgemedError(f"{p} takes {info.channels}-channel input, not --channels {spec.channels}: give "
                           f"--channels {info.channels}")
    if None not in info.size and tuple(info.size) != tuple(spec.size):
        raise EdgemedError(f"{p} takes {info.size[0]}×{info.size[1]} input, not --input-size {spec.size[0]}: give "
                           f"--input-size {info.size[0]}")
    out = check_output(out, force)
    with atomic_dir(out, force) as tmp:
        shutil.copy2(p, tmp / "model_fp32.onnx")
        writer = BundleWriter(tmp, class_names=classes, preprocess=spec, input_name=info.input_name,
                              model={"name": f"onnx:{p.name}", "kwargs": {}, "num_classes": len(classes),
                                     "task": declared.task, "metrics": {}},
                              provenance={"onnx": {"file": p.name, "sha256": sha256_file(p), "opset": info.opset},
                                          "dataset": dataset_meta, "lineage": [{"op": "import", "from": "onnx"}],
                                          "libraries": library_versions()})
        static = info.static_batch if info.static_batch and info.static_batch > 0 else None
        if static is not None and static > 4096:
            raise EdgemedError(f"{p}: a static batch of {static} is more than edgemed runs (4096): export it with a "
                               "dynamic batch axis")
        a = writer.add("onnx-fp32", "onnx", "fp32", [tmp / "model_fp32.onnx"], static_batch=static,
                       details={"role": "FP32 reference (the imported ONNX file)", "opset": info.opset})
        a.num_classes = len(classes)
        with quiet_native():
            session = open_session(a)
        x = np.zeros((a.static_batch or 2, *spec.input_shape[1:]), np.float32)
        try:
            y = session.run(x)  # checks one finite score per declared class
        except EdgemedError as e:
            raise EdgemedError(f"{p} does not fit the declared metadata: {e}") from None
        except Exception as e:
            raise EdgemedError(f"{p} cannot run on a {spec.channels}×{spec.size[0]}×{spec.size[1]} input "
                               f"({e.__class__.__name__}: {' '.join(str(e).split())[:160]}): check --input-size") from None
        finally:
            session.close()
        writer.update(a.id, details={**a.details, "checked_outputs": list(y.shape)})
        writer.write()
    return out


def from_module(module, *, preprocess, classes: list[str], dataset: str | None = None, data_dir=None) -> Path:
    """An in-memory `nn.Module` (a notebook's model) as an ONNX source: exported with the torch
    exporter into a temporary bundle, checked like `edgemed import model.onnx`."""
    import tempfile

    import torch

    from edgemed.data.preprocess import PreprocessSpec
    from edgemed.export.onnx import export as export_onnx
    from edgemed.importer import resolve_metadata

    if not isinstance(preprocess, PreprocessSpec):
        raise EdgemedError("an in-memory model needs preprocess=PreprocessSpec(size=(H, W), channels=C, mean=..., "
                           "std=...): how its pixels were normalised in training")
    folder = Path(tempfile.mkdtemp(prefix="edgemed-module-"))
    example = torch.zeros(preprocess.input_shape)
    with quiet_native():
        onnx_file = export_onnx(module.eval(), example, folder, "fp32").files[0]
    declared, dataset_meta = resolve_metadata(classes=list(classes), input_size=preprocess.size[0],
                                              channels=preprocess.channels, mean=list(preprocess.mean),
                                              std=list(preprocess.std), resize=preprocess.resize,
                                              interpolation=preprocess.interpolation, dataset=dataset,
                                              data_dir=data_dir, onnx_path=onnx_file)
    return import_onnx(onnx_file, out=folder / "bundle", declared=declared, dataset_meta=dataset_meta)


# ---- an ONNX source for export and quantize ---------------------------------------------------

@dataclass
class OnnxSource:
    """The FP32 ONNX reference of a bundle, with what calibration and validation need
    (the same attributes as a Checkpoint: preprocess, dataset, class_names, num_classes, path)."""
    path: Path  # the FP32 ONNX file
    bundle: object
    preprocess: object
    class_names: list[str]
    dataset: dict

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)

    def open_dataset(self, data_dir=None):
        from edgemed.data.datasets import load_recorded

        return load_recorded(self.dataset, self.bundle.root, "import the ONNX file again with --dataset "
                             "NAME|PATH|folder:PATH|csv:PATH", data_dir)


def is_onnx_source(path: str | Path) -> bool:
    """An .onnx file, or a bundle whose FP32 reference is ONNX (no PyTorch checkpoint in it)."""
    p = Path(path)
    if p.suffix.lower() == ".onnx":
        return True
    if (p / "edgemed.json").is_file():
        from edgemed.export.bundle import load_bundle

        b = load_bundle(p, verify=False)
        return not any(a.format == "torch" for a in b.artifacts) and any(
            a.id == "onnx-fp32" for a in b.artifacts)
    return False


def open_source(path: str | Path, **declared_flags) -> OnnxSource:
    """A bundle made by `edgemed import model.onnx`, or an .onnx file with the import flags
    (imported into a temporary bundle first)."""
    from edgemed.export.bundle import load_bundle

    p = Path(path)
    if p.suffix.lower() == ".onnx":
        import tempfile

        from edgemed.importer import resolve_metadata

        folder = Path(tempfile.mkdtemp(prefix="edgemed-onnx-")) / "bundle"
        try:
            declared, dataset_meta = resolve_metadata(onnx_path=p, **declared_flags)
        except EdgemedError as e:
            raise EdgemedError(f"{p}: {e}; or import it once with `edgemed import {p.name} --classes A,B "
                               "--input-size N --channels C --dataset NAME --out BUNDLE` and use the bundle") from None
        import_onnx(p, out=folder, declared=declared, dataset_meta=dataset_meta)
        p = folder
    b = load_bundle(p)
    ref = b.artifact("onnx-fp32")
    return OnnxSource(ref.path, b, b.preprocess, b.class_names, b.manifest["provenance"].get("dataset") or {})


def onnx_formats(formats: list[str], default: tuple = ()) -> list[str]:
    """The requested formats an ONNX source can give; TFLite (needs the PyTorch model) is left
    out with a warning when others remain, refused when it is all that was asked for."""
    kept = [f for f in formats if f in ONNX_FORMATS]
    dropped = [f for f in formats if f not in ONNX_FORMATS]
    if not kept:
        raise refuse_torch_only(", ".join(dropped))
    if dropped and list(formats) != list(default):  # asked for by name, not the command's default
        import warnings

        warnings.warn(f"{', '.join(dropped)} left out: it needs the PyTorch model, which an ONNX file does not carry",
                      stacklevel=2)
    return kept


def refuse_torch_only(what: str) -> EdgemedError:
    return EdgemedError(f"{what} needs the PyTorch model, which an ONNX file does not carry: bring the model "
                        f"as `edgemed import net.py:build --weights W` ({NEEDS_TORCH})")


def _logits(path: Path, x: np.ndarray, classes: int, threads=None) -> np.ndarray:
    from edgemed.runtime import open_session

    with quiet_native():
        s = open_session(path, threads=threads)
    s.num_classes = classes
    try:
        return np.concatenate([s.run(x[i:i + 64]) for i in range(0, len(x), 64)])
    finally:
        s.close()


def _start_bundle(src: OnnxSource, tmp: Path):
    """A new bundle in `tmp` with the source's manifest and its FP32 ONNX reference."""
    from edgemed.export.bundle import BundleWriter

    shutil.copy2(src.path, tmp / "model_fp32.onnx")
    writer = BundleWriter(tmp, class_names=src.class_names, preprocess=src.preprocess,
                          model=src.bundle.manifest["model"], provenance=src.bundle.manifest["provenance"],
                          input_name=src.bundle.manifest["input"].get("name", "input"))
    ref = src.bundle.artifact("onnx-fp32")
    writer.add("onnx-fp32", "onnx", "fp32", [tmp / "model_fp32.onnx"], static_batch=ref.static_batch,
               details=ref.details)
    return writer


def _openvino_ir(onnx_file: Path, folder: Path, spec, precision: str) -> list[Path]:
    """OpenVINO IR converted from the ONNX file (dynamic batch; FP16-compressed weights for fp16)."""
    try:
        import openvino as ov
    except ImportError:
        raise missing_extra("OpenVINO", "openvino") from None
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_native():
        model = ov.convert_model(str(onnx_file), input=[ov.PartialShape([-1, *spec.input_shape[1:]])])
        ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=(precision == "fp16"))
    return [folder / "model.xml", folder / "model.bin"]


def export_onnx_source(source, formats, precision=("fp32",), out=None, *, force: bool = False,
                       data_dir=None, parity_images: int = 128, threads=None, **flags):
    """OpenVINO IR (FP32/FP16) converted from the ONNX reference, parity-checked against it."""
    from edgemed.export.exporter import ExportResult
    from edgemed.export.parity import compare, within_tolerance

    bad = [f for f in formats if f not in ONNX_FORMATS]
    if bad:
        raise refuse_torch_only(f"export to {', '.join(bad)}")
    src = open_source(source, **flags)
    out = Path(out) if out else Path("bundles") / f"{src.path.stem}_export"
    check_output(out, force)
    from edgemed.compress.quantize import _validation

    x, _ = _validation(src, data_dir, parity_images) if parity_images else (None, None)
    reference = _logits(src.path, x, src.num_classes, threads) if x is not None else None
    import openvino as ov

    with atomic_dir(out, force) as tmp:
        writer = _start_bundle(src, tmp)
        for p in precision:
            if "openvino" not in formats:
                break
            files = _openvino_ir(src.path, tmp / f"openvino_{p}", src.preprocess, p)
            a = writer.add(f"openvino-{p}", "openvino", p, files,
                           details={"converter": "openvino.convert_model (from ONNX)", "openvino": ov.__version__})
            parity = compare(reference, _logits(a.path, x, src.num_classes, threads)) if x is not None else None
            if parity is not None:
                ok, why = within_tolerance(parity, p)
                if not ok:
                    raise ExportError(f"openvino-{p} failed parity with the ONNX reference: {why}")
                writer.update(a.id, parity=parity)
        writer.write()
    return ExportResult(out, writer.artifact_ids, [])


def quantize_onnx_source(source, *, calib, formats=ONNX_FORMATS, out=None, max_drop: float | None = None,
                         metric: str = "accuracy", preset: str = "performance", routes=None,
                         val_limit: int | None = None, calib_limit: int | None = None, data_dir=None,
                         threads=None, force: bool = False, **flags):
    """INT8 of an ONNX reference: ONNX through onnxruntime (`ort`, default) or NNCF, OpenVINO
    through NNCF; within `max_drop` points of `metric` on validation (NNCF's accuracy control; an
    `ort` model over the bound is rebuilt by NNCF's). Returns a QuantizeResult."""
    from edgemed.compress.accuracy_control import AccuracyTarget
    from edgemed.compress.calibration import load_calibration
    from edgemed.compress.nncf_quant import quantize_onnx, quantize_openvino
    from edgemed.compress.ort_quant import quantize_onnx as ort_quantize
    from edgemed.compress.quantize import (
        CONTROL_METRICS,
        QuantizeResult,
        _validation,
        recommend,
        validation_change,
    )
    from edgemed.export.parity import compare
    from edgemed.metrics import check_evaluable
    from edgemed.runtime import check_threads

    bad = [f for f in formats if f not in ONNX_FORMATS]
    if bad:
        raise refuse_torch_only(f"INT8 for {', '.join(bad)}")
    if metric not in CONTROL_METRICS:
        raise EdgemedError(f"unknown --metric {metric!r}: use {', '.join(CONTROL_METRICS)}")
    check_threads(threads)
    routes = dict(routes or {})
    onnx_route = routes.get("onnx", "ort")
    if onnx_route not in ("ort", "nncf") or routes.get("openvino", "nncf") != "nncf":
        raise EdgemedError("an ONNX source has the routes onnx=ort|nncf and openvino=nncf")
    src = open_source(source, **flags)
    out = Path(out) if out else Path("bundles") / f"{src.path.stem}_int8"
    check_output(out, force)
    cal = load_calibration(calib, src, data_dir=data_dir, limit=calib_limit)
    x_val, y_val = _validation(src, data_dir, val_limit)
    check_evaluable(y_val, metric, src.class_names)
    target = AccuracyTarget(x_val, y_val, metric, (max_drop if max_drop is not None else 1e9) / 100.0, src.class_names)
    ref_logits = _logits(src.path, x_val, src.num_classes, threads)
    target.reference = target.score(ref_logits)
    accuracy = target if max_drop is not None else None
    rows, val_logits = [], {}
    with atomic_dir(out, force) as tmp:
        writer = _start_bundle(src, tmp)
        for fmt in formats:
            with quiet_native():
                if fmt == "openvino":
                    # the FP32 IR beside the INT8 one, as `edgemed quantize` of a checkpoint gives
                    ir = _openvino_ir(tmp / "model_fp32.onnx", tmp / "openvino_fp32", src.preprocess, "fp32")
                    writer.add("openvino-fp32", "openvino", "fp32", ir,
                               parity=compare(ref_logits, _logits(ir[0], x_val, src.num_classes, threads)),
                               details={"converter": "openvino.convert_model (from ONNX)"})
                    r = quantize_openvino(None, None, cal.x, tmp, preset=preset, accuracy=accuracy, fp32_ir=ir[0])
                    files, details = r.files, r.details
                elif onnx_route == "ort":
                    details = ort_quantize(tmp / "model_fp32.onnx", cal.x, tmp / "model_int8.onnx")
                    files = [tmp / "model_int8.onnx"]
                else:
                    r = quantize_onnx(tmp / "model_fp32.onnx", cal.x, tmp / "model_int8.onnx", preset=preset,
                                      accuracy=accuracy)
                    files, details = r.files, r.details
            logits = _logits(files[0], x_val, src.num_classes, threads)
            score = target.score(logits)
            if fmt == "onnx" and onnx_route == "ort" and accuracy is not None and \
                    not meets_bound(100 * (target.reference - score), max_drop):
                with quiet_native():  # over the bound: NNCF's accuracy control on the same graph
                    r = quantize_onnx(tmp / "model_fp32.onnx", cal.x, tmp / "model_int8.onnx", preset=preset,
                                      accuracy=accuracy)
                files, details = r.files, {**r.details, "ort_drop_points": 100 * (target.reference - score)}
                logits = _logits(files[0], x_val, src.num_classes, threads)
                score = target.score(logits)
            drop = target.reference - score
            met = None if max_drop is None else meets_bound(100 * drop, max_drop)
            precision = "mixed" if details.get("reverted_layers") else "int8"
            a8 = writer.add(f"{fmt}-{precision}", fmt, precision, files, parity=compare(ref_logits, logits),
                            details={**details, "val_metric": score, "val_drop_points": 100 * drop, "bound_met": met})
            val_logits[a8.id] = logits
            rows.append({"artifact": a8.id, "format": fmt, "route": details.get("route"), "metric": score,
                         "drop_points": 100 * drop, **validation_change(target, ref_logits, logits),
                         "bound_met": met, "size": a8.size,
                         "reverted_layers": list(details.get("reverted_layers") or []),
                         "fp32_size": writer.get(f"{fmt}-fp32").size if writer.get(f"{fmt}-fp32") else 0})
        # the same rule as `edgemed quantize`
        recommended, note = recommend(rows, writer, x_val[:1], threads, max_drop, len(y_val))
        writer.set("quantization", {"source": "onnx", "metric": metric, "max_drop_points": max_drop,
                                    "validation_images": int(len(y_val)), "reference_metric": target.reference,
                                    "calibration": cal.info, "results": rows, "recommended": recommended,
                                    "note": note})
        writer.write()
    return QuantizeResult(out, rows, recommended, {"metric": metric, "value": target.reference}, note=note,
                          val_logits={**val_logits, "reference": ref_logits})
