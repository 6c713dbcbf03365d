"""Checkpoints: one `.safetensors` file holding the weights and, in its header, the JSON
metadata (model name and kwargs, PreprocessSpec, class names, data set hash, metrics,
versions, pruned shapes). Loading never unpickles anything."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import CheckpointError, missing_extra
from edgemed.fileio import atomic_path, check_output, sha256_file

FORMAT = "edgemed-checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """Metadata of a checkpoint; `tensors` are loaded on demand by `build_model`."""

    path: Path
    model_name: str
    model_kwargs: dict
    num_classes: int
    in_channels: int
    image_size: int
    preprocess: PreprocessSpec
    class_names: list[str]
    task: str
    dataset: dict
    metrics: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    module_shapes: dict | None = None  # set for pruned models: per-module shape attributes
    lineage: list = field(default_factory=list)  # what was done to the weights (prune, ...)

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)

    def meta(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": {"name": self.model_name, "kwargs": self.model_kwargs,
                      "num_classes": self.num_classes, "in_channels": self.in_channels,
                      "image_size": self.image_size},
            "preprocess": self.preprocess.to_dict(),
            "class_names": self.class_names,
            "task": self.task,
            "dataset": self.dataset,
            "metrics": self.metrics,
            "training": self.training,
            "versions": self.versions,
            "module_shapes": self.module_shapes,
            "lineage": self.lineage,
        }


def _safetensors():
    try:
        import safetensors.torch as st
    except ImportError:
        raise missing_extra("safetensors/torch", "train") from None
    return st


def save_checkpoint(path: str | Path, model, ckpt: Checkpoint, force: bool = False) -> Path:
    """Write weights + metadata through a temp file and rename. Pruned models (any module whose
    shape differs from a fresh build) get their shapes recorded so they load without pickle."""
    st = _safetensors()
    path = check_output(path, force)
    ckpt.path = path
    ckpt.module_shapes = _shapes_if_pruned(model, ckpt)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"edgemed": json.dumps(ckpt.meta())}
    with atomic_path(path) as tmp:
        st.save_file(state, str(tmp), metadata=meta)
    return path


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Metadata only (fast; no tensors read)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        from safetensors import safe_open
    except ImportError:
        raise missing_extra("safetensors", "train") from None
    try:
        with safe_open(str(p), framework="numpy") as f:
            raw = (f.metadata() or {}).get("edgemed")
    except Exception as e:
        raise CheckpointError(f"{p}: not a readable safetensors checkpoint ({e})") from None
    if raw is None:
        raise CheckpointError(f"{p}: a safetensors file without edgemed metadata; train or convert it with edgemed")
    try:
        m = json.loads(raw)
        if m.get("format") != FORMAT:
            raise CheckpointError(f"{p}: not an edgemed checkpoint")
        if m.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(f"{p}: checkpoint format {m['format_version']} is newer than this edgemed; upgrade edgemed")
        mod = m["model"]
        return Checkpoint(
            path=p, model_name=mod["name"], model_kwargs=mod.get("kwargs", {}),
            num_classes=int(mod["num_classes"]), in_channels=int(mod["in_channels"]),
            image_size=int(mod["image_size"]), preprocess=PreprocessSpec.from_dict(m["preprocess"]),
            class_names=list(m["class_names"]), task=m["task"], dataset=m.get("dataset", {}),
            metrics=m.get("metrics", {}), training=m.get("training", {}),
            versions=m.get("versions", {}), module_shapes=m.get("module_shapes"),
            lineage=m.get("lineage", []),
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{p}: checkpoint metadata is missing or malformed ({e})") from None


def load_checkpoint(path: str | Path) -> tuple[Checkpoint, Any]:
    """(metadata, model in eval mode with its weights)."""
    ckpt = read_checkpoint(path)
    return ckpt, build_model(ckpt)


def build_model(ckpt: Checkpoint):
    from edgemed.models import create_model

    st = _safetensors()
    try:
        tensors = st.load_file(str(ckpt.path))
    except Exception as e:
        raise CheckpointError(f"{ckpt.path}: weights cannot be read ({e}); the file is corrupt or truncated") from None
    model = create_model(ckpt.model_name, ckpt.num_classes, ckpt.in_channels, ckpt.image_size,
                         **ckpt.model_kwargs)
    if ckpt.module_shapes:
        try:
            apply_module_shapes(model, ckpt.module_shapes, tensors)
        except KeyError as e:
            raise CheckpointError(f"{ckpt.path}: weights do not fit {ckpt.model_name}: "
                                  f"it records module {e.args[0]!r} that the model does not have") from None
    missing, unexpected = _diff_keys(model.state_dict(), tensors)
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt.path}: weights do not fit {ckpt.model_name}: missing {_few(missing)}, "
            f"unexpected {_few(unexpected)}"
        )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).split("\n")[1].strip() if "\n" in str(e) else str(e)
        raise CheckpointError(f"{ckpt.path}: weights do not fit {ckpt.model_name}: {first}") from None
    return model.eval()


def _diff_keys(expected: dict, got: dict) -> tuple[list[str], list[str]]:
    return sorted(set(expected) - set(got)), sorted(set(got) - set(expected))


def _few(keys: list[str]) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


# ---- pruned shapes ---------------------------------------------------------------------------
_SHAPE_ATTRS = {
    "Conv2d": ("in_channels", "out_channels", "groups"),
    "Linear": ("in_features", "out_features"),
    "BatchNorm2d": ("num_features",),
    "LayerNorm": ("normalized_shape",),
    "LayerNorm2d": ("normalized_shape",),
}


def module_shapes(model) -> dict:
    out = {}
    for name, m in model.named_modules():
        attrs = _SHAPE_ATTRS.get(type(m).__name__)
        if attrs:
            out[name] = {a: (list(v) if isinstance(v := getattr(m, a), tuple) else v) for a in attrs}
    return out


def _shapes_if_pruned(model, ckpt: Checkpoint) -> dict | None:
    from edgemed.models import create_model

    if ckpt.model_name and ":" not in ckpt.model_name:
        fresh = create_model(ckpt.model_name, ckpt.num_classes, ckpt.in_channels, ckpt.image_size,
                             **ckpt.model_kwargs)
        fresh_shapes = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
        if all(fresh_shapes.get(k) == tuple(v.shape) for k, v in model.state_dict().items()):
            return None
    return module_shapes(model)


def apply_module_shapes(model, shapes: dict, tensors: dict) -> None:
    """Resize a freshly built model's modules to recorded (pruned) shapes before loading."""
    import torch

    modules = dict(model.named_modules())
    for name, attrs in shapes.items():
        m = modules.get(name)
        if m is None:
            raise KeyError(name)
        for a, v in attrs.items():
            setattr(m, a, tuple(v) if isinstance(v, list) else v)
    # every parameter/buffer takes the stored tensor's shape
    for key, value in tensors.items():
        owner_name, _, leaf = key.rpartition(".")
        owner = modules.get(owner_name)
        if owner is None:
            continue
        current = getattr(owner, leaf, None)
        if isinstance(current, torch.Tensor) and tuple(current.shape) != tuple(value.shape):
            if isinstance(current, torch.nn.Parameter):
                setattr(owner, leaf, torch.nn.Parameter(torch.empty_like(value), requires_grad=current.requires_grad))
            else:
                owner.register_buffer(leaf, torch.empty_like(value))
