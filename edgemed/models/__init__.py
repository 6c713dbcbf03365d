"""The model zoo: a registry of named architectures (and tiny test variants), plus users' own
factories by `path/to/file.py:factory` or `package.module:factory`.

Example: `create_model("mednext_small", num_classes=2, in_channels=1, image_size=28)`.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemed.errors import EdgemedError, ModelError, missing_extra
from edgemed.trust import is_user_factory  # one definition, shared with the trust gate


@dataclass(frozen=True)
class ModelEntry:
    name: str
    class_path: str  # "module:Class", imported on first use (keeps torch out of `import edgemed`)
    defaults: Callable[[int], dict]  # image_size → constructor kwargs
    default_image_size: int
    description: str
    test_variant: bool = False

    @property
    def build(self) -> Callable[..., Any]:
        module, _, cls = self.class_path.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ImportError as e:
            if "torch" in str(e):
                raise missing_extra("torch", "train") from None
            raise


REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, class_path: str, defaults, default_image_size: int,
                   description: str, test_variant: bool = False) -> None:
    REGISTRY[name] = ModelEntry(name, class_path, defaults, default_image_size, description, test_variant)


def _register_zoo() -> None:
    ConvNeXtMed = "edgemed.models.convnext_med:ConvNeXtMed"
    MedNeXt = "edgemed.models.mednext:MedNeXt"
    ResNet = "edgemed.models.resnet:ResNet"

    def small(size: int) -> bool:
        return size <= 64

    register_model(
        "convnext_med", ConvNeXtMed,
        lambda s: dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768),
                       stem="conv3" if small(s) else "patchify4", drop_path=0.1),
        224, "Seed A: ConvNeXt-Tiny + GAP‖GMP dual pooling + SEVector (feature-smoothing loss)")
    register_model(
        "convnext_med_28", ConvNeXtMed,
        lambda s: dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384),
                       stem="conv3" if small(s) else "patchify4", drop_path=0.05),
        28, "Seed A, small-input variant: 3×3 stride-1 stem, half width, depths 2-2-6-2")
    register_model(
        "mednext_small", MedNeXt,
        lambda s: dict(depths=(2, 2, 4, 2), dims=(32, 64, 128, 256),
                       stem_stride=1 if small(s) else 4),
        28, "Seed B: MedNeXt small (SEM + Smooth DwConv FFN + Linear-Attention FFN)")
    register_model(
        "mednext_base", MedNeXt,
        lambda s: dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384),
                       stem_stride=1 if small(s) else 4, drop_path=0.1),
        224, "Seed B: MedNeXt base")
    register_model(
        "resnet18_medmnist", ResNet,
        lambda s: dict(layers=(2, 2, 2, 2), widths=(64, 128, 256, 512), small_input=small(s)),
        28, "MedMNIST v2 reference ResNet-18 (3×3 stem, no max-pool at 28×28)")
    # Tiny variants for tests: same code paths, a few thousand parameters.
    register_model(
        "convnext_med_micro", ConvNeXtMed,
        lambda s: dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32),
                       stem="conv3" if small(s) else "patchify4", drop_path=0.0, se_reduction=4),
        28, "Test variant of convnext_med", test_variant=True)
    register_model(
        "mednext_micro", MedNeXt,
        lambda s: dict(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32),
                       stem_stride=1 if small(s) else 4, drop_path=0.0),
        28, "Test variant of mednext", test_variant=True)
    register_model(
        "resnet18_micro", ResNet,
        lambda s: dict(layers=(1, 1, 1, 1), widths=(8, 16, 24, 32), small_input=small(s)),
        28, "Test variant of resnet18_medmnist", test_variant=True)


_register_zoo()




def resolve_kwargs(name: str, image_size: int, kwargs: dict | None = None) -> dict:
    """The full constructor kwargs a zoo model is built with (defaults + overrides), so a
    checkpoint records exactly what it was built from."""
    entry = get_entry(name)
    resolved = dict(entry.defaults(image_size))
    overrides = dict(kwargs or {})
    accepted = set(inspect.signature(entry.build).parameters) - {"self", "num_classes", "in_channels"}
    unknown = set(overrides) - accepted
    if unknown:
        raise ModelError(
            f"model {name} does not take {', '.join(sorted(unknown))}: it takes {', '.join(sorted(accepted))}"
        )
    for key, value in overrides.items():
        _check_kwarg(name, key, value)
    resolved.update(overrides)
    for k, v in resolved.items():
        if isinstance(v, list):
            resolved[k] = tuple(v)
    return resolved


MAX_KWARG_INT, MAX_KWARG_LIST, MAX_BLOCKS = 65_536, 16, 256  # far above any zoo model's settings


def _check_kwarg(model: str, key: str, value) -> None:
    """Constructor arguments may come from a file: numbers, strings or short lists of numbers,
    within sizes that build in seconds (a model is sized on the meta device before it is built)."""
    import math

    items = list(value) if isinstance(value, (list, tuple)) else [value]
    ok = len(items) <= MAX_KWARG_LIST and all(
        v is None or isinstance(v, (bool, str)) and len(str(v)) <= 100
        or isinstance(v, int) and abs(v) <= MAX_KWARG_INT
        or isinstance(v, float) and math.isfinite(v) and abs(v) <= MAX_KWARG_INT for v in items)
    if ok and key in ("depths", "layers"):  # blocks per stage
        ok = sum(v for v in items if isinstance(v, int)) <= MAX_BLOCKS
    if not ok:
        raise ModelError(f"model {model}: argument {key}={str(value)[:80]} is outside what edgemed builds "
                         f"(numbers up to {MAX_KWARG_INT:,}, lists up to {MAX_KWARG_LIST}, at most {MAX_BLOCKS} "
                         "blocks): fix --model-kwargs, or the checkpoint's metadata was altered")


def get_entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(REGISTRY)} "
                         "(see `edgemed models`), or path/to/file.py:factory")
    return REGISTRY[name]


def create_model(name: str, num_classes: int, in_channels: int = 3, image_size: int | None = None,
                 pretrained: str | bool | None = None, **kwargs):
    """Build a model by registry name or user factory; checks the input size fits it.
    `pretrained`: a data set with shipped weights (`edgemed models` lists them), or True for the
    model's only one; the model then has those weights (and their class count and channels).

    Example: `create_model("mednext_small", 2, 1, pretrained="pneumoniamnist")`.
    """
    if pretrained:
        return _pretrained(name, num_classes, in_channels, pretrained, kwargs)
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}: use a data set with two or "
                         "more classes")
    if is_user_factory(name):
        return _user_model(name, num_classes, in_channels, image_size, kwargs)
    entry = get_entry(name)
    size = image_size or entry.default_image_size
    resolved = resolve_kwargs(name, size, kwargs)
    try:
        model = entry.build(num_classes=num_classes, in_channels=in_channels, **resolved)
    except Exception as e:  # arguments may come from a file: any failure is a bad argument
        raise ModelError(f"model {name}: invalid arguments {resolved} ({e.__class__.__name__}: "
                         f"{str(e)[:200]}): fix --model-kwargs, or the checkpoint's metadata was altered") from None
    if size < model.min_image_size:
        raise ModelError(
            f"image size {size} is too small for {name}: it needs at least {model.min_image_size} px "
            f"(pass --image-size {model.min_image_size} or more)"
        )
    return model


def _load_factory(spec: str):
    from edgemed.trust import check_spec

    try:
        check_spec(spec)
    except Exception as e:
        raise ModelError(str(e)) from None
    target, _, attr = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ModelError(f"user model file {path} not found: check the path in path/to/file.py:factory")
            mod_name = f"edgemed_user_{abs(hash(str(path.resolve())))}"
            mod = sys.modules.get(mod_name)
            if mod is None:
                module_spec = importlib.util.spec_from_file_location(mod_name, path)
                mod = importlib.util.module_from_spec(module_spec)
                sys.modules[mod_name] = mod
                module_spec.loader.exec_module(mod)
        else:
            from edgemed.fileio import quiet_native

            with quiet_native():  # libraries such as MONAI report their optional imports on import
                mod = importlib.import_module(target)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"could not import user model {target}: {e.__class__.__name__}: {e}; fix the error in "
                         "that code, or install the package it imports") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise ModelError(f"{target} has no callable {attr!r}: after the colon, name a function or class it "
                         "defines (path/to/file.py:factory)")
    return factory


# how factories name the class count and input channels (timm, torchvision, MONAI, plain code)
CLASS_ARGS = ("num_classes", "out_channels", "n_classes", "classes", "out_features")
CHANNEL_ARGS = ("in_channels", "in_chans", "n_input_channels", "num_channels", "input_channels")


def _user_model(spec, num_classes, in_channels, image_size, kwargs):
    factory = _load_factory(spec)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    call = dict(kwargs)
    for names, value, always in ((CLASS_ARGS, num_classes, True), (CHANNEL_ARGS, in_channels, True),
                                 (("image_size",), image_size, False)):
        # a factory's own spelling (MONAI: out_channels), unless the user set it in kwargs; a
        # `**kwargs` factory gets the class count and channels, the input size only when it names it
        name = next((n for n in names if n in params), names[0] if takes_any and always else None)
        if name is not None and name not in call and not any(n in call for n in names):
            call[name] = value
    try:
        model = factory(**call)
    except TypeError as e:
        raise ModelError(f"user model {spec}: {e}: give its other arguments with --model-kwargs") from None
    except Exception as e:  # the user's code failed: say so in one line
        raise ModelError(f"user model {spec} failed to build ({e.__class__.__name__}: {str(e)[:160]}): fix that code "
                         "or its --model-kwargs") from None
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"user model {spec} returned a {type(model).__name__}, not a torch.nn.Module: name the "
                         "function that builds the model")
    return model


def _pretrained(name, num_classes, in_channels, dataset, kwargs):
    from edgemed.checkpoint import load_checkpoint
    from edgemed.models.pretrained import pretrained_checkpoint

    if kwargs:
        raise ModelError("shipped weights fix the architecture: leave out the constructor arguments")
    path = pretrained_checkpoint(name, dataset)
    ckpt, model = load_checkpoint(path)
    if ckpt.model_name != name:
        raise ModelError(f"{path} holds a {ckpt.model_name}, not a {name}: reinstall edgemed")
    if (ckpt.num_classes, ckpt.in_channels) != (num_classes, in_channels):
        raise ModelError(f"the shipped {name} weights are for {ckpt.num_classes} classes and {ckpt.in_channels} "
                         f"channel(s) ({', '.join(ckpt.class_names)}): build it with those, or fine-tune them on "
                         f"your data with `edgemed train {name} --pretrained {ckpt.dataset.get('name')} --dataset "
                         "YOURS` (a new head for its classes; the same channels)")
    return model


def replace_head(model, ckpt, num_classes: int) -> list[str]:
    """Swap the layers of a built model whose shape depends on the class count (found by sizing the
    checkpoint's architecture for two class counts on the meta device) for fresh ones with
    `num_classes` outputs: fine-tuning shipped or other weights on data with other classes.
    Returns the replaced modules' names."""
    from dataclasses import replace

    import torch.nn as nn

    def shapes(k):
        try:
            built = replace(ckpt, num_classes=k).architecture("meta")
        except EdgemedError:
            raise
        except Exception:  # trusted user code that cannot be built on the meta device
            built = replace(ckpt, num_classes=k).architecture()
        return {n: t.shape for n, t in built.state_dict().items()}

    now, other = shapes(ckpt.num_classes), shapes(ckpt.num_classes + 1)
    heads = sorted({n.rpartition(".")[0] for n in now if now[n] != other.get(n)})
    for name in heads:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if type(old) is nn.Linear:
            new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        elif type(old) is nn.Conv2d and old.groups == 1:
            new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding, old.dilation,
                            bias=old.bias is not None, padding_mode=old.padding_mode)
        else:
            raise ModelError(f"cannot give {ckpt.model_name} a head for {num_classes} classes: its {name} is a "
                             f"{type(old).__name__}, not a linear or convolution layer; train it from scratch")
        setattr(parent, attr, new.to(next(old.parameters()).dtype))
    if not heads:
        raise ModelError(f"{ckpt.model_name}'s layers do not depend on its class count: cannot change it; train it "
                         "from scratch")
    return heads


def list_models(include_tests: bool = False) -> list[ModelEntry]:
    return [e for e in REGISTRY.values() if include_tests or not e.test_variant]


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and matmuls), via torch's
    FlopCounterMode (which counts 2 FLOPs per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(input_shape))
    model.train(was_training)
    return counter.get_total_flops() // 2


def deploy_form(model):
    """The model as exporters and quantizers see it: a copy in which every module with a
    `fused_for_deploy()` (MedNeXt's parallel depth-wise branches) is replaced by that fused form,
    the same function in fewer ops. A model without such modules is returned as is. Layer names
    in ignored scopes and sensitivity reports are those of this form."""
    import copy

    if not any(hasattr(m, "fused_for_deploy") for m in model.modules()):
        return model
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if hasattr(child, "fused_for_deploy"):
                setattr(parent, child_name, child.fused_for_deploy())
    return model.eval()
