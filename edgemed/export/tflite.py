"""TFLite via litert-torch (batch 1, as edge devices run it). FP16 stores FP16 weights through
ai-edge-quantizer's float-casting recipe (XNNPACK computes in FP32, or FP16 where the CPU has it).

Layout: torch models are NCHW; `layout="NHWC"` wraps the model with litert-torch's
`to_channel_last_io` so the TFLite input is channel-last. benchmarks/export_formats.py measures
both; NCHW I/O is the default because it was no slower there (the converter already moves the
transposes out of the graph; see benchmarks/results/export_formats.md).
"""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import EdgemedError, missing_extra
from edgemed.export.base import ExportedFiles

PRECISIONS = ("fp32", "fp16")
LAYOUTS = ("NCHW", "NHWC")
DEFAULT_LAYOUT = "NCHW"


def convert(model, example, path: Path, layout: str = DEFAULT_LAYOUT, quant_config=None) -> None:
    try:
        import litert_torch
    except ImportError:
        raise missing_extra("litert-torch", "tflite") from None
    if layout not in LAYOUTS:
        raise EdgemedError(f"TFLite layout must be NCHW or NHWC, got {layout!r}")
    x = example[:1]
    if layout == "NHWC":
        model = litert_torch.to_channel_last_io(model, args=[0])
        x = x.permute(0, 2, 3, 1).contiguous()
    kwargs = {"quant_config": quant_config} if quant_config is not None else {}
    litert_torch.convert(model.eval(), (x,), **kwargs).export(str(path))


def cast_weights_fp16(src: Path, dst: Path) -> None:
    try:
        from ai_edge_quantizer import qtyping, quantizer, recipe_manager
        from ai_edge_quantizer.algorithm_manager import AlgorithmName
    except ImportError:
        raise missing_extra("ai-edge-quantizer", "tflite") from None
    rm = recipe_manager.RecipeManager()
    rm.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                              num_bits=16, algorithm_key=AlgorithmName.FLOAT_CASTING)
    q = quantizer.Quantizer(str(src))
    q.load_quantization_recipe(rm.get_quantization_recipe())
    q.quantize().export_model(str(dst), overwrite=True)


def export(model, example, folder: Path, precision: str, *, layout: str = DEFAULT_LAYOUT,
           **_ignored) -> ExportedFiles:
    fp32 = folder / f"model_fp32{'_nhwc' if layout == 'NHWC' else ''}.tflite"
    if not fp32.exists():
        convert(model, example, fp32, layout)
    path = fp32
    if precision == "fp16":
        path = folder / f"model_fp16{'_nhwc' if layout == 'NHWC' else ''}.tflite"
        cast_weights_fp16(fp32, path)
    return ExportedFiles(files=[path], input_layout=layout, static_batch=1,
                         details={"converter": "litert-torch", "layout": layout,
                                  "weights": "fp16 (float casting)" if precision == "fp16" else "fp32"})
