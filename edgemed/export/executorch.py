"""ExecuTorch (.pte) export: torch.export → `to_edge_transform_and_lower` with the XNNPACK
partitioner → one .pte program. ExecuTorch is PyTorch's own on-device runtime, the path Arm
publishes Raspberry Pi numbers for. Batch 1 (the session runs larger batches an image at a time):
XNNPACK plans its memory for the exported shape, and a bounded dynamic batch was refused at run
time past a capacity smaller than its bound (executorch 1.5.1)."""

from __future__ import annotations

from pathlib import Path

from edgemed.errors import missing_extra
from edgemed.export.base import ExportedFiles

PRECISIONS = ("fp32",)


def _lowering():
    try:
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    except ImportError:
        raise missing_extra("executorch", "executorch") from None
    return to_edge_transform_and_lower, XnnpackPartitioner


def write_program(graph, example, path: Path) -> dict:
    """Export `graph` (a module or a converted PT2E graph) at batch 1 and lower it to XNNPACK."""
    import torch

    lower, partitioner = _lowering()
    program = torch.export.export(graph, (example[:1],))
    edge = lower(program, partitioner=[partitioner()])
    delegated, portable = _delegation(edge)
    path.write_bytes(edge.to_executorch().buffer)
    from edgemed.versions import library_versions

    return {"exporter": "torch.export → executorch.exir (XNNPACK delegate)", "batch": 1,
            "xnnpack": {"delegated_calls": delegated, "portable_ops": portable},
            "executorch": library_versions().get("executorch")}


def export(model, example, folder: Path, precision: str, *, static_batch: bool = True,
           layout: str = "NCHW") -> ExportedFiles:
    """Always batch 1 (`static_batch` is accepted for the common signature)."""
    path = folder / f"model_{precision}.pte"
    details = write_program(model.eval(), example, path)
    return ExportedFiles([path], static_batch=1, details={**details, "compute": "fp32"})


def _delegation(edge) -> tuple[int, dict[str, int]]:
    """(XNNPACK subgraphs, {op: count} of the ops left outside them) in the lowered program: work
    outside XNNPACK runs on ExecuTorch's portable kernels, which are far slower."""
    graph = edge.exported_program().graph
    calls = [n for n in graph.nodes if n.op == "call_function"]
    delegated = sum(1 for n in calls if "executorch_call_delegate" in str(n.target))
    portable: dict[str, int] = {}
    for n in calls:
        name = str(n.target)
        if "executorch_call_delegate" not in name and "getitem" not in name:
            op = getattr(n.target, "__name__", name)
            portable[op] = portable.get(op, 0) + 1
    return delegated, portable

