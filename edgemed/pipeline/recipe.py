"""Recipes: one YAML file naming the model, the data, the stages and their options, the targets
and the accuracy bound. Validated against a schema before any work starts; an error names the
file, line and key.

```yaml
name: mednext-pneumonia
model: {zoo: mednext_small}            # or {checkpoint: m.safetensors}, {factory: net.py:build, weights: w.pt},
                                       # or {onnx: model.onnx} (weights/onnx are imported: see `edgemed import`)
dataset: pneumoniamnist
stages:
  train: {epochs: 20}
  prune: {target_macs: 0.5, finetune_epochs: 4, distill: true}
  export: {formats: [onnx, openvino, tflite], precision: [fp32, fp16]}
  quantize: {formats: [openvino, onnx, tflite], max_drop: 0.5}
  bench: {threads: 2, duration: 5}
  report: {}
targets: [cpu]
accuracy_bound: {metric: accuracy, max_drop: 0.5}
```
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edgemed.bounds import check_max_drop
from edgemed.errors import EdgemedError
from edgemed.fileio import check_yaml_expansion, read_bounded

MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of YAML
MAX_RECIPE_NODES = 20_000  # values after expanding YAML aliases (an alias bomb expands to billions)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # the run folder's name: no `/`, no `..`

STAGES = ("train", "prune", "export", "quantize", "bench", "report")  # execution order

# option → (type(s), description); types: int, float, bool, str, list, dict
STAGE_OPTIONS: dict[str, dict[str, tuple]] = {
    "train": {"epochs": (int,), "batch_size": (int,), "lr": (float, int), "weight_decay": (float, int),
              "image_size": (int,), "seed": (int,), "augment": (str,), "patience": (int,),
              "monitor": (str,), "tie_break": (str,), "precision": (str,), "class_weights": (bool,), "feature_smoothing": (float, int),
              "label_smoothing": (float, int), "warmup_epochs": (float, int), "ema": (float, int), "train_crop": (int,), "mixup": (float, int), "cutmix": (float, int), "limit_train": (int,), "limit_eval": (int,), "threads": (int,)},
    "prune": {"ratio": (float,), "target_macs": (float,), "importance": (str,), "round_to": (int,),
              "finetune_epochs": (int,), "distill": (bool,), "lr": (float,), "batch_size": (int,),
              "limit_train": (int,)},
    "export": {"formats": (list,), "precision": (list,), "parity_images": (int,), "static_batch": (bool,),
               "tflite_layout": (str,)},
    "quantize": {"formats": (list,), "calib": (str,), "preset": (str,), "ignore": (list,), "max_drop": (float, int),
                 "metric": (str,), "routes": (dict,), "model_type": (str,), "sensitivity": (bool,),
                 "calib_limit": (int,), "val_limit": (int,)},
    "bench": {"threads": (int, list), "batch": (int,), "duration": (float, int), "iterations": (int,),
              "warmup": (int,), "split": (str,), "limit": (int,), "large_batch": (int,), "memory": (bool,),
              "artifacts": (list,), "runtimes": (list,)},
    "report": {"max_drop": (float, int), "metric": (str,)},
}
TOP_LEVEL = {"name": (str,), "model": (dict,), "dataset": (str,), "data_dir": (str,), "stages": (dict,),
             "targets": (list,), "accuracy_bound": (dict,), "threads": (int,)}
MODEL_KEYS = {"zoo": (str,), "kwargs": (dict,), "checkpoint": (str,), "factory": (str,), "weights": (str,),
              "onnx": (str,), "input_size": (int,), "mean": (float, int, list), "std": (float, int, list),
              "weights_key": (str,), "allow_missing": (list,), "ignore_unexpected": (list,)}
IMPORT_KEYS = ("input_size", "mean", "std", "weights_key", "allow_missing", "ignore_unexpected")  # weights/onnx
BOUND_KEYS = {"metric": (str,), "max_drop": (float, int)}
TARGETS = ("cpu", "gpu", "cuda", "tensorrt", "npu")


class RecipeError(EdgemedError):
    pass


@dataclass
class Recipe:
    path: Path
    name: str
    model: dict
    dataset: str
    stages: dict[str, dict]
    targets: list[str] = field(default_factory=lambda: ["cpu"])
    accuracy_bound: dict = field(default_factory=lambda: {"metric": "accuracy", "max_drop": 0.5})
    data_dir: str | None = None
    threads: int | None = None

    @property
    def imports(self) -> bool:
        """The model comes as weights or an ONNX file: an `import` stage runs first."""
        return "weights" in self.model or "onnx" in self.model

    @property
    def stage_order(self) -> list[str]:
        return (["import"] if self.imports else []) + [s for s in STAGES if s in self.stages]


def _where(path: Path, node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _type_ok(value, types) -> bool:
    if bool in types:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False  # YAML true/false is not a number
    return isinstance(value, tuple(types))


def _check_mapping(path: Path, node, schema: dict, context: str) -> dict:
    if not isinstance(node, yaml.MappingNode):
        raise RecipeError(f"{_where(path, node)}: {context} must be a mapping of keys to values, e.g. "
                          "`key: value` lines indented under it (see benchmarks/recipes/ for examples)")
    out = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in schema:
            raise RecipeError(f"{_where(path, key_node)}: unknown key {key!r} in {context} "
                              f"(known: {', '.join(sorted(schema))})")
        try:
            value = yaml.safe_load(yaml.serialize(value_node))
        except (ValueError, OverflowError, yaml.YAMLError) as e:  # a date like 2001-99-99, a 5000-digit number
            raise RecipeError(f"{_where(path, value_node)}: {context}.{key} cannot be read ({str(e)[:80]}): "
                              "write a plain number, string or list") from None
        if not _type_ok(value, schema[key]):
            wanted = " or ".join(t.__name__ for t in schema[key])
            raise RecipeError(f"{_where(path, value_node)}: {context}.{key} must be {wanted}, got {value!r}")
        # YAML's .nan and .inf, also inside lists and mappings (the recipe's own sections are checked
        # key by key, for the line of the number)
        if not (context == "the recipe" and isinstance(value, dict)) and not _finite(value):
            name = key if context == "the recipe" else f"{context}.{key}"
            raise RecipeError(f"{_where(path, value_node)}: {name} must hold finite numbers only, got {value!r}")
        if key == "max_drop":
            try:
                check_max_drop(value, f"{context}.{key}")
            except EdgemedError as e:
                raise RecipeError(f"{_where(path, value_node)}: {e}") from None
        out[key] = value
    return out


def _finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate a recipe; every problem names the file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}: check the path (benchmarks/recipes/ holds examples)")
    text = read_bounded(path, "recipe", MAX_RECIPE_BYTES, "is it the right file?")
    try:
        root = yaml.compose(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a UTF-8 text file; a recipe is YAML text") from None
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply to be a recipe; is it the right file? (see benchmarks/recipes/)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise RecipeError(f"{where}: not valid YAML ({getattr(e, 'problem', e)}): fix the syntax at that line "
                          "(indentation, colons, quotes)") from None
    if root is None:
        raise RecipeError(f"{path}: the recipe is empty: give at least model, dataset and stages "
                          "(see benchmarks/recipes/ for examples)")
    check_yaml_expansion(root, MAX_RECIPE_NODES, lambda node, problem: RecipeError(f"{_where(path, node)}: {problem}"))
    top = _check_mapping(path, root, TOP_LEVEL, "the recipe")
    if "name" in top and not NAME.match(top["name"]):
        raise RecipeError(f"{_where(path, dict((k.value, v) for k, v in root.value)['name'])}: name {top['name']!r} "
                          "must be 1-100 letters, digits, '.', '_' or '-' (it names the run folder under runs/): "
                          "rename it, e.g. `name: my-run`, or give the folder with --run-dir")
    nodes = {k.value: v for k, v in root.value}
    for required in ("model", "dataset", "stages"):
        if required not in top:
            raise RecipeError(f"{path}: missing required key {required!r}: a recipe needs model, dataset and "
                              "stages (see benchmarks/recipes/ for examples)")
    model = _check_mapping(path, nodes["model"], MODEL_KEYS, "model")
    sources = [k for k in ("zoo", "checkpoint", "factory", "onnx") if k in model]
    if len(sources) != 1:
        raise RecipeError(f"{_where(path, nodes['model'])}: model needs exactly one of zoo, checkpoint, factory or onnx")
    if "factory" in model and "weights" not in model and "train" not in top["stages"]:
        raise RecipeError(f"{_where(path, nodes['model'])}: a factory model needs weights: or a train stage")
    if "weights" in model and not ("zoo" in model or "factory" in model):
        raise RecipeError(f"{_where(path, nodes['model'])}: model.weights go with a zoo or factory model: "
                          "add `zoo:` or `factory:` (an edgemed checkpoint is `checkpoint:`)")
    stray = [k for k in IMPORT_KEYS if k in model and "weights" not in model and "onnx" not in model]
    if stray:
        raise RecipeError(f"{_where(path, nodes['model'])}: model.{stray[0]} describes imported weights: give "
                          "model.weights (or model.onnx), or remove it")
    if "zoo" in model:
        from edgemed.models import REGISTRY

        if model["zoo"] not in REGISTRY:
            raise RecipeError(f"{_where(path, nodes['model'])}: unknown zoo model {model['zoo']!r} "
                              f"(known: {', '.join(REGISTRY)})")
    stage_nodes = nodes["stages"]
    if not isinstance(stage_nodes, yaml.MappingNode) or not stage_nodes.value:
        raise RecipeError(f"{_where(path, stage_nodes)}: stages must name at least one stage ({', '.join(STAGES)})")
    stages = {}
    for key_node, value_node in stage_nodes.value:
        name = key_node.value
        if name not in STAGE_OPTIONS:
            raise RecipeError(f"{_where(path, key_node)}: unknown stage {name!r} (known: {', '.join(STAGES)})")
        if isinstance(value_node, yaml.ScalarNode) and value_node.value in ("", "null", "~"):
            stages[name] = {}
        else:
            stages[name] = _check_mapping(path, value_node, STAGE_OPTIONS[name], f"stages.{name}")
    if "zoo" in model and "train" not in stages and "weights" not in model:
        raise RecipeError(f"{_where(path, nodes['stages'])}: a zoo model needs a train stage (or give model.checkpoint "
                          "or model.weights)")
    if "onnx" in model and any(s in stages for s in ("train", "prune")):
        raise RecipeError(f"{_where(path, nodes['stages'])}: an ONNX model cannot be trained or pruned here (both need "
                          "the PyTorch model): remove those stages, or give model.factory and model.weights")
    if "train" in stages and ("checkpoint" in model or "weights" in model):
        raise RecipeError(f"{_where(path, nodes['stages'])}: the model is already trained (model.checkpoint or model.weights): remove the train stage")
    if "train" in stages:  # the training settings' own checks, at --check time rather than after earlier stages
        from dataclasses import fields

        from edgemed.train.loop import FitConfig

        known = {f.name for f in fields(FitConfig)} - {"history"}
        try:
            FitConfig(**{k: v for k, v in stages["train"].items() if k in known}).validate()
        except EdgemedError as e:  # in the recipe's words: --label-smoothing → label_smoothing
            flags = "|".join(re.escape("--" + k.replace("_", "-")) for k in sorted(known, key=len, reverse=True))
            said = re.sub(rf"({flags})\b", lambda m: m.group(1)[2:].replace("-", "_"), str(e))
            raise RecipeError(f"{_where(path, dict((k.value, v) for k, v in stage_nodes.value)['train'])}: "
                              f"stages.train: {said}") from None
    if "prune" in stages and ("ratio" in stages["prune"]) == ("target_macs" in stages["prune"]):
        raise RecipeError(f"{_where(path, nodes['stages'])}: stages.prune needs exactly one of ratio or target_macs")
    if "bench" in stages and not any(s in stages for s in ("export", "quantize")):
        raise RecipeError(f"{_where(path, nodes['stages'])}: the bench stage needs an export or quantize stage to bench")
    if "report" in stages and "bench" not in stages:
        raise RecipeError(f"{_where(path, nodes['stages'])}: the report stage needs a bench stage")
    targets = top.get("targets", ["cpu"])
    for t in targets:
        if t not in TARGETS:
            raise RecipeError(f"{_where(path, nodes['targets'])}: unknown target {t!r} (known: {', '.join(TARGETS)})")
    bound = {"metric": "accuracy", "max_drop": 0.5}
    if "accuracy_bound" in nodes:
        bound.update(_check_mapping(path, nodes["accuracy_bound"], BOUND_KEYS, "accuracy_bound"))
    return Recipe(path=path, name=top.get("name", path.stem), model=model, dataset=top["dataset"],
                  stages=stages, targets=list(targets), accuracy_bound=bound, data_dir=top.get("data_dir"),
                  threads=top.get("threads"))
