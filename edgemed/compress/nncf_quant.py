"""NNCF post-training quantization for OpenVINO IR and ONNX, with NNCF's own accuracy control
(`quantize_with_accuracy_control`) when a maximum drop is given."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgemed.compress.accuracy_control import MODEL_TYPES, PRESETS, AccuracyTarget
from edgemed.compress.int8 import Int8Files, Int8Job
from edgemed.compress.scope import (
    module_of_backend_node,
    onnx_module_of,
    onnx_node_names,
    openvino_patterns,
)
from edgemed.errors import EdgemedError, missing_extra


def _nncf():
    try:
        import nncf
    except ImportError:
        raise missing_extra("NNCF", "quantize") from None
    return nncf


def _options(nncf, preset: str, model_type: str) -> dict:
    if preset not in PRESETS:
        raise EdgemedError(f"unknown --preset {preset!r}: use {', '.join(PRESETS)}")
    if model_type not in MODEL_TYPES:
        raise EdgemedError(f"unknown model type {model_type!r}: use {', '.join(MODEL_TYPES)}")
    return {"preset": nncf.QuantizationPreset.PERFORMANCE if preset == "performance" else nncf.QuantizationPreset.MIXED,
            "model_type": nncf.ModelType.TRANSFORMER if model_type == "transformer" else None,
            "fast_bias_correction": True}  # bias correction on (NNCF's fast variant)


@contextmanager
def _capture_reverted():
    """NNCF reports the operations accuracy control reverted to float only in its log."""
    logger = logging.getLogger("nncf")
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Grab(level=logging.INFO)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    reverted: list[str] = []
    try:
        yield reverted
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        for msg in records:
            if "reverted back to the floating-point precision" in msg:
                reverted += [ln.strip() for ln in msg.splitlines()[1:] if ln.strip()]


def quantize_openvino(model, example, calibration: np.ndarray, folder: Path, *, preset: str = "performance",
                      model_type: str = "cnn", ignore_layers: list[str] | None = None,
                      accuracy: AccuracyTarget | None = None, fp32_ir: Path | None = None) -> Int8Files:
    """Quantize with NNCF; INT8 IR written to folder/openvino_int8/. `fp32_ir`: the FP32 IR already
    exported from this model (dynamic batch), read instead of converting the model again."""
    nncf = _nncf()
    import openvino as ov

    if fp32_ir is not None:
        ov_model = ov.Core().read_model(str(fp32_ir))
    else:
        shape = list(example.shape)
        shape[0] = -1
        ov_model = ov.convert_model(model, example_input=example[:1], input=[ov.PartialShape(shape)])
    calib = nncf.Dataset(list(calibration), lambda a: a[None])
    ignored = nncf.IgnoredScope(patterns=openvino_patterns(ignore_layers), validate=False) if ignore_layers else None
    opts = _options(nncf, preset, model_type)
    details = {"route": "nncf", "preset": preset, "model_type": model_type, "bias_correction": "fast",
               "ignored_layers": list(ignore_layers or []), "calibration_images": int(len(calibration))}
    if accuracy is None:
        q = nncf.quantize(ov_model, calib, subset_size=len(calibration), ignored_scope=ignored, **opts)
    else:
        def validate(compiled, items):
            return accuracy.evaluate(lambda x: compiled(x)[0], items)

        with _capture_reverted() as reverted:
            q = nncf.quantize_with_accuracy_control(
                ov_model, calib, nncf.Dataset(accuracy.batches()), validate, max_drop=accuracy.max_drop,
                drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration), ignored_scope=ignored, **opts,
                **accuracy.restorer_options(nncf))
        details["accuracy_control"] = "nncf.quantize_with_accuracy_control"
        details["reverted_layers"] = sorted({module_of_backend_node(n) for n in reverted})
    sub = folder / "openvino_int8"
    sub.mkdir(parents=True, exist_ok=True)
    ov.save_model(q, str(sub / "model.xml"), compress_to_fp16=False)
    return Int8Files([sub / "model.xml", sub / "model.bin"], details)


def quantize_onnx(fp32_path: Path, calibration: np.ndarray, out_path: Path, *, preset: str = "performance",
                  model_type: str = "cnn", ignore_layers: list[str] | None = None,
                  accuracy: AccuracyTarget | None = None, fused: dict[str, str] | None = None) -> Int8Files:
    """Quantize an FP32 ONNX model with NNCF (QDQ INT8). `fused` maps BatchNorms folded into convs
    back to the convs (`scope.conv_bn_pairs`)."""
    nncf = _nncf()
    import onnx

    proto = onnx.load(str(fp32_path))
    input_name = proto.graph.input[0].name
    calib = nncf.Dataset(list(calibration), lambda a: {input_name: a[None]})
    names = onnx_node_names(proto, ignore_layers or [], fused)
    ignored = nncf.IgnoredScope(names=names, validate=False) if names else None
    opts = _options(nncf, preset, model_type)
    details = {"route": "nncf", "preset": preset, "model_type": model_type, "bias_correction": "fast",
               "ignored_layers": list(ignore_layers or []), "calibration_images": int(len(calibration))}
    if accuracy is None:
        q = nncf.quantize(proto, calib, subset_size=len(calibration), ignored_scope=ignored, **opts)
    else:
        import onnxruntime as ort

        def validate(model_proto, items):
            session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
            return accuracy.evaluate(lambda x: session.run(None, {input_name: x})[0], items)

        by_name = {n.name: onnx_module_of(n, fused) for n in proto.graph.node}
        with _capture_reverted() as reverted:
            q = nncf.quantize_with_accuracy_control(
                proto, calib, nncf.Dataset(accuracy.batches()), validate, max_drop=accuracy.max_drop,
                drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration), ignored_scope=ignored, **opts,
                **accuracy.restorer_options(nncf))
        details["accuracy_control"] = "nncf.quantize_with_accuracy_control"
        details["reverted_layers"] = sorted({by_name.get(n) or n for n in reverted})
    onnx.save(q, str(out_path))
    return Int8Files([out_path], details)


def quantize_openvino_route(job: Int8Job) -> Int8Files:
    """Route `nncf` for OpenVINO IR (edgemed/compress/int8.py's interface)."""
    return quantize_openvino(job.model, job.example, job.calibration, job.folder, preset=job.preset,
                             model_type=job.model_type, ignore_layers=job.keep_float, accuracy=job.accuracy,
                             fp32_ir=job.fp32_file if job.fp32_file.suffix == ".xml" else None)


def quantize_onnx_route(job: Int8Job) -> Int8Files:
    """Route `nncf` for ONNX (edgemed/compress/int8.py's interface)."""
    from edgemed.compress.scope import conv_bn_pairs

    return quantize_onnx(job.fp32_file, job.calibration, job.folder / "model_int8.onnx", preset=job.preset,
                         model_type=job.model_type, ignore_layers=job.keep_float, accuracy=job.accuracy,
                         fused=conv_bn_pairs(job.model, job.example))


# both search float layers themselves when given an AccuracyTarget (compress/int8.py)
quantize_openvino_route.own_accuracy_control = True
quantize_onnx_route.own_accuracy_control = True
