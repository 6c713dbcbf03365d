"""The shipped weights: listed by `edgemed models`, loaded without pickle by create_model and
`train --pretrained`, and as good on the test split as their metadata says."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from edgemed.checkpoint import read_checkpoint
from edgemed.cli import app
from edgemed.errors import ModelError
from edgemed.models import create_model
from edgemed.models.pretrained import available, weights_path
from tests.conftest import needs_data

SHIPPED = {"mednext_small": ["pneumoniamnist", "sarscov2_ct_224"], "convnext_med_28": ["pneumoniamnist"]}
# the least test accuracy each must keep: PneumoniaMNIST's MedMNIST ResNet-18 reference is 0.854
FLOOR = {"pneumoniamnist": 0.8, "sarscov2_ct_224": 0.9}


def test_the_small_seed_models_ship_weights():
    assert {k: v for k, v in available().items() if k in SHIPPED} == SHIPPED
    for model, sets in SHIPPED.items():
        for dataset in sets:
            path = weights_path(model, dataset)
            assert path.stat().st_size < 12 << 20
            head = path.read_bytes()[:9]  # safetensors: an 8-byte header length, then JSON (no pickle)
            assert head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 20
            # the data set by name, found through the data directory anywhere; no builder's folder
            assert read_checkpoint(path).dataset["source"] == dataset
    r = CliRunner().invoke(app, ["models", "--json"])
    rows = {m["name"]: m for m in json.loads(r.stdout)}
    assert rows["mednext_small"]["pretrained"] == SHIPPED["mednext_small"] and rows["mednext_base"]["pretrained"] == []


@needs_data
@pytest.mark.parametrize("model, dataset", [(m, d) for m, sets in SHIPPED.items() for d in sets])
def test_shipped_weights_load_and_score_what_they_record(model, dataset):
    from edgemed.checkpoint import read_checkpoint
    from edgemed.train import evaluate

    net = create_model(model, 2, 1, pretrained=dataset)
    assert not net.training and all(p.dtype == torch.float32 for p in net.parameters())
    ck = read_checkpoint(weights_path(model, dataset))
    assert ck.training["stored_as"] == "fp16" and ck.training["command"].startswith(f"edgemed train {model}")
    m = evaluate(weights_path(model, dataset), split="test", n_boot=0)
    assert m["accuracy"]["value"] > FLOOR[dataset]
    # the FP16 file scores what its metadata says its FP32 run scored, within a few images
    assert abs(m["accuracy"]["value"] - ck.metrics["test"]["accuracy"]["value"]) < 0.01


def test_pretrained_mismatches_are_one_line():
    with pytest.raises(ModelError, match="2 classes and 1 channel"):
        create_model("mednext_small", 3, 1, pretrained="pneumoniamnist")
    with pytest.raises(ModelError, match="no shipped weights for mednext_small on bloodmnist"):
        create_model("mednext_small", 8, 3, pretrained="bloodmnist")
    with pytest.raises(ModelError, match="mednext_base has no shipped weights"):
        create_model("mednext_base", 2, 1, pretrained=True)
    with pytest.raises(ModelError, match="mednext_small has 2 shipped weights .*name one"):
        create_model("mednext_small", 2, 1, pretrained=True)


def test_pretrained_names_cannot_reach_outside_the_zoo(tmp_path):
    """The model and data set names build a file name: only registered models and the zoo's own
    files are accepted, so no name loads a checkpoint from elsewhere."""
    import shutil

    shutil.copy(weights_path("mednext_small", "pneumoniamnist"), tmp_path / "evil-x.safetensors")
    up = "../" * 12 + str(tmp_path).lstrip("/")
    with pytest.raises(ModelError, match="unknown model"):
        create_model(f"{up}/evil", 2, 1, pretrained="x")
    with pytest.raises(ModelError, match="no shipped weights for mednext_small on "):
        create_model("mednext_small", 2, 1, pretrained=f"../../{up}/evil-x")
    # train looks the shipped file up before it checks the model name
    from edgemed.train import train

    with pytest.raises(ModelError, match="unknown model"):
        train(f"{up}/evil", "pneumoniamnist", out=tmp_path / "t.safetensors", pretrained="x", progress=False)
    assert not (tmp_path / "t.safetensors").exists()


@needs_data
def test_train_starts_from_the_shipped_weights(tmp_path):
    from edgemed.checkpoint import read_checkpoint

    r = CliRunner().invoke(app, ["train", "mednext_small", "--dataset", "pneumoniamnist", "--pretrained",
                                 "pneumoniamnist", "--epochs", "1", "--limit-train", "128", "--limit-eval", "128",
                                 "--out", tmp_path / "ft.safetensors"])
    assert r.exit_code == 0, r.output
    lineage = read_checkpoint(tmp_path / "ft.safetensors").lineage
    assert lineage[-1]["op"] == "train" and lineage[-1]["init"] == "mednext_small-pneumoniamnist.safetensors"
