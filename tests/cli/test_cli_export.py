import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import assert_clean_error, needs_data

pytestmark = needs_data
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def images(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("imgs")
    d = np.load(data_dir / "pneumoniamnist.npz")
    for i in range(4):
        Image.fromarray(d["test_images"][i]).save(folder / f"{i}.png")
    Image.fromarray(np.stack([d["test_images"][4]] * 3, -1)).resize((64, 48)).save(folder / "rgb_big.jpg")
    (folder / "notes.png").write_text("not an image")
    return folder


def test_export_command_writes_a_bundle(tiny_checkpoint, tmp_path):
    r = run("export", tiny_checkpoint, "--formats", "onnx,tflite", "--out", tmp_path / "b", "--parity-images", "32")
    assert r.exit_code == 0, r.output
    assert "onnx-fp32" in r.stdout and "tflite-fp32" in r.stdout
    assert (tmp_path / "b" / "edgemed.json").exists()


def test_export_bad_inputs(tiny_checkpoint, tmp_path):
    assert_clean_error(run("export", tiny_checkpoint, "--formats", "onnx,caffe", "--out", tmp_path / "x"), "unknown format caffe")
    assert_clean_error(run("export", tiny_checkpoint, "--precision", "int4", "--out", tmp_path / "x"), "unknown precision int4")
    assert_clean_error(run("export", tmp_path / "none.safetensors"), "checkpoint not found")
    assert not (tmp_path / "x").exists()


def test_bundle_inspect_and_verify(tiny_bundle, tmp_path):
    r = run("bundle", "inspect", tiny_bundle)
    assert r.exit_code == 0 and "openvino-fp16" in r.stdout
    r = run("bundle", "inspect", tiny_bundle, "--json")
    assert json.loads(r.stdout)["schema"] == "edgemed-bundle"
    assert run("bundle", "verify", tiny_bundle).exit_code == 0
    copy = tmp_path / "c"
    shutil.copytree(tiny_bundle, copy)
    (copy / "model_fp32.tflite").write_bytes(b"\x00" * 10)
    r = run("bundle", "verify", copy)
    assert r.exit_code == 2 and "model_fp32.tflite" in r.output
    assert_clean_error(run("bundle", "inspect", copy), "model_fp32.tflite")
    assert_clean_error(run("bundle", "inspect", tmp_path / "nothing"), "bundle folder not found")


def test_predict_reports_bad_files_and_converts_the_rest(tiny_bundle, images):
    r = run("predict", tiny_bundle, images, "--json", "--top-k", "2", "--format", "openvino")
    assert r.exit_code == 3  # some files failed, the others ran
    out = json.loads(r.stdout)
    assert out["artifact"] == "openvino-fp32"
    preds = {p["file"].rsplit("/", 1)[1]: p for p in out["predictions"]}
    assert not preds["notes.png"]["ok"] and "not a readable image" in preds["notes.png"]["error"]
    assert preds["rgb_big.jpg"]["ok"]  # RGB 64×48 converted to the spec's 28×28 grey
    assert len(preds["0.png"]["top"]) == 2
    assert abs(sum(t["probability"] for t in preds["0.png"]["top"]) - 1) < 1e-5


def test_predict_is_the_same_on_every_format(tiny_bundle, images):
    probs = {}
    for fmt in ("onnx", "openvino", "tflite", "torch"):
        r = run("predict", tiny_bundle, images / "0.png", images / "1.png", "--format", fmt, "--json")
        assert r.exit_code == 0, r.output
        probs[fmt] = [p["probability"] for p in json.loads(r.stdout)["predictions"]]
    for fmt in ("onnx", "openvino", "tflite"):
        np.testing.assert_allclose(probs[fmt], probs["torch"], atol=1e-4)


def test_predict_bad_inputs(tiny_bundle, images, tmp_path):
    assert_clean_error(run("predict", tiny_bundle, images / "notes.png"), "no image could be read")
    assert_clean_error(run("predict", tiny_bundle, images, "--artifact", "caffe-int3"), "has no artifact 'caffe-int3'")
    assert_clean_error(run("predict", tmp_path, images), "edgemed.json is missing")
