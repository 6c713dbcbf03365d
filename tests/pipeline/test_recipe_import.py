"""Recipes that start from the user's own model: `model: {factory: net.py:build, weights: w.pt}`
imports the weights (not an edgemed checkpoint), `model: {onnx: model.onnx}` starts from ONNX."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import assert_clean_error, needs_data

pytestmark = needs_data
runner = CliRunner()
NET = ("import torch\n"
       "def build(num_classes, in_channels=1):\n"
       "    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, 8, 3, padding=1), torch.nn.ReLU(),\n"
       "                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, num_classes))\n")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def user_files(folder):
    (folder / "net.py").write_text(NET)
    ns: dict = {}
    exec(NET, ns)
    torch.manual_seed(0)
    model = ns["build"](2).eval()
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, folder / "w.ckpt")
    torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), str(folder / "m.onnx"), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
                      opset_version=17, dynamo=False)


def test_factory_weights_and_onnx_recipes_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    user_files(tmp_path)
    (tmp_path / "w.yaml").write_text(
        "name: mine\nmodel: {factory: net.py:build, weights: w.ckpt, mean: 0.5, std: 0.5}\n"
        "dataset: pneumoniamnist\nstages:\n  export: {formats: [onnx], precision: [fp32], parity_images: 32}\n")
    # a recipe naming code: refused until the user trusts it
    assert_clean_error(run("run", tmp_path / "w.yaml", "--check"), "--trust-code")
    r = run("run", tmp_path / "w.yaml", "--trust-code")
    assert r.exit_code == 0, r.output
    lineage = json.loads((tmp_path / "runs/mine/export/bundle/edgemed.json").read_text())["provenance"]["lineage"]
    assert lineage[0]["op"] == "import" and lineage[0]["nested_under"] == "state_dict"
    r = run("run", tmp_path / "w.yaml", "--trust-code")  # unchanged: every stage reused
    assert r.exit_code == 0 and r.output.count("reusing") == 2, r.output
    (tmp_path / "o.yaml").write_text(
        "name: onnx-run\nmodel: {onnx: m.onnx, mean: 0.5, std: 0.5}\ndataset: pneumoniamnist\nstages:\n"
        "  quantize: {formats: [onnx], val_limit: 64, max_drop: 100}\n"
        "  bench: {threads: 1, iterations: 10, limit: 32, memory: false, large_batch: 0}\n")
    r = run("run", tmp_path / "o.yaml")  # an ONNX file names no code: no flag needed
    assert r.exit_code == 0, r.output
    ids = {a["id"] for a in json.loads((tmp_path / "runs/onnx-run/quantize/bundle/edgemed.json").read_text())["artifacts"]}
    assert ids == {"onnx-fp32", "onnx-int8"}


def test_recipe_model_entries_are_checked(tmp_path):
    user_files(tmp_path)
    cases = {
        "model: {onnx: m.onnx}\nstages: {train: {epochs: 1}}": "cannot be trained or pruned",
        "model: {checkpoint: w.ckpt, mean: 0.5}\nstages: {export: {}}": "describes imported weights",
        "model: {onnx: m.onnx, zoo: mednext_micro}\nstages: {export: {}}": "exactly one of",
        "model: {zoo: mednext_micro, weights: w.ckpt}\nstages: {train: {epochs: 1}}": "remove the train stage",
    }
    for body, fragment in cases.items():
        (tmp_path / "r.yaml").write_text("name: r\ndataset: pneumoniamnist\n" + body + "\n")
        assert_clean_error(run("run", tmp_path / "r.yaml", "--check"), fragment)
