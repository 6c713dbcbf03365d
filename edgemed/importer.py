"""`edgemed import`: a classifier trained elsewhere becomes an ordinary edgemed checkpoint.

The architecture is a zoo name or the user's own factory (`path/to/net.py:build`,
`package.module:build`, e.g. `monai.networks.nets:DenseNet121` with `spatial_dims=2`); the weights
are a `.safetensors` file or a `.pt/.pth/.ckpt/.bin` file read with
`torch.load(weights_only=True)` only (never unpickling code), in the layouts real training code
writes: a bare state dict, one nested under `state_dict` / `model` / `model_state_dict` (or a key
you name), with `module.` (DataParallel/DDP) or `model.` (Lightning) prefixes. What the weights
cannot say (class names, input size and channels, normalisation, resize rule, data set) comes
from flags, a YAML/JSON sidecar, or a MONAI bundle's `configs/metadata.json`.

Nothing is written until the import is checked: the model builds, every weight fits (missing /
unexpected / misshaped keys are listed by name), weights are finite, a forward pass at the
declared input shape gives one finite score per class, and `torch.export` is tried (a failure is
reported with the op it names; ONNX/OpenVINO/TFLite export need it).

Example: `import_model("net.py:build", weights="w.pt", classes=["normal", "pneumonia"],
input_size=28, channels=1, mean=[0.5], std=[0.5], out="mine.safetensors")`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgemed.errors import CheckpointError, DataError, EdgemedError, missing_extra

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")
PREFIXES = ("", "module.", "model.", "module.model.", "model.module.", "_orig_mod.", "module._orig_mod.")
# buffers PyTorch recreates by itself: a file without them loads the same model
SELF_MADE = ("*.num_batches_tracked",)
SIDE_KEYS = {"classes", "input_size", "channels", "mean", "std", "resize", "interpolation", "task", "dataset",
             "model_kwargs"}


@dataclass
class ImportResult:
    checkpoint: Path
    layout: dict  # how the weights were found: file kind, nesting key, prefix stripped
    loaded: int  # tensors loaded
    allowed_missing: list[str] = field(default_factory=list)
    torch_export: str = "ok"  # or the failure, naming the op


# ---- metadata ---------------------------------------------------------------------------------

def read_sidecar(path: str | Path) -> dict:
    """Metadata from a YAML/JSON file with the same keys as the flags, or a MONAI bundle's
    `metadata.json` (its `network_data_format` gives channels, input size and class names)."""
    from edgemed.fileio import read_json, read_yaml

    p = Path(path)
    fix = "give a YAML/JSON file with keys " + ", ".join(sorted(SIDE_KEYS))
    doc = read_json(p, "metadata file", 1 << 20, fix) if p.suffix == ".json" else \
        read_yaml(p, "metadata file", fix=fix)
    if not isinstance(doc, dict):
        raise EdgemedError(f"metadata file {p} is not a mapping: {fix}")
    if "network_data_format" in doc:
        return _from_monai(p, doc)
    unknown = set(doc) - SIDE_KEYS
    if unknown:
        raise EdgemedError(f"metadata file {p} has unknown keys {', '.join(sorted(map(str, unknown)))}: {fix}")
    return doc


def _from_monai(p: Path, doc: dict) -> dict:
    """What a MONAI bundle's metadata.json can tell: channels and spatial size of the image input,
    the class names of the prediction output."""
    out: dict = {}
    fmt = doc.get("network_data_format")
    inputs = fmt.get("inputs", {}) if isinstance(fmt, dict) else {}
    outputs = fmt.get("outputs", {}) if isinstance(fmt, dict) else {}
    image = next(iter(inputs.values()), None) if isinstance(inputs, dict) and inputs else None
    pred = next(iter(outputs.values()), None) if isinstance(outputs, dict) and outputs else None
    if isinstance(image, dict):
        if type(image.get("num_channels")) is int:
            out["channels"] = image["num_channels"]
        shape = image.get("spatial_shape")
        if isinstance(shape, list) and len(shape) == 2 and all(type(s) is int and s > 0 for s in shape) \
                and shape[0] == shape[1]:
            out["input_size"] = shape[0]
    if isinstance(pred, dict) and isinstance(pred.get("channel_def"), dict):
        names = pred["channel_def"]
        try:
            ordered = [names[k] for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            ordered = []
        if ordered and all(isinstance(n, str) for n in ordered):
            out["classes"] = ordered
    if not out:
        raise EdgemedError(f"{p}: its network_data_format names no input channels, spatial shape or class names: "
                           "give them with --channels, --input-size and --classes")
    return out


def _per_channel(values, channels: int, what: str) -> tuple[float, ...]:
    values = [float(v) for v in values]
    if len(values) == 1:
        values *= channels
    if len(values) != channels:
        raise EdgemedError(f"--{what} needs one value or one per channel ({channels}), got {len(values)}")
    return tuple(values)


# ---- weights ----------------------------------------------------------------------------------

def read_weights(path: str | Path, key: str | None = None) -> tuple[dict, dict]:
    """(flat name → tensor, layout) from a weights file; never unpickles code."""
    p = Path(path)
    if not p.is_file():
        raise EdgemedError(f"weights file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise missing_extra("safetensors", "train") from None
        try:
            obj = load_file(str(p))
        except Exception as e:
            raise CheckpointError(f"{p}: not a readable safetensors file ({str(e)[:160]}): save it again") from None
        kind = "safetensors"
    elif suffix in TORCH_SUFFIXES:
        import pickle

        import torch

        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
            what = f" (it names {named.group(1)})" if named else ""
            raise CheckpointError(
                f"{p} holds Python objects beyond tensors{what}, which edgemed never unpickles: save "
                "`model.state_dict()` (torch.save(model.state_dict(), PATH)) or a .safetensors file") from None
        except Exception as e:
            raise CheckpointError(f"{p}: not a readable PyTorch weights file ({e.__class__.__name__}: "
                                  f"{str(e)[:160]}): save it again with torch.save(model.state_dict(), PATH)") from None
        kind = "torch weights_only"
    else:
        raise EdgemedError(f"{p}: unknown weights file type {suffix!r}: use .safetensors, "
                           f"{', '.join(TORCH_SUFFIXES)} (or import an ONNX file as `edgemed import model.onnx`)")
    state, nested = _find_state_dict(p, obj, key)
    return state, {"file": p.name, "kind": kind, "nested_under": nested}


def _is_state_dict(obj) -> bool:
    import torch

    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _tensor_count(obj) -> int:
    import torch

    return sum(isinstance(v, torch.Tensor) for v in obj.values()) if isinstance(obj, dict) else 0


def _find_state_dict(p: Path, obj, key: str | None) -> tuple[dict, str | None]:
    """The tensors of a saved object: bare, or under `key`, or under one of NESTED_KEYS (Lightning
    saves `state_dict`, training loops `model` / `model_state_dict`). Non-tensor entries of a
    nested dict (an optimizer step count) are left out."""
    import torch

    if key:
        for part in key.split("."):
            if not isinstance(obj, dict) or part not in obj:
                raise CheckpointError(f"{p} has no entry {key!r}: its top-level keys are {_keys(obj)}")
            obj = obj[part]
        nested = key
    elif _is_state_dict(obj):
        return obj, None
    else:
        nested = next((k for k in NESTED_KEYS if isinstance(obj, dict) and _tensor_count(obj.get(k)) > 0), None)
        if nested is None:
            raise CheckpointError(f"{p} holds no state dict where edgemed looks ({', '.join(NESTED_KEYS)} or bare): "
                                  f"its top-level keys are {_keys(obj)}; name the one that holds the weights "
                                  "with --weights-key")
        obj = obj[nested]
    if not isinstance(obj, dict) or not _tensor_count(obj):
        raise CheckpointError(f"{p}: entry {nested!r} holds no tensors; name the entry with the weights with "
                              "--weights-key")
    return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}, nested


def _keys(obj) -> str:
    if not isinstance(obj, dict):
        return f"none (it is a {type(obj).__name__})"
    keys = [str(k) for k in obj]
    return ", ".join(keys[:8]) + (f" and {len(keys) - 8} more" if len(keys) > 8 else "")


def match_weights(expected: dict, state: dict, allow_missing: list[str],
                  ignore_unexpected: list[str] = ()) -> tuple[dict, str, list[str]]:
    """Fit a file's tensors to a model's state dict: pick the prefix to strip that matches most
    keys, then refuse unexpected or misshaped keys (unless `ignore_unexpected` globs name them,
    as written in the file: a Lightning module's loss weights) and missing ones not allowed.
    Returns (state to load, prefix stripped, missing keys that were allowed)."""
    def strip(prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if prefix else dict(state)

    prefix = max(PREFIXES, key=lambda pre: (len(set(strip(pre)) & set(expected)), -len(pre)))
    fitted = strip(prefix)
    dropped = len(state) - len(fitted)  # keys without the prefix (e.g. a Lightning module's loss weights)
    missing = sorted(set(expected) - set(fitted))
    unexpected = [prefix + k for k in sorted(set(fitted) - set(expected))] + (
        sorted(k for k in state if not k.startswith(prefix)) if dropped else [])
    unexpected = [k for k in unexpected if not any(fnmatch.fnmatchcase(k, pat) for pat in ignore_unexpected)]
    fitted = {k: v for k, v in fitted.items() if k in expected}
    misshaped = [f"{k} (file {tuple(fitted[k].shape)}, model {tuple(expected[k].shape)})"
                 for k in sorted(set(fitted) & set(expected)) if tuple(fitted[k].shape) != tuple(expected[k].shape)]
    patterns = list(allow_missing) + list(SELF_MADE)
    allowed = [k for k in missing if any(fnmatch.fnmatchcase(k, pat) for pat in patterns)]
    refused = [k for k in missing if k not in allowed]
    if refused or unexpected or misshaped:
        parts = []
        if refused:
            parts.append(f"{len(refused)} missing ({_few(refused)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
        if misshaped:
            parts.append(f"{len(misshaped)} misshaped ({_few(misshaped)})")
        hint = ("the weights are for another architecture or other --model-kwargs/--classes"
                if misshaped or (refused and unexpected) else
                "pass --ignore-unexpected 'PATTERN' for file entries that are not model weights (e.g. a loss's)"
                if unexpected else "pass --allow-missing 'PATTERN' for keys your model may lack (e.g. a new head)")
        raise CheckpointError(f"weights do not fit the model ({_n_fit(fitted, expected)} of "
                              f"{len(expected)} keys fit): {'; '.join(parts)}: {hint}")
    return fitted, prefix, allowed


def _n_fit(fitted: dict, expected: dict) -> int:
    return sum(1 for k in fitted if k in expected and tuple(fitted[k].shape) == tuple(expected[k].shape))


def _few(items: list[str]) -> str:
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")


# ---- checks -----------------------------------------------------------------------------------

def export_check(model, example) -> str:
    """'ok', or why torch.export cannot capture the model (naming the op where it says)."""
    import torch

    from edgemed.models import deploy_form

    try:
        torch.export.export(deploy_form(model).eval(), (example,))
        return "ok"
    except Exception as e:  # torch raises many kinds; the first line names the op or construct
        text = " ".join(str(e).split())
        op = re.search(r"(aten::?\.?[\w.]+|torch\.[\w.]+|call_function [\w.]+)", text)
        return (f"failed at {op.group(1)}: " if op else "failed: ") + text[:200]


@dataclass
class Declared:
    """What the user declares about a model that its weights cannot say."""
    classes: list[str]
    spec: object  # PreprocessSpec
    task: str
    model_kwargs: dict


def resolve_metadata(*, classes=None, input_size=None, channels=None, mean=None, std=None, resize=None,
                     interpolation=None, task=None, dataset=None, data_dir=None, model_kwargs=None,
                     metadata=None, onnx_path: Path | None = None) -> tuple[Declared, dict]:
    """Flags, else the sidecar (`metadata`), else what an ONNX file says of itself (its input
    shape, `metadata_props`); checked, with the data set (if named) matched against the classes.
    Returns (declared, the checkpoint/bundle's dataset entry)."""
    from edgemed.data.preprocess import PreprocessSpec

    side = read_sidecar(metadata) if metadata else {}
    if onnx_path is not None:
        from edgemed.onnx_source import inspect_onnx, onnx_metadata

        info = inspect_onnx(onnx_path)
        own = onnx_metadata(onnx_path)
        if info.channels:  # the graph's static shape is the truth; metadata_props only fill gaps
            own["channels"] = info.channels
        if info.size[0] and info.size[0] == info.size[1]:
            own["input_size"] = info.size[0]
        side = {**own, **side}

    def pick(name, value, default=None):
        return value if value is not None else side.get(name, default)

    classes = pick("classes", classes)
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",")]
    if not classes or not isinstance(classes, list) or not 2 <= len(classes) <= 10_000 or \
            not all(isinstance(c, str) and c.strip() and len(c) <= 200 for c in classes) or \
            len(set(classes)) != len(classes):
        raise EdgemedError("give the class names, in the order of the model's outputs: --classes A,B[,C...] "
                           "(2 to 10,000, all different, each at most 200 characters)")
    channels = pick("channels", channels)
    size = pick("input_size", input_size)
    if type(channels) is not int or channels not in (1, 3):
        raise EdgemedError("give the input channels the model takes: --channels 1 (grey) or 3 (RGB)")
    if type(size) is not int or not 8 <= size <= 4096:
        raise EdgemedError("give the square input size the model was trained at: --input-size N (8..4096)")
    mean = pick("mean", mean, [0.0])
    std = pick("std", std, [1.0])
    try:
        spec = PreprocessSpec(size=(size, size), channels=channels,
                              mean=_per_channel(mean if isinstance(mean, (list, tuple)) else [mean], channels, "mean"),
                              std=_per_channel(std if isinstance(std, (list, tuple)) else [std], channels, "std"),
                              interpolation=pick("interpolation", interpolation, "bilinear"),
                              resize=pick("resize", resize, "stretch"))
    except (TypeError, ValueError) as e:
        raise EdgemedError(f"--mean/--std must be numbers ({e})") from None
    task = pick("task", task) or ("binary" if len(classes) == 2 else "multiclass")
    if task not in ("binary", "multiclass"):
        raise EdgemedError(f"--task must be binary or multiclass, got {task!r}")
    if task == "binary" and len(classes) != 2:
        raise EdgemedError(f"--task binary needs 2 classes, got {len(classes)}")
    kwargs = pick("model_kwargs", model_kwargs) or {}
    if not isinstance(kwargs, dict):
        raise EdgemedError("model_kwargs must be a mapping of constructor arguments")
    dataset = pick("dataset", dataset)
    ds_meta: dict = {}
    if dataset:  # checked before any model is built: the data must fit the declared classes
        from edgemed.data.datasets import load_dataset

        ds = load_dataset(dataset, data_dir)
        if ds.num_classes != len(classes):
            raise DataError(f"{ds.name} has {ds.num_classes} classes ({', '.join(ds.class_names)}), the model "
                            f"{len(classes)}: give the data set it was trained on, or the right --classes")
        if ds.channels != channels:
            raise DataError(f"{ds.name} has {ds.channels}-channel images, the model takes {channels}: "
                            "give the data set it was trained on")
        ds_meta = {"name": ds.name, "sha256": ds.sha256, "source": ds.recorded_source}
    return Declared(list(classes), spec, task, dict(kwargs)), ds_meta


def import_model(model: str, *, out: str | Path, weights: str | Path | None = None, classes: list[str] | None = None,
                 input_size: int | None = None, channels: int | None = None, mean=None, std=None,
                 resize: str | None = None, interpolation: str | None = None, task: str | None = None,
                 dataset: str | None = None, data_dir: str | None = None, model_kwargs: dict | None = None,
                 metadata: str | Path | None = None, weights_key: str | None = None,
                 allow_missing: list[str] | tuple = (), ignore_unexpected: list[str] | tuple = (),
                 force: bool = False,
                 record_trust: bool = True) -> ImportResult:
    """Check and write a checkpoint of `model` with `weights` (see the module docstring); for an
    FP32 `model.onnx` (no weights), a bundle folder holding it.

    Flags win over the `metadata` sidecar. `dataset` (a catalog name, .npz or folder:PATH with
    the same classes) is what `quantize`, `prune` and parity checks validate and calibrate on.
    A user factory named here is recorded as trusted on this machine (edgemed.trust) unless
    `record_trust` is off (a factory named by a recipe file, checked against the trust list).
    """
    import torch

    from edgemed.checkpoint import Checkpoint, save_checkpoint
    from edgemed.fileio import check_output, sha256_file
    from edgemed.models import create_model, is_user_factory, resolve_kwargs
    from edgemed.trust import absolute_spec
    from edgemed.trust import record_trust as remember
    from edgemed.versions import library_versions

    onnx_file = str(model).lower().endswith(".onnx")
    if onnx_file and (weights or model_kwargs or weights_key or allow_missing):
        raise EdgemedError("an ONNX file holds its weights and architecture: leave out --weights, --model-kwargs, "
                           "--weights-key and --allow-missing")
    if not onnx_file and weights is None:
        raise EdgemedError("give the trained weights with --weights FILE (.safetensors, .pt, .pth, .ckpt, .bin)")
    out = check_output(out, force)
    declared, ds_meta = resolve_metadata(classes=classes, input_size=input_size, channels=channels, mean=mean,
                                         std=std, resize=resize, interpolation=interpolation, task=task,
                                         dataset=dataset, data_dir=data_dir, model_kwargs=model_kwargs,
                                         metadata=metadata, onnx_path=Path(model) if onnx_file else None)
    if onnx_file:  # a bundle holding the FP32 ONNX, checked by running it
        from edgemed.onnx_source import import_onnx

        bundle = import_onnx(model, out=out, declared=declared, dataset_meta=ds_meta, force=force)
        return ImportResult(bundle, {"file": Path(model).name, "kind": "onnx", "nested_under": None,
                                     "prefix_stripped": None, "sha256": sha256_file(model)}, 1)
    classes, channels, size, spec, task, kwargs = (declared.classes, declared.spec.channels, declared.spec.size[0],
                                                   declared.spec, declared.task, dict(declared.model_kwargs))
    if is_user_factory(model):
        model = absolute_spec(model)  # the checkpoint then loads from any working folder
    net = create_model(model, len(classes), channels, size, **kwargs)
    if not is_user_factory(model):
        kwargs = resolve_kwargs(model, size, kwargs)
    expected = net.state_dict()
    state, layout = read_weights(weights, weights_key)
    fitted, prefix, allowed = match_weights(expected, state, list(allow_missing), list(ignore_unexpected))
    for k, v in fitted.items():
        if v.is_quantized or not (v.is_floating_point() or v.dtype in (torch.int64, torch.int32, torch.bool)):
            raise CheckpointError(f"{weights}: weight {k} is stored as {v.dtype}; edgemed imports float weights: "
                                  "save the float model's state_dict (edgemed quantizes it itself)")
        fitted[k] = v = v.to(expected[k].dtype)  # checked after the cast: float64 values may overflow float32
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{weights}: weight {k} holds NaN or infinite values (in {expected[k].dtype}): export "
                                  "the weights again from a healthy training run")
    net.load_state_dict(fitted, strict=False)
    net.eval()
    example = torch.zeros(1, channels, size, size)
    with torch.inference_mode():
        try:
            y = net(example)
        except Exception as e:
            raise EdgemedError(f"{model} cannot run on a {channels}×{size}×{size} input ({e.__class__.__name__}: "
                               f"{str(e)[:160]}): check --input-size, --channels and --model-kwargs") from None
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (1, len(classes)):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise EdgemedError(f"{model} gives {got} for one image, not one score per class (1, {len(classes)}): "
                           "edgemed takes classifiers that return logits; check --classes or wrap the model")
    if not torch.isfinite(y).all():
        raise EdgemedError(f"{model} with {Path(weights).name} gives NaN/inf scores on a blank image: the weights are damaged")
    exported = export_check(net, example)
    if is_user_factory(model) and record_trust:  # checked and about to be written: trust what the user named
        remember(model)
    layout.update({"prefix_stripped": prefix or None, "allowed_missing": allowed,
                   "sha256": sha256_file(weights), "torch_export": exported})
    ckpt = Checkpoint(
        path=out, model_name=model, model_kwargs=kwargs, num_classes=len(classes), in_channels=channels,
        image_size=size, preprocess=spec, class_names=list(classes), task=task, dataset=ds_meta,
        lineage=[{"op": "import", **layout}], versions=library_versions(),
    )
    save_checkpoint(out, net, ckpt, force=force)
    return ImportResult(out, layout, len(fitted), allowed, exported)


# `edgemed.import_model(...)` is the verb
__all__ = ["ImportResult", "import_model", "match_weights", "read_sidecar", "read_weights"]
