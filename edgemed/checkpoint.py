"""Checkpoints: one `.safetensors` file holding the weights and, in its header, the JSON
metadata (model name and kwargs, PreprocessSpec, class names, data set hash, metrics,
versions, pruned shapes). Loading never unpickles anything."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import CheckpointError, EdgemedError, missing_extra
from edgemed.fileio import atomic_path, check_output, parse_json, sha256_file

FORMAT = "edgemed-checkpoint"
FORMAT_VERSION = 1
MAX_METADATA_BYTES = 16 << 20  # the JSON header: training history and shapes take kilobytes
MAX_CLASSES = 10_000
RETRAIN = "use the checkpoint you trained, or train or import it again"


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

    def architecture(self, device: str | None = None):
        """A fresh, untrained model of the architecture this checkpoint records (on `device`, e.g.
        "meta" to size it without memory). The one place a model is built from a file's metadata:
        a user factory it names runs only when the user chose it (edgemed.trust)."""
        import contextlib

        import torch

        from edgemed.models import create_model, is_user_factory
        from edgemed.trust import require_trusted

        if is_user_factory(self.model_name):
            require_trusted(self.model_name, self.path)
        with torch.device(device) if device else contextlib.nullcontext():
            return create_model(self.model_name, self.num_classes, self.in_channels, self.image_size,
                                **self.model_kwargs)

    def open_dataset(self, data_dir=None):
        """The data set the model was trained on (or imported with `--dataset`): by catalog name,
        else the path it was loaded from."""
        from edgemed.data.datasets import load_recorded

        return load_recorded(self.dataset, self.path, "train it, or import it again with --dataset "
                             "NAME|PATH|folder:PATH|csv:PATH", data_dir)

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
    path = check_output(path, force, need_bytes=_state_bytes(model))
    ckpt.path = path
    ckpt.module_shapes = _shapes_if_pruned(model, ckpt)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"edgemed": json.dumps(ckpt.meta())}
    with atomic_path(path) as tmp:
        st.save_file(state, str(tmp), metadata=meta)
    return path


def _state_bytes(model) -> int:
    return sum(v.numel() * v.element_size() for v in model.state_dict().values())


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Metadata only (fast; no tensors read). Everything in it is checked for type and size: a
    checkpoint may come from someone else."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}: check the path (checkpoints are written by "
                              "`edgemed train --out` or `edgemed import --out`)")
    try:
        from safetensors import safe_open
    except ImportError:
        raise missing_extra("safetensors", "train") from None
    try:
        with safe_open(str(p), framework="numpy") as f:
            raw = (f.metadata() or {}).get("edgemed")
    except Exception as e:
        raise CheckpointError(f"{p}: not a readable safetensors checkpoint ({str(e)[:200]}): the file is damaged "
                              f"or not a checkpoint; {RETRAIN}") from None
    if raw is None:
        raise CheckpointError(f"{p}: a safetensors file without edgemed metadata; train or convert it with edgemed")
    if len(raw) > MAX_METADATA_BYTES:
        raise CheckpointError(f"{p}: its metadata is {len(raw) / 2**20:.0f} MiB, over edgemed's limit of "
                              f"{MAX_METADATA_BYTES >> 20} MiB; {RETRAIN}")
    try:
        m = parse_json(raw, f"{p}: checkpoint metadata", RETRAIN)
    except EdgemedError as e:
        raise CheckpointError(str(e)) from None
    try:
        return _checkpoint_from_meta(p, m)
    except CheckpointError:
        raise
    except EdgemedError as e:
        raise CheckpointError(f"{p}: {e}; {RETRAIN}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{p}: checkpoint metadata is missing or malformed ({e.__class__.__name__}: "
                              f"{str(e)[:120]}); {RETRAIN}") from None


def _checkpoint_from_meta(p: Path, m) -> Checkpoint:
    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{p}: checkpoint metadata has {what}; {RETRAIN}")

    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not an edgemed checkpoint: give a .safetensors file written by "
                              "`edgemed train` or `edgemed import`")
    version = m.get("format_version", 0)
    if type(version) is not int:
        raise bad("a format version that is not a whole number")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format {version} is newer than this edgemed; upgrade edgemed")
    mod = m["model"]
    if not isinstance(mod, dict):
        raise bad("no model entry")
    ints = {k: mod.get(k) for k in ("num_classes", "in_channels", "image_size")}
    if not all(type(v) is int for v in ints.values()):
        raise bad("class count, channels or image size that are not whole numbers")
    if not 2 <= ints["num_classes"] <= MAX_CLASSES or ints["in_channels"] not in (1, 3) \
            or not 1 <= ints["image_size"] <= 8192:
        raise bad(f"out-of-range model sizes {ints}")
    name, kwargs = mod.get("name"), mod.get("kwargs", {})
    if not isinstance(name, str) or not name or len(name) > 1000 or not isinstance(kwargs, dict):
        raise bad("a model name that is not a string, or constructor arguments that are not an object")
    names = m["class_names"]
    if not isinstance(names, list) or len(names) != ints["num_classes"] or \
            not all(isinstance(c, str) and 0 < len(c) <= 200 for c in names):
        raise bad(f"{len(names) if isinstance(names, list) else 'no'} class names for a "
                  f"{ints['num_classes']}-class model")
    for key, kind in (("dataset", dict), ("metrics", dict), ("training", dict), ("versions", dict),
                      ("lineage", list)):
        if not isinstance(m.get(key, kind()), kind):
            raise bad(f"a {key} entry that is not a JSON {'object' if kind is dict else 'list'}")
    shapes = m.get("module_shapes")
    if shapes is not None and not (isinstance(shapes, dict) and all(
            isinstance(v, dict) and set(v) <= _ALL_SHAPE_ATTRS and all(_shape_value_ok(x) for x in v.values())
            for v in shapes.values())):
        raise bad("module shapes that are not known shape attributes with sizes")
    if not isinstance(m["task"], str):
        raise bad("a task that is not a string")
    return Checkpoint(
        path=p, model_name=name, model_kwargs=kwargs, **ints,
        preprocess=PreprocessSpec.from_dict(m["preprocess"]), class_names=list(names), task=m["task"],
        dataset=m.get("dataset", {}), metrics=m.get("metrics", {}), training=m.get("training", {}),
        versions=m.get("versions", {}), module_shapes=shapes, lineage=m.get("lineage", []),
    )


def _shape_value_ok(v) -> bool:
    """A recorded module size: a positive int (or a short list of them) within reason."""
    values = v if isinstance(v, list) and 0 < len(v) <= 4 else [v]
    return all(type(x) is int and 1 <= x <= 1 << 20 for x in values)


def load_checkpoint(path: str | Path) -> tuple[Checkpoint, Any]:
    """(metadata, model in eval mode with its weights)."""
    ckpt = read_checkpoint(path)
    return ckpt, build_model(ckpt)


def read_weights(ckpt: Checkpoint) -> dict:
    """The checkpoint's tensors, each checked finite (no model is built: no code runs)."""
    import torch

    st = _safetensors()
    try:
        tensors = st.load_file(str(ckpt.path))
    except Exception as e:
        raise CheckpointError(f"{ckpt.path}: weights cannot be read ({str(e)[:200]}); the file is corrupt or "
                              f"truncated: {RETRAIN}") from None
    for key, t in tensors.items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{ckpt.path}: weight {key} holds NaN or infinite values: the file is damaged; "
                                  f"{RETRAIN}")
    return tensors


def _check_kinds(ckpt: Checkpoint, target: dict, tensors: dict) -> None:
    """Each tensor is of the kind its model slot holds (float weights, integer counters) and finite
    in the slot's own dtype: a float64 value past float32's range passes read_weights' check but
    becomes inf when loaded, and an integer weight loads silently as a one-class model."""
    import torch

    for key, t in tensors.items():
        want = target[key]
        if want.is_floating_point() != t.is_floating_point():
            raise CheckpointError(f"{ckpt.path}: weight {key} is stored as {t.dtype} where {ckpt.model_name} holds "
                                  f"{want.dtype}: the file was altered; {RETRAIN}")
        if want.is_floating_point() and t.dtype != want.dtype and not torch.isfinite(t.to(want.dtype)).all():
            raise CheckpointError(f"{ckpt.path}: weight {key} holds values that are not finite as {want.dtype} "
                                  f"(stored as {t.dtype}): the file is damaged; {RETRAIN}")


def build_model(ckpt: Checkpoint, tensors: dict | None = None):
    """The checkpoint's model with its weights (`tensors`: its `read_weights`, when already read;
    they are copied into the model, never shared with it). A user factory it names runs only when
    the user chose it (see edgemed.trust); the model's size is bounded by the weights the file
    holds; weights that are not finite are refused by name."""
    from edgemed.models import is_user_factory

    try:  # the trust gate and the arguments, then the size: built without memory first
        wanted = sum(v.numel() for v in ckpt.architecture("meta").state_dict().values())
    except EdgemedError:
        raise
    except Exception:
        if not is_user_factory(ckpt.model_name):
            raise
        wanted = 0  # trusted user code that cannot be built on the meta device: not sized first
    if tensors is None:
        tensors = read_weights(ckpt)
    stored = sum(t.numel() for t in tensors.values())
    # metadata cannot make edgemed allocate a model far larger than the weights stored (a pruned
    # model is smaller than its fresh build, not 64× smaller)
    if wanted > 64 * stored + (1 << 20):
        raise CheckpointError(f"{ckpt.path}: its metadata describes a {ckpt.model_name} of {wanted:,} values but "
                              f"the file holds {stored:,}: the metadata was altered; {RETRAIN}")
    model = ckpt.architecture()
    if ckpt.module_shapes:
        try:
            apply_module_shapes(model, ckpt.module_shapes, tensors)
        except KeyError as e:
            raise CheckpointError(f"{ckpt.path}: weights do not fit {ckpt.model_name}: "
                                  f"it records module {e.args[0]!r} that the model does not have; {RETRAIN}") from None
    missing, unexpected = _diff_keys(model.state_dict(), tensors)
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt.path}: weights do not fit {ckpt.model_name}: missing {_few(missing)}, "
            f"unexpected {_few(unexpected)}: the weights come from another model or edgemed version; {RETRAIN}"
        )
    _check_kinds(ckpt, model.state_dict(), tensors)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        first = str(e).split("\n")[1].strip() if "\n" in str(e) else str(e)
        raise CheckpointError(f"{ckpt.path}: weights do not fit {ckpt.model_name}: {first}; {RETRAIN}") from None
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
_ALL_SHAPE_ATTRS = {a for attrs in _SHAPE_ATTRS.values() for a in attrs}


def module_shapes(model) -> dict:
    out = {}
    for name, m in model.named_modules():
        attrs = _SHAPE_ATTRS.get(type(m).__name__)
        if attrs:
            out[name] = {a: (list(v) if isinstance(v := getattr(m, a), tuple) else v) for a in attrs}
    return out


def _shapes_if_pruned(model, ckpt: Checkpoint) -> dict | None:
    if ckpt.model_name and ":" not in ckpt.model_name:
        fresh = ckpt.architecture("meta")  # shapes only
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
        allowed = _SHAPE_ATTRS.get(type(m).__name__, ())
        for a, v in attrs.items():
            if a not in allowed:  # only the size attributes edgemed records, never anything else
                raise KeyError(f"{name}.{a}")
            setattr(m, a, tuple(v) if isinstance(v, list) else v)
    # every parameter/buffer takes the stored tensor's shape
    for key, value in tensors.items():
        owner_name, _, leaf = key.rpartition(".")
        owner = modules.get(owner_name)
        if owner is None:
            continue
        current = getattr(owner, leaf, None)
        if isinstance(current, torch.Tensor) and tuple(current.shape) != tuple(value.shape):
            # the model's dtype, not the file's: load_state_dict casts into it (and _check_kinds checks it)
            fresh = torch.empty(tuple(value.shape), dtype=current.dtype)
            if isinstance(current, torch.nn.Parameter):
                setattr(owner, leaf, torch.nn.Parameter(fresh, requires_grad=current.requires_grad))
            else:
                owner.register_buffer(leaf, fresh)
