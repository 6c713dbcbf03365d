"""Output quantization of INT8 artifacts: an ONNX QDQ model's output scale, and the step compare_arm
counts INT8 differences in."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_output_quantization(path: str | Path) -> dict | None:
    """Scale/zero point of the DequantizeLinear that produces the graph's first output, if any
    (ONNX QDQ INT8 models). None when the output is not dequantized or onnx is not installed."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        return None
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    out_name = graph.output[0].name
    producers = {o: n for n in graph.node for o in n.output}
    node = producers.get(out_name)
    # look through shape-only ops between the last DequantizeLinear and the output
    while node is not None and node.op_type in ("Reshape", "Flatten", "Squeeze", "Identity"):
        node = producers.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear":
        return None
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(a.t) for n in graph.node if n.op_type == "Constant"
              for a in n.attribute if a.name == "value"}
    scale = inits.get(node.input[1], consts.get(node.input[1]))
    zero = inits.get(node.input[2], consts.get(node.input[2])) if len(node.input) > 2 else np.zeros((), np.int8)
    if scale is None or np.size(scale) != 1:
        return None
    return {"scale": float(np.asarray(scale).reshape(())), "zero_point": int(np.asarray(zero).reshape(())),
            "dtype": np.asarray(zero).dtype.name, "source": "ONNX output DequantizeLinear"}


# ---- comparison -----------------------------------------------------------------------------------
def output_step(art, x86_meta: dict, arm_meta: dict, x86: np.ndarray) -> tuple[float, str, dict | None]:
    """One quantization step of an INT8 artifact's logits, and where it came from."""
    details = art.details or {}
    q = details.get("output_quantization") or {}
    if q.get("scale"):
        return float(q["scale"]), f"manifest details.output_quantization, read from the {q.get('source', 'model')}", None
    io_out = (details.get("io") or {}).get("output") or {}  # edgemed.compress.tflite_int8 (INT8 I/O)
    if io_out.get("scale"):
        return float(io_out["scale"]), "manifest details.io.output", None
    qx, qa = x86_meta.get("output_quantization"), arm_meta.get("output_quantization")
    if qx and qx.get("scale"):
        mismatch = None if qa == qx else {"x86": qx, "aarch64": qa}
        return float(qx["scale"]), qx["source"], mismatch
    if art.format == "onnx":
        q = onnx_output_quantization(art.path)
        if q:
            return q["scale"], q["source"], None
    span = float(x86.max() - x86.min())
    return max(span, 1e-12) / 255, "estimated: 1/255 of the x86 logits' range (no scale found)", None
