"""Every error a user can get says what to do next (issue 19, item 6): cheap failures through the
real CLI, each checked for exit 2, one `error:` line, the problem and the fix."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import assert_clean_error, write_npz

runner = CliRunner()


def _recipe(tmp_path, text: str):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def _bad_labels(tmp_path):
    return write_npz(tmp_path / "neg.npz", train_labels=-np.ones((20, 1), np.int8))


def _one_class(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "normal").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "imgs" / "normal" / "a.png")
    return f"folder:{tmp_path / 'imgs'}"


def _empty_dir(tmp_path):
    (tmp_path / "b").mkdir()
    return tmp_path / "b"


# (args built from tmp_path, fragments of the problem and of the fix)
CASES = {
    "empty recipe": (lambda t: ["run", _recipe(t, "")],
                     ["the recipe is empty", "give at least model, dataset and stages", "benchmarks/recipes/"]),
    "recipe not found": (lambda t: ["run", t / "nope.yaml"],
                         ["recipe not found", "check the path"]),
    "recipe missing key": (lambda t: ["run", _recipe(t, "model: {zoo: mednext_micro}\n")],
                           ["missing required key", "a recipe needs model, dataset and stages"]),
    "recipe bad YAML": (lambda t: ["run", _recipe(t, "model: [zoo\n")],
                        ["not valid YAML", "fix the syntax at that line"]),
    "checkpoint not found": (lambda t: ["evaluate", t / "none.safetensors"],
                             ["checkpoint not found", "check the path", "edgemed train --out"]),
    "bundle not found": (lambda t: ["bundle", "inspect", t / "nobundle"],
                         ["bundle folder not found", "check the path", "edgemed export --out"]),
    "not a bundle": (lambda t: ["bundle", "inspect", _empty_dir(t)],
                     ["is not an edgemed bundle", "export it again"]),
    "results not found": (lambda t: ["report", t / "none.json", "--out", t / "rep"],
                          ["results file not found", "edgemed bench BUNDLE --out RESULTS.json"]),
    "data file missing": (lambda t: ["data", "info", t / "none.npz"],
                          ["no such data file", "check the path", "edgemed data list"]),
    "image folder missing": (lambda t: ["data", "info", f"folder:{t / 'nodir'}"],
                             ["no such image folder", "check the path"]),
    "one class folder": (lambda t: ["data", "info", _one_class(t)],
                         ["at least two class sub-folders", "in its own sub-folder"]),
    "negative labels": (lambda t: ["data", "info", _bad_labels(t)],
                        ["negative labels", "number the classes 0..K-1"]),
    "model kwargs not an object": (lambda t: ["train", "resnet18_micro", "-d", "breastmnist",
                                              "--model-kwargs", "[1]"],
                                   ["--model-kwargs must be a JSON object", "e.g."]),
    "calibration too small": (lambda t: ["calibration", "build", "breastmnist", "--size", "1"],
                              ["--size 1 is too small", "or more"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_says_what_to_do(name, tmp_path):
    build, fragments = CASES[name]
    result = runner.invoke(app, [str(a) for a in build(tmp_path)])
    assert_clean_error(result, *fragments)
