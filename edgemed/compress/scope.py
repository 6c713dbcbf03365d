"""Layer scopes across formats, and per-layer quantization sensitivity.

Users name layers by their PyTorch module path (`stages.3.0.pwconv1`, patterns like `stages.3.*`,
`classifier`); each backend maps those names to its own nodes: OpenVINO friendly names carry
`__module.<path>/`, ONNX nodes from the torch exporter carry their module path in the
`pkg.torch.onnx.name_scopes` metadata, and PT2E graphs keep `nn_module_stack`.
"""

from __future__ import annotations

import fnmatch
import re

import numpy as np

from edgemed.errors import EdgemedError

QUANTIZABLE = ("Conv2d", "Linear")


def quantizable_layers(model) -> list[str]:
    """Module paths of the layers INT8 quantization acts on (convolutions and linear layers)."""
    return [name for name, m in model.named_modules() if type(m).__name__ in QUANTIZABLE and name]


def resolve(model, patterns: list[str] | None) -> list[str]:
    """Layer names matching glob patterns (`stages.3.*`); a pattern matching nothing is an error."""
    if not patterns:
        return []
    layers = quantizable_layers(model)
    chosen: list[str] = []
    for pattern in patterns:
        hits = [n for n in layers if fnmatch.fnmatchcase(n, pattern) or n.startswith(pattern + ".")]
        if not hits:
            raise EdgemedError(f"--ignore {pattern!r} matches no quantizable layer; layers look like "
                               f"{', '.join(layers[:4])}, … (run with --sensitivity to list them ranked)")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def openvino_patterns(layers: list[str]) -> list[str]:
    """NNCF IgnoredScope patterns for the OpenVINO nodes of these torch modules."""
    return [re.escape(f"__module.{name}/") + ".*" for name in layers]


def onnx_module_of(node, fused: dict[str, str] | None = None) -> str | None:
    """The torch module an ONNX node came from. The exporter's optimizer folds BatchNorm into the
    conv before it and the fused Conv keeps the BatchNorm's scope; `fused` ({bn: conv}, from
    `conv_bn_pairs`) maps it back to the conv."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip().strip("'\"") for s in prop.value.strip("[]").split(",")]
            module = scopes[-2] if len(scopes) >= 2 else None
            if fused and node.op_type == "Conv" and module in fused:
                return fused[module]
            return module
    return None


def onnx_node_names(model_proto, layers: list[str], fused: dict[str, str] | None = None) -> list[str]:
    """Names of the ONNX nodes produced by these torch modules."""
    wanted = set(layers)
    return [n.name for n in model_proto.graph.node if onnx_module_of(n, fused) in wanted]


def conv_bn_pairs(model, example) -> dict[str, str]:
    """{BatchNorm module: the conv module whose output it normalizes}, found by running `example`."""
    import torch

    outputs: dict[int, str] = {}
    pairs: dict[str, str] = {}
    handles = []
    for name, m in model.named_modules():
        kind = type(m).__name__
        if kind == "Conv2d":
            handles.append(m.register_forward_hook(lambda _, __, out, n=name: outputs.__setitem__(id(out), n)))
        elif kind.startswith("BatchNorm"):
            handles.append(m.register_forward_pre_hook(
                lambda _, inp, n=name: pairs.__setitem__(n, outputs[id(inp[0])]) if id(inp[0]) in outputs else None))
    try:
        with torch.inference_mode():
            model.eval()(example)
    finally:
        for h in handles:
            h.remove()
    return pairs


def module_of_backend_node(name: str) -> str:
    """A torch module path from an OpenVINO node name (`__module.a.b/aten::x/Conv`)."""
    m = re.match(r"__module\.([^/]+)/", name)
    return m.group(1) if m else name


def _execution_order(model, x) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(start, end, calls) of every module in one forward of `x`: event counters of its pre- and
    post-hooks, and how often it ran."""
    import torch

    start: dict[str, int] = {}
    end: dict[str, int] = {}
    calls: dict[str, int] = {}
    step = [0]

    def started(_, __, n):  # hooks must return None: a value would replace the module's input/output
        step[0] += 1
        start.setdefault(n, step[0])

    def ended(_, __, ___, n):
        step[0] += 1
        end[n] = step[0]
        calls[n] = calls.get(n, 0) + 1

    handles = []
    for name, m in model.named_modules():
        if name:
            handles.append(m.register_forward_pre_hook(lambda mod, inp, n=name: started(mod, inp, n)))
            handles.append(m.register_forward_hook(lambda mod, inp, y, n=name: ended(mod, inp, y, n)))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return start, end, calls


def prefix_modules(model, x, layers: list[str]) -> dict[str, list[str]]:
    """For each layer, the outermost modules that finish before it starts (run once per forward,
    containers or top-level): their outputs do not depend on quantizing that layer, so a
    one-layer-at-a-time pass can replay them from the FP32 forward instead of computing them."""
    start, end, calls = _execution_order(model, x)
    has_children = {name for name, m in model.named_modules() if name and any(True for _ in m.children())}
    eligible = [n for n in end if calls[n] == 1 and (n in has_children or "." not in n)]
    out = {}
    for layer in layers:
        if layer not in start:
            out[layer] = []
            continue
        done = {n for n in eligible if end[n] < start[layer]}
        out[layer] = [n for n in done if not any(n.startswith(p + ".") for p in done)]
    return out


def layer_sensitivity(model, calibration: np.ndarray, evaluation: np.ndarray, layers: list[str] | None = None,
                      progress=None, reuse_prefix: bool = True) -> list[dict]:
    """Quantize one layer at a time in PyTorch (INT8 per-channel symmetric weights, INT8 per-tensor
    input activations with ranges from the calibration set) and measure the error each adds to
    the logits on `evaluation` images: KL(FP32 ‖ one-layer-INT8), max |Δlogit| and top-1 flips.
    Sorted worst first. Format-independent, so it ranks layers for every backend.

    With `reuse_prefix`, the blocks that run before the quantized layer are replayed from the FP32
    forward rather than recomputed (same numbers; about half the compute of the pass)."""
    import torch
    import torch.nn.functional as F

    model = model.eval()
    modules = dict(model.named_modules())
    layers = layers or quantizable_layers(model)
    ranges: dict[str, list[float]] = {}

    def record(name):
        def hook(_, inputs):
            x = inputs[0].detach()
            lo, hi = float(x.min()), float(x.max())
            r = ranges.setdefault(name, [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)
        return hook

    handles = [modules[n].register_forward_pre_hook(record(n)) for n in layers]
    with torch.inference_mode():
        for i in range(0, len(calibration), 64):
            model(torch.from_numpy(calibration[i:i + 64]))
    for h in handles:
        h.remove()
    xe = torch.from_numpy(evaluation)
    chunks = [xe[i:i + 32] for i in range(0, len(xe), 32)]  # all images at 224² in one batch took gigabytes
    prefixes = prefix_modules(model, chunks[0][:1], layers) if reuse_prefix else {n: [] for n in layers}
    replayable = sorted({m for ms in prefixes.values() for m in ms})
    saved: dict[str, list] = {n: [] for n in replayable}

    def logits(replay=()):
        current = [0]
        for n in replay:  # an instance attribute shadows the class's forward for this module only
            modules[n].forward = lambda *_, n=n, **__: saved[n][current[0]].clone()
        try:
            with torch.inference_mode():
                out = []
                for i, chunk in enumerate(chunks):
                    current[0] = i
                    out.append(model(chunk))
                return torch.cat(out)
        finally:
            for n in replay:
                del modules[n].forward

    not_tensor: set[str] = set()

    def save(name, y):
        if isinstance(y, torch.Tensor):
            saved[name].append(y.detach().clone())
        else:  # tuples/dicts out: computed as usual
            not_tensor.add(name)

    keep = [modules[n].register_forward_hook(lambda _, __, y, n=n: save(n, y)) for n in replayable]  # save → None
    try:
        ref = logits()
    finally:
        for h in keep:
            h.remove()
    prefixes = {layer: [m for m in ms if m not in not_tensor] for layer, ms in prefixes.items()}
    ref_logp = F.log_softmax(ref, 1)
    out = []
    for name in layers:
        m = modules[name]
        lo, hi = ranges.get(name, [0.0, 0.0])
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zero = int(round(-128 - lo / scale))
        w = m.weight.data
        wmax = w.abs().reshape(w.shape[0], -1).amax(1).clamp_min(1e-8)
        wq = torch.fake_quantize_per_channel_affine(w, wmax / 127.0, torch.zeros(w.shape[0], dtype=torch.int32), 0, -127, 127)
        hook = m.register_forward_pre_hook(
            lambda _, inp, s=scale, z=zero: (torch.fake_quantize_per_tensor_affine(inp[0], s, z, -128, 127),))
        original = m.weight.data
        m.weight.data = wq
        try:
            q = logits(prefixes[name])
        finally:
            m.weight.data = original
            hook.remove()
        kl = float(F.kl_div(F.log_softmax(q, 1), ref_logp, log_target=True, reduction="batchmean"))
        out.append({"layer": name, "type": type(m).__name__, "kl": max(kl, 0.0),
                    "max_abs_logit_diff": float((q - ref).abs().max()),
                    "flips": int((q.argmax(1) != ref.argmax(1)).sum()), "n": int(len(xe))})
        if progress:
            progress()
    return sorted(out, key=lambda r: (r["flips"], r["kl"]), reverse=True)


def suggest_ignore(ranking: list[dict], top: int = 3) -> list[str]:
    """Layers worth keeping in float: the top of the ranking, if they add measurable error."""
    if not ranking:
        return []
    worst = ranking[0]["kl"]
    # only layers that flip predictions or add clearly measurable error are worth the float cost
    return [r["layer"] for r in ranking[:top] if r["flips"] > 0 or (r["kl"] > 0.1 * worst and r["kl"] > 1e-4)]
