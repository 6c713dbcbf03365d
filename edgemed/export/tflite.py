"""TFLite via litert-torch (batch 1, as edge devices run it). FP16 stores FP16 weights through
ai-edge-quantizer's float-casting recipe (XNNPACK computes in FP32, or FP16 where the CPU has it).

Depth-wise convolutions of more than 25 taps (ConvNeXt's and MedNeXt's 7×7) fall off XNNPACK's
fast kernels; they are converted as sums of ≤ 25-tap depth-wise convs with the same weights
(outputs equal up to float rounding), 1.6–1.9× faster end to end: benchmarks/results/tflite_int8.md.
Before that, MedNeXt's three parallel depth-wise branches (3×3, 5×5, 7×7, summed) are fused into
one 7×7 (`fused_for_deploy`), which saves XNNPACK two convs and two adds per block.

Layout: torch models are NCHW; `layout="NHWC"` wraps the model with litert-torch's
`to_channel_last_io` so the TFLite input is channel-last. benchmarks/export_formats.py measures
both; NCHW I/O is the default because it was no slower there (the converter already moves the
transposes out of the graph; see benchmarks/results/export_formats.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

from edgemed.errors import EdgemedError, missing_extra
from edgemed.export.base import ExportedFiles

PRECISIONS = ("fp32", "fp16")
LAYOUTS = ("NCHW", "NHWC")
DEFAULT_LAYOUT = "NCHW"


def convert(model, example, path: Path, layout: str = DEFAULT_LAYOUT, quant_config=None,
            split_depthwise: bool = True) -> list[str]:
    """Convert to TFLite (batch 1); returns the names of the depth-wise convs computed split."""
    try:
        import litert_torch
    except ImportError:
        raise missing_extra("litert-torch", "tflite") from None
    if layout not in LAYOUTS:
        raise EdgemedError(f"TFLite layout must be NCHW or NHWC, got {layout!r}")
    x = example[:1]
    split: list[str] = []
    if split_depthwise:
        model, split = split_large_depthwise(model)
    if layout == "NHWC":
        model = litert_torch.to_channel_last_io(model, args=[0])
        x = x.permute(0, 2, 3, 1).contiguous()
    kwargs = {"quant_config": quant_config} if quant_config is not None else {}
    from edgemed.fileio import atomic_path

    with atomic_path(path) as tmp:
        litert_torch.convert(model.eval(), (x,), **kwargs).export(str(tmp))
    return split


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


def export(model, example, folder: Path, precision: str, *, static_batch: bool = True,
           layout: str = DEFAULT_LAYOUT) -> ExportedFiles:
    """Always batch 1 (`static_batch` is accepted for the common signature): LiteRT models take batch 1 (the session runs larger
    batches one image at a time)."""
    fp32 = folder / f"model_fp32{'_nhwc' if layout == 'NHWC' else ''}.tflite"
    split = convert(model, example, fp32, layout) if not fp32.exists() else split_large_depthwise(model)[1]
    path = fp32
    if precision == "fp16":
        path = folder / f"model_fp16{'_nhwc' if layout == 'NHWC' else ''}.tflite"
        cast_weights_fp16(fp32, path)
    return ExportedFiles(files=[path], input_layout=layout, static_batch=1,
                         details={"converter": "litert-torch", "layout": layout,
                                  "depthwise_split_for_xnnpack": split,
                                  "weights": "fp16 (float casting)" if precision == "fp16" else "fp32"})


# ---- large depth-wise convs → XNNPACK-sized pieces ------------------------------------------

XNNPACK_DW_MAX_TAPS = 25  # largest depth-wise kernel (kh·kw) XNNPACK runs on a fast path
def split_large_depthwise(model):
    """A copy of `model` in the form XNNPACK runs fast: modules with a `fused_for_deploy()`
    (MedNeXt's parallel depth-wise branches) replaced by their fused form, then every depth-wise
    conv of more than 25 taps computed as a sum of ≤ 25-tap depth-wise convs (same parameters
    and names), ~10× faster there. Outputs equal up to float rounding. Returns (copy, names of
    the convs split). Torch-only; the original model is untouched. Splits stride-1,
    'same'-padded, odd square kernels."""
    import copy

    from torch import nn

    from edgemed.models import deploy_form

    split_cls = _split_conv_class()
    fused = deploy_form(model)
    model = fused if fused is not model else copy.deepcopy(model)
    names = []
    for name, m in model.named_modules():
        if type(m) is nn.Conv2d and _splittable(m):
            m.__class__ = split_cls
            names.append(name)
    return model, names



def _splittable(m) -> bool:
    kh, kw = m.kernel_size
    return (m.groups == m.in_channels == m.out_channels and kh == kw and kh % 2 == 1
            and kh * kw > XNNPACK_DW_MAX_TAPS and tuple(m.stride) == (1, 1) and tuple(m.dilation) == (1, 1)
            and m.padding in ((kh // 2, kw // 2), "same") and m.padding_mode == "zeros")



def _split_depthwise(F, x, w, b, groups: int):
    """k×k depth-wise conv ('same', stride 1) = (k-2)×(k-2) centre + the outer ring, which is two
    dilated convs: the top/bottom rows (2×k, dilation k-1) and the left/right columns of the
    middle rows ((k-2)×2, dilation k-1). Recurses until the centre has ≤ 25 taps."""
    k = w.shape[-1]
    if k * k <= XNNPACK_DW_MAX_TAPS:
        return F.conv2d(x, w, b, padding=k // 2, groups=groups)
    y = _split_depthwise(F, x, w[:, :, 1:k - 1, 1:k - 1], b, groups)
    y = y + F.conv2d(x, w[:, :, 0:k:k - 1, :], None, padding=k // 2, dilation=(k - 1, 1), groups=groups)
    return y + F.conv2d(x, w[:, :, 1:k - 1, 0:k:k - 1], None, padding=(k // 2 - 1, k // 2),
                        dilation=(1, k - 1), groups=groups)



@functools.cache
def _split_conv_class():
    import torch.nn.functional as F
    from torch import nn

    class SplitDepthwiseConv2d(nn.Conv2d):
        """nn.Conv2d whose forward sums ≤ 25-tap depth-wise convs (XNNPACK's fast kernels)."""

        def forward(self, x):
            return _split_depthwise(F, x, self.weight, self.bias, self.groups)

    return SplitDepthwiseConv2d


