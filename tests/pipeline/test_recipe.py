import pytest

from edgemed.pipeline.recipe import RecipeError, load_recipe

GOOD = """\
name: t
model: {zoo: mednext_micro}
dataset: breastmnist
stages:
  train: {epochs: 1}
  export: {formats: [onnx]}
  bench: {threads: 1, duration: 0.2}
  report: {}
"""


def write(tmp_path, text, name="r.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_valid_recipe_parses(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    assert r.stage_order == ["train", "export", "bench", "report"]
    assert r.accuracy_bound == {"metric": "accuracy", "max_drop": 0.5} and r.targets == ["cpu"]


@pytest.mark.parametrize("text, line, fragment", [
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochz: 1}"), 5, "unknown key 'epochz' in stages.train"),
    (GOOD.replace("  report: {}", "  deploy: {}"), 8, "unknown stage 'deploy'"),
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: many}"), 5, "stages.train.epochs must be int"),
    (GOOD.replace("dataset: breastmnist", "dataset: breastmnist\nmodle: x"), 4, "unknown key 'modle'"),
    (GOOD.replace("{zoo: mednext_micro}", "{zoo: vgg}"), 2, "unknown zoo model 'vgg'"),
    (GOOD.replace("{zoo: mednext_micro}", "{zoo: mednext_micro, checkpoint: a.safetensors}"), 2, "exactly one of zoo"),
    (GOOD + "targets: [fpga]\n", 9, "unknown target 'fpga'"),
    (GOOD + "accuracy_bound: {metric: accuracy, max_drop: -1}\n", 9, "accuracy_bound.max_drop must be a finite number of points ≥ 0"),
    (GOOD + "accuracy_bound: {metric: accuracy, max_drop: .nan}\n", 9, "accuracy_bound.max_drop must hold finite numbers only"),
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: 1, lr: .inf}"), 5, "stages.train.lr must hold finite numbers only"),
    # the training settings' own checks, in the recipe's words, at --check time
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: 1, mixup: 11}"), 5, "stages.train: mixup and cutmix are Beta"),
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: 1, mixup: 0.2, feature_smoothing: 0.1}"), 5,
     "pass feature_smoothing 0 with mixup/cutmix"),
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: 1, precision: bf17}"), 5, "unknown precision 'bf17'"),
    (GOOD.replace("  train: {epochs: 1}", "  train: {epochs: 1, monitor: '--acc'}"), 5, "unknown monitor '--acc'"),
    (GOOD.replace("{zoo: mednext_micro}", "{zoo: mednext_micro, kwargs: {drop_path: .nan}}"), 2,
     "model.kwargs must hold finite numbers only"),
    (GOOD.replace("  export: {formats: [onnx]}\n", ""), 5, "bench stage needs an export or quantize stage"),
    (GOOD.replace("stages:", "stages: [train"), 5, "not valid YAML"),
])
def test_invalid_recipes_name_the_line_and_key(tmp_path, text, line, fragment):
    p = write(tmp_path, text)
    with pytest.raises(RecipeError) as e:
        load_recipe(p)
    msg = str(e.value)
    assert fragment in msg
    assert msg.startswith(f"{p}:{line}:"), msg


def test_missing_required_and_empty(tmp_path):
    with pytest.raises(RecipeError, match="missing required key 'dataset'"):
        load_recipe(write(tmp_path, "model: {zoo: mednext_micro}\nstages: {train: {}}\n"))
    with pytest.raises(RecipeError, match="empty"):
        load_recipe(write(tmp_path, ""))
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "none.yaml")


def test_shipped_recipes_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    recipes = sorted((root / "benchmarks" / "recipes").glob("*.yaml")) + sorted((root / "edgemed" / "recipes").glob("*.yaml"))
    assert len(recipes) >= 5
    for p in recipes:
        load_recipe(p)


def test_every_train_option_of_a_recipe_is_a_train_parameter():
    import inspect

    from edgemed.pipeline.recipe import STAGE_OPTIONS
    from edgemed.train import train

    # the runner passes a recipe's train options to train() by name: one it does not take would
    # fail only after the recipe was accepted
    assert set(STAGE_OPTIONS["train"]) <= set(inspect.signature(train).parameters)
