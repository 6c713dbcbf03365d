"""onnxruntime's own static quantization (`onnxruntime.quantization.quantize_static`) of an FP32
ONNX model: QDQ format, INT8 per-channel weights and UINT8 activations, convolutions and
matrix products only.

Why this is the default ONNX route: onnxruntime runs a QDQ graph fast only where it can fuse
DQ → Conv → Q into an integer kernel, which needs a Q on the conv's *output*. NNCF and PT2E
quantize op inputs only, so behind every conv sits a float GELU/norm, nothing fuses, and the
weights are dequantized again on every call (0.3–0.5× FP32 speed here). quantize_static quantizes
outputs too (benchmarks/quantize_routes.py measures the three routes side by side). Other op
types (Mul, Add, …) stay float: quantizing them costs more in Q/DQ than it saves on small models.
Depth-wise convolutions stay float too: few MACs, and an INT8 one costs a Q/DQ pair of its own
(mednext_small at 28², 1 thread: INT8 1.00× FP32 with them quantized, 1.21× without).
No `quant_pre_process`: its symbolic shape inference crashed on dynamo-exported ConvNeXts.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import numpy as np

from edgemed.compress.int8 import Int8Files, Int8Job
from edgemed.compress.scope import onnx_node_names
from edgemed.errors import missing_extra

OP_TYPES = ("Conv", "Gemm", "MatMul")


def _group(node) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def quantize_onnx(fp32_path: Path, calibration: np.ndarray, out_path: Path,
                  ignore_layers: list[str] | None = None, fused: dict[str, str] | None = None,
                  ranges_cache: Path | None = None) -> dict:
    """Write the INT8 (QDQ) model to out_path; returns details for the manifest. `fused` maps
    BatchNorms folded into convs back to the convs (`scope.conv_bn_pairs`). `ranges_cache`: a JSON
    file of calibrated tensor ranges, written by the first call and read by later ones on the same
    FP32 model and calibration set (accuracy control only changes which nodes stay float; the
    calibration pass is most of the time at 224²)."""
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        raise missing_extra("onnxruntime", "onnx") from None

    proto = onnx.load(str(fp32_path))
    input_name = proto.graph.input[0].name
    first_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    batch = 1 if first_dim.HasField("dim_value") else 16  # batches only where the batch is dynamic
    excluded = onnx_node_names(proto, ignore_layers or [], fused)
    depthwise = [n.name for n in proto.graph.node if n.op_type == "Conv" and _group(n) > 1 and n.name not in excluded]
    excluded += depthwise
    del proto

    class Images(CalibrationDataReader):
        def __init__(self):
            self.items = iter(range(0, len(calibration), batch))

        def get_next(self):
            i = next(self.items, None)
            return None if i is None else {input_name: calibration[i:i + batch].astype(np.float32)}

    # older onnxruntime releases have no calibration cache: they calibrate on every call
    cache = ({"calibration_cache_path": ranges_cache}
             if ranges_cache and "calibration_cache_path" in inspect.signature(quantize_static).parameters else {})
    # quantize_static keeps its augmented calibration copy of the model in its own temp folder;
    # it logs advice on the root logger (pre-processing, rank-1 weights) that does not apply here
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(str(fp32_path), str(out_path), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(OP_TYPES), nodes_to_exclude=excluded, **cache)
    finally:
        root.setLevel(level)
    onnx.checker.check_model(str(out_path))
    return {"route": "ort", "quantizer": "onnxruntime.quantization.quantize_static (QDQ, MinMax)",
            "weights": "int8 per-channel", "activations": "uint8 per-tensor", "op_types": list(OP_TYPES),
            "ignored_layers": list(ignore_layers or []), "excluded_nodes": len(excluded),
            "float_depthwise_convs": len(depthwise),
            "calibration_images": int(len(calibration))}


def quantize(job: Int8Job) -> Int8Files:
    """Route `ort` for ONNX (edgemed/compress/int8.py's interface). The bundle's staging folder
    holds the calibrated ranges for this FP32 file; unreferenced by the manifest, so not kept."""
    from edgemed.compress.scope import conv_bn_pairs

    out = job.folder / "model_int8.onnx"
    fused = conv_bn_pairs(job.model, job.example) if job.model is not None else None
    return Int8Files([out], quantize_onnx(job.fp32_file, job.calibration, out, job.keep_float, fused,
                                          ranges_cache=job.folder / "ort_ranges.json"))
