"""The CLI driven through Typer's CliRunner: real commands, real data slices, bad input."""

import json

import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import assert_clean_error, needs_data, write_npz

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])




@needs_data
def test_data_list_info_verify():
    r = run("data", "list", "--json")
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert "pneumoniamnist" in rows and rows["pathmnist"]["location"] in ("download on first use",) or rows["pathmnist"]["location"].endswith(".npz")
    r = run("data", "info", "bloodmnist", "--json")
    info = json.loads(r.stdout)
    assert info["splits"]["test"]["shape"] == [3421, 28, 28, 3] and info["md5_matches_official"]
    r = run("data", "verify", "pneumoniamnist", "breastmnist")
    assert r.exit_code == 0 and "ok" in r.stdout


def test_models_lists_params_and_macs():
    r = run("models", "--json")
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert {"convnext_med", "convnext_med_28", "mednext_small", "mednext_base", "resnet18_medmnist"} <= set(rows)
    assert rows["resnet18_medmnist"]["macs"] > 4e8
    for bad in (0, 2, 100000):  # grey or RGB, as checkpoints hold (100000 once used 23 GB)
        assert_clean_error(run("models", "--channels", bad), "--channels must be 1 (grey) or 3 (RGB)")


@needs_data
def test_train_then_evaluate(tmp_path):
    ck = tmp_path / "m.safetensors"
    r = run("train", "resnet18_micro", "--dataset", "breastmnist", "--epochs", "1", "--batch-size", "32",
            "--limit-train", "64", "--limit-eval", "40", "--out", ck)
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.stdout and ck.exists()
    r = run("evaluate", ck, "--split", "val", "--n-boot", "50", "--json")
    m = json.loads(r.stdout)
    assert m["split"] == "val" and m["n"] == 78 and len(m["confusion_matrix"]) == 2


@needs_data
@pytest.mark.parametrize("args, fragments", [
    (["train", "nosuchnet", "-d", "breastmnist"], ["unknown model 'nosuchnet'"]),
    (["train", "resnet18_micro", "-d", "nosuchmnist"], ["unknown data set"]),
    (["train", "resnet18_micro", "-d", "breastmnist", "--model-kwargs", '{"depth": 3}'], ["does not take depth"]),
    (["train", "resnet18_micro", "-d", "breastmnist", "--model-kwargs", "{bad"], ["JSON"]),
    (["train", "resnet18_micro", "-d", "breastmnist", "--image-size", "4"], ["too small"]),
    (["train", "resnet18_micro", "-d", "chestmnist", "--data-dir", "/nonexistent"], ["not found", "EDGEMED_DATA_DIR"]),
    (["evaluate", "/nonexistent.safetensors"], ["checkpoint not found"]),
])
def test_bad_input_is_one_clean_line(args, fragments, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    assert_clean_error(run(*args), *fragments)


def test_corrupt_and_inconsistent_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert_clean_error(run("data", "info", bad), "not a readable .npz")
    import numpy as np

    p = write_npz(tmp_path / "m.npz", val_labels=np.zeros((5, 1), np.uint8))
    assert_clean_error(run("train", "resnet18_micro", "-d", p), "6 images but 5 labels")


@needs_data
def test_existing_output_needs_force(tmp_path):
    ck = tmp_path / "m.safetensors"
    ck.write_bytes(b"keep me")
    assert_clean_error(run("train", "resnet18_micro", "-d", "breastmnist", "--out", ck), "already exists", "--force")
    assert ck.read_bytes() == b"keep me"


def test_debug_shows_the_traceback():
    r = runner.invoke(app, ["--debug", "evaluate", "/nonexistent.safetensors"])
    assert r.exit_code != 0 and r.exception is not None
