"""PyTorch 2 Export (PT2E) post-training quantization: torch.export → prepare_pt2e with the X86
Inductor quantizer (uint8 activations, int8 per-channel weights: the VNNI-native pairing) →
calibrate → convert_pt2e → ONNX with QuantizeLinear/DequantizeLinear pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemed.compress.int8 import Int8Files, Int8Job
from edgemed.errors import missing_extra


def _pt2e():
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )
    except ImportError:
        raise missing_extra("torchao", "quantize") from None
    return prepare_pt2e, convert_pt2e, X86InductorQuantizer, get_default_x86_inductor_quantization_config


def quantize_x86(model, calibration: np.ndarray, ignore_layers: list[str] | None = None, batch: int = 32):
    """A converted (fake-quant → quantize/dequantize) GraphModule with a dynamic batch."""
    import torch

    prepare_pt2e, convert_pt2e, Quantizer, default_config = _pt2e()
    example = torch.from_numpy(calibration[:2])
    dims = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    graph = torch.export.export(model.eval(), (example,), dynamic_shapes=dims).module()
    quantizer = Quantizer()
    quantizer.set_global(default_config())
    for name in ignore_layers or []:
        quantizer.set_module_name_qconfig(name, None)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), batch):
            prepared(torch.from_numpy(calibration[i:i + batch]))
    return convert_pt2e(prepared)


def export_onnx(model, calibration: np.ndarray, out_path: Path, ignore_layers: list[str] | None = None) -> dict:
    """INT8 ONNX through PT2E; returns details for the manifest."""
    import torch

    from edgemed.export.onnx import OPSET

    converted = quantize_x86(model, calibration, ignore_layers)
    example = torch.from_numpy(calibration[:2])
    program = torch.onnx.export(converted, (example,), dynamo=True, opset_version=OPSET,
                                input_names=["input"], output_names=["logits"],
                                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    program.save(str(out_path), external_data=False)
    import onnx

    onnx.checker.check_model(str(out_path))
    return {"route": "pt2e", "quantizer": "X86InductorQuantizer (torchao)", "opset": OPSET,
            "ignored_layers": list(ignore_layers or []), "calibration_images": int(len(calibration))}


def quantize(job: Int8Job) -> Int8Files:
    """Route `pt2e` for ONNX (edgemed/compress/int8.py's interface)."""

    out = job.folder / "model_int8.onnx"
    return Int8Files([out], export_onnx(job.model, job.calibration, out, job.keep_float))
