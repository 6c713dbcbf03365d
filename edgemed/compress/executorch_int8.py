"""Route `xnnpack` for ExecuTorch: PyTorch 2 Export quantization with the XNNPACK quantizer
(int8 per-channel symmetric weights, int8 per-tensor activations), calibrated on the calibration
set, then lowered to XNNPACK like the FP32 program (edgemed/export/executorch.py)."""

from __future__ import annotations

from edgemed.compress.int8 import Int8Files, Int8Job
from edgemed.errors import missing_extra


def _quantizer(keep_float: list[str]):
    try:
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
    except ImportError:
        raise missing_extra("executorch", "executorch") from None
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    if keep_float:
        # this quantizer cannot unset one module's config: leave out the nodes of kept modules
        def quantize_node(node) -> bool:
            stack = node.meta.get("nn_module_stack") or {}
            path = next(reversed(stack.values()))[0] if stack else ""
            return not any(path == k or path.startswith(k + ".") for k in keep_float)

        quantizer.set_filter_function(quantize_node)
    return quantizer


def quantize(job: Int8Job) -> Int8Files:
    import torch

    from edgemed.export.executorch import write_program

    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        raise missing_extra("torchao", "quantize") from None
    example = job.example[:1]
    graph = torch.export.export(job.model.eval(), (example,)).module()
    prepared = prepare_pt2e(graph, _quantizer(job.keep_float))
    with torch.no_grad():
        for image in job.calibration:  # batch 1: the exported graph has the program's shape
            prepared(torch.from_numpy(image[None]))
    path = job.folder / "model_int8.pte"
    details = write_program(convert_pt2e(prepared), example, path)
    return Int8Files([path], {"route": "xnnpack", "quantizer": "XNNPACKQuantizer (PT2E, torchao)",
                              "weights": "int8 per-channel symmetric", "activations": "int8 per-tensor",
                              **details, "ignored_layers": list(job.keep_float),
                              "calibration_images": int(len(job.calibration))})
