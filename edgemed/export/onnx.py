"""ONNX export with the torch (dynamo) exporter, checked with the ONNX checker. FP16 converts the
graph with onnxruntime's float16 tool, keeping float32 inputs/outputs."""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import missing_extra
from edgemed.export.base import ExportedFiles

OPSET = 18  # supported by onnxruntime ≥ 1.14 and OpenVINO ≥ 2023, including on ARM boards
PRECISIONS = ("fp32", "fp16")


def export(model, example, folder: Path, precision: str, *, static_batch: bool = False,
           layout: str = "NCHW") -> ExportedFiles:
    try:
        import onnx
        import torch
    except ImportError:
        raise missing_extra("onnx", "onnx") from None
    path = folder / f"model_{precision}.onnx"
    if not static_batch:
        example = example.expand(2, *example.shape[1:]).contiguous()  # batch 1 would be specialised
        dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    else:
        example, dynamic = example[:1], None
    program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET,
                                input_names=["input"], output_names=["logits"],
                                dynamic_shapes=dynamic, verbose=False)
    program.save(str(path), external_data=False)
    proto = onnx.load(str(path))
    if precision == "fp16":
        try:
            from onnxruntime.transformers.float16 import convert_float_to_float16
        except ImportError:
            raise missing_extra("onnxruntime (for the FP16 converter)", "onnx") from None
        proto = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=True)
        topological_sort(proto.graph)  # the converter appends its input casts at the end
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path))
    return ExportedFiles(
        files=[path], static_batch=1 if static_batch else None,
        details={"opset": OPSET, "ir_version": proto.ir_version, "dynamic_batch": not static_batch,
                 "exporter": "torch.onnx (dynamo)",
                 "compute": "fp16 graph, fp32 I/O" if precision == "fp16" else "fp32"})


def topological_sort(graph) -> None:
    """Reorder graph.node so every node comes after the nodes producing its inputs."""
    produced_by = {out: i for i, n in enumerate(graph.node) for out in n.output}
    order, state = [], {}

    def visit(i: int) -> None:
        if state.get(i) == 2:
            return
        state[i] = 1
        for name in graph.node[i].input:
            j = produced_by.get(name)
            if j is not None and state.get(j) != 2 and j != i:
                visit(j)
        state[i] = 2
        order.append(i)

    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph.node) + 1000))
    for i in range(len(graph.node)):
        visit(i)
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)
