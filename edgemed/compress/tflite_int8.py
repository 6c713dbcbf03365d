"""Static INT8 TFLite (int8 weights and activations) that XNNPACK runs faster than FP32.

What made INT8 slow, measured on the zoo (benchmarks/tflite_int8.py, results/tflite_int8.md):

1. XNNPACK has no fast depth-wise kernel above 25 taps. A 7×7 depth-wise conv (ConvNeXt's
   `dwconv`, MedNeXt's 7×7 branch) takes a slow path, ~15–20× slower than a 5×5 one, that does
   not use a second thread, in FP32 *and* INT8 (INT8 is even a little slower). It is the largest
   single cost of the FP32 graph, so quantization could never give much.
2. ai-edge-quantizer's `static_wi8_ai8` quantizes every op. XNNPACK then refuses INT8 RSQRT,
   GELU, SQUARED_DIFFERENCE and ADD/SUB whose input/output scales are too far apart (LayerNorm's
   `var + eps`, a residual add while the layer scale is tiny): for convnext_med at 224 that is 66
   ops (85 with the 1e-6 layer-scale init) left to TFLite's built-in kernels, cutting the graph
   into as many XNNPACK partitions. The INT8 LayerNorm (a variance in 8 bits) also costs accuracy.

So the default route (`conv`) does two things:
- lowers every depth-wise conv of more than 25 taps as a sum of ≤ 25-tap depth-wise convs with
  the same weights (`split_large_depthwise`: 7×7 = 5×5 centre + rows ±3 as a 2×7 conv dilated 6 +
  columns ±3 as a 5×2 conv dilated 6), the same function up to float rounding (~1e-6);
- quantizes only CONV_2D (the 1×1 and other dense convolutions, where nearly all MACs are):
  static INT8, per-channel symmetric weights, per-tensor asymmetric activations (moving-average
  min/max over the calibration images). LayerNorm, GELU, depth-wise convs, the SE/classifier
  head and residual adds stay float, so XNNPACK delegates the whole graph (one partition), with
  QUANTIZE/DEQUANTIZE around each INT8 conv.

Routes (`ROUTES`, the first is the default):
- `conv`    INT8 CONV_2D only (above).
- `conv_fc` also FULLY_CONNECTED (linear layers). Costs accuracy on the classifier for ~no speed
            on the zoo; for models with large linear layers.
- `all`     ai-edge-quantizer's `static_wi8_ai8` on every supported op: the slow, less accurate
            baseline, kept for comparison (no depth-wise split unless asked for).
The PT2E route of litert-torch (PT2EQuantizer → convert with a QuantConfig) was measured and is
not offered: on convnext_med its layout pass fails on the channel LayerNorm once Q/DQ nodes are
present; on MedNeXt it converts but leaves 40 TRANSPOSE ops and agrees less with PyTorch.

Layer names: the PyTorch module path of each convolution / linear layer (`stages.2.3.pwconv1`,
as `model.named_modules()` gives it), the same names as `edgemed.compress.scope`. `keep_float`
takes those names or patterns with the same rules as `scope.resolve`: a shell-style glob
(`stages.3.*`) or a module prefix (`stages.3` covers everything under it). Every pattern must
match a module of the model; a matched module that the route does not quantize anyway (a
depth-wise conv under `conv`) is simply float. They are found in the TFLite graph through the
module hierarchy litert-torch writes into tensor names (`…/ConvNeXtBlock_3/…Conv2d_pwconv1`).

I/O: float32 NCHW in, float32 logits out (batch 1), like the FP32 artifact, for `conv` and
`conv_fc`; `all` makes them INT8 too (`details["io"]` gives scale and zero point; edgemed's LiteRT
session converts).

Example:
    details = quantize_tflite(model, calib_x, Path("model_int8.tflite"), keep_float=["classifier"])
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from edgemed.compress.int8 import Int8Files, Int8Job
from edgemed.errors import EdgemedError, ExportError, missing_extra

ROUTES = ("conv", "conv_fc", "all")
DEFAULT_ROUTE = ROUTES[0]
MIN_CALIBRATION = 32  # fewer images give unstable activation ranges
from edgemed.export.tflite import XNNPACK_DW_MAX_TAPS, split_large_depthwise  # noqa: E402,F401

PARITY_IMAGES = 32  # calibration images run through the result as a smoke check

_ROUTE_OPS = {"conv": ("CONV_2D",), "conv_fc": ("CONV_2D", "FULLY_CONNECTED"), "all": ("*",)}
_FLOAT_TYPES = {"FLOAT32", "FLOAT16"}


# ---------------------------------------------------------------------------------------------
# Public API


def quantize_tflite(model, calibration: np.ndarray, out_path: Path, *, route: str = DEFAULT_ROUTE,
                    keep_float: list[str] | None = None, fp32_path: Path | None = None,
                    split_depthwise: bool | None = None, force: bool = True) -> dict:
    """Write a static INT8 TFLite of `model` (batch 1, NCHW input; float32 I/O except route `all`).

    Args:
        model: torch module in eval mode (FP32, possibly channel-pruned), NCHW float input.
        calibration: float32 NCHW preprocessed images (≥ 32), e.g. `CalibrationSet.x`.
        out_path: the INT8 .tflite to write (temp file + rename).
        route: one of `ROUTES` (see the module docstring); default `conv`.
        keep_float: module names or patterns (`stages.3.*`) whose ops stay float.
        fp32_path: an FP32 .tflite of this same model to start from. Used as is unless it holds
            depth-wise convs XNNPACK runs slowly and `split_depthwise` is on; then the model is
            converted again with them split (`details["fp32_source"]` says which).
        split_depthwise: lower > 25-tap depth-wise convs as sums of small ones (same weights).
            Default: on for `conv`/`conv_fc` (their depth-wise convs stay float); off for `all`,
            whose INT8 dilated depth-wise convs XNNPACK can fail to prepare on small maps.
        force: replace an existing `out_path` (default: yes: this is a library step inside a bundle
            build, whose accuracy-control loop rewrites the file; the CLI checks --force itself).

    Returns: details for the bundle manifest: route, recipe, quantized and float layers, op
    counts, XNNPACK delegation, calibration summary, parity on calibration images, versions.
    """
    import torch

    _require()
    if route not in ROUTES:
        raise EdgemedError(f"unknown TFLite INT8 route {route!r}: use one of {', '.join(ROUTES)}")
    if not isinstance(model, torch.nn.Module):
        raise EdgemedError(f"quantize_tflite needs a torch nn.Module, got {type(model).__name__}")
    x = check_calibration(calibration)
    model = model.eval()
    _check_fits(model, x)
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise EdgemedError(f"{out_path} already exists: choose another output or pass force=True to replace it")
    kept_modules = resolve_keep_float(model, keep_float)
    if split_depthwise is None:
        split_depthwise = route != "all"

    with tempfile.TemporaryDirectory(prefix="edgemed_tflite_int8_") as tmp:
        fp32, fp32_source, split, converted = _fp32_model(model, x, fp32_path, Path(tmp), split_depthwise)
        plan = _plan(converted, fp32, route, kept_modules)
        if route != "all" and plan["int8_ops"] == 0:
            why = "keep_float leaves all of them float" if plan["float_layers"] else "the model has none"
            raise EdgemedError(f"route {route!r} quantizes {' and '.join(_ROUTE_OPS[route])} ops, but {why}: "
                               f"nothing would be INT8 (try route 'conv_fc' or 'all', or keep fewer layers float)")
        _quantize(fp32, x, out_path, plan["recipe_manager"])
    dtypes = _layer_dtypes(out_path, converted)
    wrong = [n for n in kept_modules if dtypes.get(n) == "int8"]
    if wrong:
        raise ExportError(f"keep_float layers came out INT8 in {out_path.name}: {', '.join(wrong[:5])}; "
                          "quantize TFLite without --ignore, or leave tflite out of --formats")
    parity = _parity(model, out_path, x[:PARITY_IMAGES])
    summary = op_summary(out_path)
    from edgemed.versions import library_versions

    versions = library_versions()
    return {
        "route": route,
        "tool": "ai-edge-quantizer static INT8 (min/max, moving average over calibration images)",
        "weights": "int8 per-channel symmetric", "activations": "int8 per-tensor asymmetric",
        "io": _io(out_path),
        "quantized_op_types": list(_ROUTE_OPS[route]) if route != "all" else ["all supported"],
        "recipe": _jsonable(plan["recipe_manager"].get_quantization_recipe()),
        "quantized_layers": [n for n, d in dtypes.items() if d == "int8"],
        "float_layers": plan["float_layers"],
        "keep_float": list(keep_float or []),
        "keep_float_modules": kept_modules,
        "unmapped_ops": plan["unmapped_ops"],
        "split_depthwise": split,
        "fp32_source": fp32_source,
        "ops": summary,
        "xnnpack": xnnpack_delegation(out_path),
        "calibration": {"images": int(len(x)), "shape": list(x.shape),
                        "sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
                        "mean": float(x.mean()), "std": float(x.std())},
        "calibration_parity": parity,
        "versions": {k: versions[k] for k in ("litert-torch", "ai-edge-quantizer", "ai-edge-litert", "torch")
                     if k in versions},
    }


def quantizable_layers(model_or_path, route: str = DEFAULT_ROUTE) -> list[str]:
    """Module names `route` turns INT8, in the naming `keep_float` takes (for sensitivity
    analysis): dense convolutions (groups 1, more than one input channel) for `conv`; plus
    linear layers for `conv_fc`; every convolution and linear layer for `all`. `model_or_path`
    is a torch module or a checkpoint (.safetensors)."""
    from torch import nn

    if route not in ROUTES:
        raise EdgemedError(f"unknown TFLite INT8 route {route!r}: use one of {', '.join(ROUTES)}")
    model = model_or_path
    if isinstance(model_or_path, (str, Path)):
        from edgemed.checkpoint import load_checkpoint
        from edgemed.models import deploy_form

        model = deploy_form(load_checkpoint(model_or_path)[1])
    names = []
    for name, m in model.named_modules():
        if not name:
            continue
        if isinstance(m, nn.Conv2d) and (route == "all" or (m.groups == 1 and m.in_channels > 1)):
            names.append(name)  # a 1-input-channel conv becomes DEPTHWISE_CONV_2D in TFLite
        elif isinstance(m, nn.Linear) and route in ("conv_fc", "all"):
            names.append(name)
    return names


def resolve_keep_float(model, patterns: list[str] | None) -> list[str]:
    """Module names matched by `keep_float` patterns (glob or module prefix, as in
    `edgemed.compress.scope`); a pattern that matches no module is an error."""
    if not patterns:
        return []
    if isinstance(patterns, str):
        raise EdgemedError("keep_float must be a list of module names or patterns, not one string")
    modules = [n for n, _ in model.named_modules() if n]
    chosen: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise EdgemedError(f"keep_float entries must be non-empty module names or patterns, got {pattern!r}")
        hits = [n for n in modules if n == pattern or fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".")]
        if not hits:
            raise EdgemedError(f"keep_float {pattern!r} matches no module of the model; layers look like "
                               f"{', '.join(quantizable_layers(model)[:4])}, …")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def check_calibration(calibration) -> np.ndarray:
    """The calibration batch as contiguous float32 NCHW, or an EdgemedError saying what is wrong."""
    if not isinstance(calibration, np.ndarray):
        raise EdgemedError(f"calibration must be a numpy array of preprocessed NCHW images, got {type(calibration).__name__}")
    if calibration.ndim != 4:
        raise EdgemedError(f"calibration must be a 4-D NCHW batch (N, C, H, W), got shape {calibration.shape}")
    if not np.issubdtype(calibration.dtype, np.floating):
        raise EdgemedError(f"calibration must be float images preprocessed with the model's PreprocessSpec "
                           f"(spec.normalize), got {calibration.dtype}")
    if len(calibration) < MIN_CALIBRATION:
        raise EdgemedError(f"calibration has {len(calibration)} images; static INT8 needs at least "
                           f"{MIN_CALIBRATION} for stable activation ranges: pass more calibration images")
    if not np.isfinite(calibration).all():
        bad = int((~np.isfinite(calibration)).reshape(len(calibration), -1).any(1).sum())
        raise EdgemedError(f"calibration has NaN or infinite values in {bad} image(s): check the preprocessing")
    return np.ascontiguousarray(calibration, dtype=np.float32)


def convert_fp32(model, example, path: Path, *, split_depthwise: bool = True) -> list[str]:
    """FP32 TFLite of `model` for batch-1 `example` (NCHW) via litert-torch, with large depth-wise
    convs split for XNNPACK. Returns the names of the convs split."""
    import torch

    from edgemed.export import tflite

    x = example[:1] if isinstance(example, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(example[:1]))
    try:
        return tflite.convert(model, x, Path(path), split_depthwise=split_depthwise)
    except EdgemedError:
        raise
    except Exception as e:  # the converter raises many types; name the op when it says which
        from edgemed.export.base import describe_failure

        raise ExportError(f"{describe_failure('TFLite', e)}; leave tflite out of --formats") from e


def op_summary(path: Path) -> dict[str, dict[str, int]]:
    """Op type → {"int8": n, "float": n, …} by the type of each op's first output tensor."""
    model, graph, names = _read_flatbuffer(path)
    out: dict[str, Counter] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = names(op)
        t = graph.Tensors(op.Outputs(0)) if op.OutputsLength() else None
        dtype = _tensor_type(t.Type()) if t is not None else "NONE"
        dtype = "float" if dtype in _FLOAT_TYPES else dtype.lower()
        out.setdefault(kind, Counter())[dtype] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def xnnpack_delegation(path: Path, threads: int = 1) -> dict | None:
    """How XNNPACK partitions the model: number of delegate partitions and the op types left to
    TFLite's own kernels (each one splits the graph). None where the interpreter cannot say."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        from edgemed.fileio import quiet_native

        with quiet_native():
            it = Interpreter(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
        ops = it._get_ops_details()  # private but stable: original nodes + DELEGATE nodes
    except Exception:  # noqa: BLE001 - a diagnostic; never fail the quantization over it
        return None
    orig = [o for o in ops if o["op_name"] != "DELEGATE"]
    dele = [o for o in ops if o["op_name"] == "DELEGATE"]
    d_in = {t for o in dele for t in o["inputs"]}
    d_out = {t for o in dele for t in o["outputs"]}
    consumers: dict[int, list[int]] = {}
    for o in orig:
        for t in o["inputs"]:
            consumers.setdefault(t, []).append(o["index"])
    graph_out = {d["index"] for d in it.get_output_details()}
    delegated: dict[int, bool] = {}
    for o in reversed(orig):  # reverse topological order: consumers are decided first
        t = o["outputs"][0] if o["outputs"] else -1
        if t in d_out:
            delegated[o["index"]] = True
        elif t in d_in or t in graph_out:
            delegated[o["index"]] = False
        else:  # internal to a partition only if every consumer is delegated
            delegated[o["index"]] = all(delegated.get(c, True) for c in consumers.get(t, []))
    left = Counter(o["op_name"] for o in orig if not delegated[o["index"]])
    return {"ops": len(orig), "partitions": len(dele), "ops_not_delegated": sum(left.values()),
            "not_delegated_by_type": dict(left.most_common())}


def layer_dtypes(path: Path, model, *, split_depthwise: bool = True) -> dict[str, str]:
    """Module name → "int8" or "float" for each conv / linear op of a TFLite file converted from
    `model` (read from the flatbuffer: the type of the op's output). `split_depthwise` must match
    how the file was converted (it renames the split depth-wise convs' class)."""
    if split_depthwise:
        model, _ = split_large_depthwise(model)
    return _layer_dtypes(path, model)


def _layer_dtypes(path: Path, model) -> dict[str, str]:
    by_hier = _layers_by_hierarchy(model, _module_hierarchy(model))
    _, graph, kind = _read_flatbuffer(path)
    out: dict[str, str] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if kind(op) not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") or not op.OutputsLength():
            continue
        t = graph.Tensors(op.Outputs(0))
        weights = [graph.Tensors(op.Inputs(j)).Name().decode() for j in (1, 2)
                   if j < op.InputsLength() and op.Inputs(j) >= 0]
        layer = _layer_of(t.Name().decode().split(";"), weights, by_hier)
        if layer is not None:
            dtype = "float" if _tensor_type(t.Type()) in _FLOAT_TYPES else _tensor_type(t.Type()).lower()
            out[layer] = dtype if out.get(layer, dtype) == dtype else "mixed"
    return out


# ---------------------------------------------------------------------------------------------
# Internals


def _require() -> None:
    for module, package in (("litert_torch", "litert-torch"), ("ai_edge_quantizer", "ai-edge-quantizer"),
                            ("ai_edge_litert", "ai-edge-litert")):
        try:
            __import__(module)
        except ImportError:
            raise missing_extra(package, "tflite") from None


def _check_fits(model, x: np.ndarray) -> None:
    import torch

    try:
        with torch.inference_mode():
            y = model(torch.from_numpy(x[:1]))
    except Exception as e:  # noqa: BLE001 - any failure here means the shape does not fit
        raise EdgemedError(f"calibration images of shape {tuple(x.shape[1:])} (C, H, W) do not fit the model: "
                           f"{str(e).splitlines()[0][:200]}") from None
    if not isinstance(y, torch.Tensor) or y.ndim != 2:
        raise EdgemedError("the model must return logits of shape (N, classes): make its forward return one "
                           "row of class scores per image")


def _read_flatbuffer(path: Path):
    from ai_edge_litert import schema_py_generated as schema

    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    codes = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

    def name(op) -> str:
        oc = model.OperatorCodes(op.OpcodeIndex())
        return codes.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "CUSTOM")

    return model, graph, name


@functools.cache
def _tensor_types() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def _tensor_type(code: int) -> str:
    return _tensor_types().get(code, str(code))


def _large_depthwise_ops(path: Path) -> int:
    _, graph, name = _read_flatbuffer(path)
    n = 0
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        if name(op) == "DEPTHWISE_CONV_2D":
            shape = graph.Tensors(op.Inputs(1)).ShapeAsNumpy()  # (1, kh, kw, C)
            if len(shape) == 4 and int(shape[1]) * int(shape[2]) > XNNPACK_DW_MAX_TAPS:
                n += 1
    return n


def _fp32_model(model, x, fp32_path, tmp: Path, split_depthwise: bool):
    """(FP32 .tflite to quantize, where it came from, convs split, the module it was converted
    from: its class names are the ones in the TFLite tensor names)."""
    if fp32_path is not None:
        fp32_path = Path(fp32_path)
        if not fp32_path.is_file():
            raise EdgemedError(f"fp32_path {fp32_path} does not exist: check the path, or leave fp32_path out "
                               "to convert the model here")
        _check_input_shape(fp32_path, x)
        large = _large_depthwise_ops(fp32_path)
        if not (large and split_depthwise):
            # a file without large kernels from a model with some was converted split: its tensor
            # names carry the split class, so name layers from a split copy
            named, was_split = (model, []) if large else split_large_depthwise(model)
            return fp32_path, f"given: {fp32_path.name}", [], named if was_split else model
        source = (f"converted again: {fp32_path.name} has {large} depth-wise conv(s) of more than "
                  f"{XNNPACK_DW_MAX_TAPS} taps, which XNNPACK runs slowly")
    else:
        source = "converted with litert-torch"
    path = tmp / "model_fp32.tflite"
    converted, split = split_large_depthwise(model) if split_depthwise else (model, [])
    convert_fp32(converted, x[:1], path, split_depthwise=False)
    return path, source, split, converted


def _check_input_shape(path: Path, x: np.ndarray) -> None:
    _, graph, _ = _read_flatbuffer(path)
    shape = tuple(int(s) for s in graph.Tensors(graph.Inputs(0)).ShapeAsNumpy())
    if shape[1:] != tuple(x.shape[1:]):
        raise EdgemedError(f"fp32_path takes input {shape}, but calibration images are {tuple(x.shape[1:])}: "
                           "it is not this model's FP32 TFLite (or it has NHWC input; pass an NCHW one)")


def _module_hierarchy(model) -> dict[str, str]:
    """Module name → the hierarchy string litert-torch writes into tensor names: class full name
    plus `_<last name part>` of each module on the call path (ModuleList/ModuleDict are not
    called, so they do not appear)."""
    from torch import nn

    def cls(m) -> str:
        t = type(m)
        return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"

    out = {"": cls(model)}
    modules = dict(model.named_modules())
    for name in modules:
        if not name:
            continue
        parts, chain = name.split("."), [cls(model)]
        for i in range(1, len(parts) + 1):
            m = modules[".".join(parts[:i])]
            if not isinstance(m, (nn.ModuleList, nn.ModuleDict)):
                chain.append(f"{cls(m)}_{parts[i - 1]}")
        out[name] = "/".join(chain)
    return out


def _plan(model, fp32: Path, route: str, kept: list[str]) -> dict:
    """The ai-edge-quantizer recipe for `route` with the kept modules' ops set to float, and
    which torch layers end up INT8. `model` is the module `fp32` was converted from."""
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfu

    hier = _module_hierarchy(model)
    by_hier = _layers_by_hierarchy(model, hier)
    kept_set = set(kept)
    owners = Counter(hier.values())
    # a kept module's other ops (LayerNorm, GELU… under route `all`) are found by its hierarchy
    # prefix, only where no module outside keep_float shares that string (stages.0 vs downsamples.0)
    kept_hier = [h for h in {hier[n] for n in kept} if owners[h] == sum(hier[n] == h for n in kept_set)]

    fb = tfu.read_model(str(fp32))
    graph = fb.subgraphs[0]
    op_types = _ROUTE_OPS[route]
    rm = recipe_manager.RecipeManager()
    for op_type in op_types:
        name = qtyping.TFLOperationName.ALL_SUPPORTED if op_type == "*" else qtyping.TFLOperationName(op_type)
        rm.add_static_config(regex=".*", operation_name=name, activation_num_bits=8, weight_num_bits=8,
                             weight_granularity=qtyping.QuantGranularity.CHANNELWISE)
    quantized, floated, unmapped, int8_ops = [], [], [], 0
    for op in graph.operators:
        code = fb.operatorCodes[op.opcodeIndex]
        kind = tfu.TFL_OP_CODE_TO_NAME.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        if kind is None or (op_types != ("*",) and kind not in op_types):
            continue
        scope = tfu.get_op_scope(op, graph.tensors)
        weights = [tfu.get_tensor_name(graph.tensors[i]) for i in op.inputs[1:3] if i >= 0]
        layer = _layer_of(scope.split(";"), weights, by_hier)
        parts = set(scope.split(";")).union(*(w.split(";") for w in weights))
        keep = (layer in kept_set) or any(p == h or p.startswith(h + "/") for p in parts for h in kept_hier)
        if keep:
            operation = kind if op_types != ("*",) else qtyping.TFLOperationName.ALL_SUPPORTED
            rm.add_quantization_config(regex="^" + re.escape(scope) + "$",
                                       operation_name=qtyping.TFLOperationName(operation),
                                       algorithm_key=AlgorithmName.NO_QUANTIZE)
        int8_ops += not keep
        if layer is None:
            if kind in ("CONV_2D", "FULLY_CONNECTED"):
                unmapped.append(scope[:200])
            continue
        (floated if keep else quantized).append(layer)
    quantized = [n for n in dict.fromkeys(quantized) if n not in floated]
    return {"recipe_manager": rm, "quantized_layers": quantized, "float_layers": list(dict.fromkeys(floated)),
            "unmapped_ops": unmapped, "int8_ops": int8_ops}


def _layers_by_hierarchy(model, hier: dict[str, str]) -> dict[str, str]:
    """Hierarchy string → name, for convolutions and linear layers."""
    from torch import nn

    modules = dict(model.named_modules())
    out: dict[str, str] = {}
    for name, h in hier.items():
        if name and isinstance(modules[name], (nn.Conv2d, nn.Linear)):
            out.setdefault(h, name)
    return out


def _layer_of(output_parts: list[str], weight_names: list[str], by_hier: dict[str, str]) -> str | None:
    """The conv/linear module an op comes from: by its output tensor name (litert-torch joins the
    names of fused ops with ';'), else by its weight/bias tensor names (the graph's last op has
    its output named after the signature instead)."""
    for part in output_parts:
        if part in by_hier:
            return by_hier[part]
    for name in weight_names:
        for part in name.split(";"):
            if part in by_hier:
                return by_hier[part]
    return None


def _quantize(fp32: Path, x: np.ndarray, out_path: Path, rm) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer

    from edgemed.fileio import atomic_path, quiet_native

    with quiet_native():
        it = Interpreter(model_path=str(fp32))
    signatures = it.get_signature_list()
    key = next(iter(signatures))
    input_name = signatures[key]["inputs"][0]
    samples = [{input_name: x[i:i + 1]} for i in range(len(x))]
    import warnings

    try:
        with quiet_native(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "preserve_all_tensors is for debugging" during calibration
            q = quantizer.Quantizer(str(fp32))
            q.load_quantization_recipe(rm.get_quantization_recipe())
            qsv = q.calibrate({key: samples}, num_threads=os.cpu_count() or 1) if q.need_calibration else None
            result = q.quantize(qsv)
            with atomic_path(out_path) as tmp:
                result.export_model(str(tmp), overwrite=True)
    except Exception as e:  # noqa: BLE001 - name the failing step; the cause stays chained
        raise ExportError(f"ai-edge-quantizer failed ({e.__class__.__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}): "
                          "keep the failing layers float with --ignore, or leave tflite out of --formats") from e


def _parity(model, path: Path, x: np.ndarray) -> dict:
    """Logits of the INT8 file vs the torch model on a few calibration images (a smoke check:
    accuracy is judged on validation images by the caller)."""
    import torch

    from edgemed.export.parity import compare
    from edgemed.runtime.litert import LiteRTSession

    try:
        session = LiteRTSession(str(path), threads=os.cpu_count() or 1)
        got = session.run(x)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f"the INT8 TFLite does not run in LiteRT: {str(e).splitlines()[0][:300]}; leave tflite "
                          "out of --formats, or keep more layers float with --ignore") from e
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    p = compare(ref, got)
    return {k: p[k] for k in ("n", "max_abs_diff", "mean_abs_diff", "top1_agreement")}


def _io(path: Path) -> dict:
    """Input/output dtypes (and scale, zero point where INT8): route `all` quantizes them too;
    edgemed's LiteRT session quantizes inputs and dequantizes outputs from these."""
    _, graph, _ = _read_flatbuffer(path)
    out = {}
    for key, index in (("input", graph.Inputs(0)), ("output", graph.Outputs(0))):
        t = graph.Tensors(index)
        entry = {"dtype": _tensor_type(t.Type()).lower(), "shape": [int(v) for v in t.ShapeAsNumpy()]}
        q = t.Quantization()
        if q is not None and q.ScaleLength():
            entry.update(scale=float(q.Scale(0)), zero_point=int(q.ZeroPoint(0)))
        out[key] = entry
    return out


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, default=lambda o: getattr(o, "value", str(o))))


def quantize(job: Int8Job) -> Int8Files:
    """Routes conv / conv_fc / all for TFLite (edgemed/compress/int8.py's interface)."""

    path = job.folder / "model_int8.tflite"
    details = quantize_tflite(job.model, job.calibration, path, route=job.route, keep_float=job.keep_float or None,
                              fp32_path=job.fp32_file)
    return Int8Files([path], {"route": job.route, **details, "ignored_layers": list(job.keep_float),
                              "calibration_images": int(len(job.calibration))})


route_layers = quantizable_layers  # what compress/int8.py asks a route module for
