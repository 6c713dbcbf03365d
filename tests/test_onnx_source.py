"""An ONNX file as the model: import → bundle, quantize (ort / NNCF on ONNX, NNCF on OpenVINO)
with accuracy control, export to OpenVINO with parity, bench; what needs PyTorch is refused."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from onnx import helper
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from tests.conftest import assert_clean_error, needs_data

pytestmark = needs_data
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def small_cnn(channels=1, classes=2):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 16, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, classes)).eval()


def to_onnx(model, path, shape=(1, 1, 28, 28), dynamic=True, opset=17, **export_kw):
    torch.onnx.export(model, (torch.zeros(*shape),), str(path), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}} if dynamic else None,
                      opset_version=opset, dynamo=False, **export_kw)
    return path


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    path = to_onnx(small_cnn(), d / "hand.onnx")
    r = run("import", path, "--classes", "normal,pneumonia", "--mean", 0.5, "--std", 0.5,
            "--dataset", "pneumoniamnist", "--out", d / "bundle")
    assert r.exit_code == 0, r.output
    return d


def test_import_writes_a_checked_bundle(onnx_bundle):
    m = json.loads((onnx_bundle / "bundle" / "edgemed.json").read_text())
    assert [a["id"] for a in m["artifacts"]] == ["onnx-fp32"]
    assert m["preprocess"]["size"] == [28, 28] and m["class_names"] == ["normal", "pneumonia"]
    assert m["provenance"]["dataset"]["name"] == "pneumoniamnist"
    assert m["artifacts"][0]["details"]["checked_outputs"] == [2, 2]


def test_quantize_export_and_bench_an_onnx_source(onnx_bundle, tmp_path):
    from edgemed.compress.calibration import build_calibration

    cal = build_calibration("pneumoniamnist", size=32, out=tmp_path / "cal.json")
    r = run("quantize", onnx_bundle / "bundle", "--calib", cal, "--max-drop", 1, "--val-limit", 96,
            "--out", tmp_path / "q", "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{\n"):])  # in-process, NNCF's progress lands on stdout too
    assert {row["artifact"].split("-")[0] for row in result["results"]} == {"onnx", "openvino"}
    assert all(row["bound_met"] for row in result["results"])
    m = json.loads((tmp_path / "q" / "edgemed.json").read_text())
    int8 = next(a for a in m["artifacts"] if a["id"] in ("onnx-int8", "onnx-mixed"))
    model = onnx.load(str(tmp_path / "q" / int8["file"]))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)  # really integer
    r = run("export", onnx_bundle / "bundle", "--formats", "openvino",
            "--precision", "fp32,fp16", "--out", tmp_path / "e")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "e" / "edgemed.json").read_text())
    assert {a["id"] for a in m["artifacts"]} == {"onnx-fp32", "openvino-fp32", "openvino-fp16"}
    assert next(a for a in m["artifacts"] if a["id"] == "openvino-fp32")["parity"]["top1_agreement"] == 1.0
    r = run("bench", tmp_path / "q", "--iterations", 20, "--threads", 1, "--large-batch", 0, "--no-memory",
            "--limit", 64, "--out", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {row["artifact"] for row in rows} >= {"onnx-fp32", "openvino-int8"} or len(rows) >= 3


def test_a_bare_onnx_file_with_metadata_props(tmp_path):
    path = to_onnx(small_cnn(), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    for k, v in {"classes": '["normal", "pneumonia"]', "mean": "[0.5]", "std": "[0.5]"}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.save(model, str(path))
    r = run("bench", path, "--iterations", 10, "--large-batch", 0, "--no-memory", "--no-accuracy")
    assert r.exit_code == 0, r.output
    assert "onnx-fp32" in r.output


def test_what_an_onnx_file_cannot_do_is_one_line(onnx_bundle, tmp_path):
    b = onnx_bundle / "bundle"
    assert_clean_error(run("prune", b, "--target-macs", 0.5, "--out", tmp_path / "p.safetensors"),
                       "pruning needs the PyTorch model", "edgemed import net.py:build")
    assert_clean_error(run("export", b, "--formats", "tflite", "--out", tmp_path / "t"), "tflite needs the PyTorch model")
    assert_clean_error(run("quantize", b, "--calib", "x.json", "--sensitivity", "--out", tmp_path / "s"),
                       "--sensitivity name PyTorch layers")
    assert_clean_error(run("quantize", b, "--calib", "x.json", "--base-bundle", b, "--out", tmp_path / "q"),
                       "--base-bundle adds an `edgemed export` bundle of a PyTorch checkpoint")
    assert_clean_error(run("bench", onnx_bundle / "hand.onnx", "--iterations", 5), "--classes", "edgemed import")
    assert not any((tmp_path / n).exists() for n in ("p.safetensors", "t", "s", "q"))


def test_bad_onnx_files_are_refused(tmp_path):
    from edgemed.onnx_source import inspect_onnx

    class TwoInputs(torch.nn.Module):
        def forward(self, a, b):
            return a.mean((2, 3)) + b.mean((2, 3))

    torch.onnx.export(TwoInputs(), (torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)), str(tmp_path / "two.onnx"),
                      opset_version=17, dynamo=False)
    with pytest.raises(EdgemedError, match="2 inputs"):
        inspect_onnx(tmp_path / "two.onnx")
    path = to_onnx(small_cnn(), tmp_path / "dyn.onnx")
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "c"
    onnx.save(model, str(path))
    r = run("import", path, "--classes", "a,b", "--input-size", 28, "--channels", 1, "--out", tmp_path / "b")
    assert_clean_error(r, "no static channel count")
    old = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 8, 8])],
                                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 1, 8, 8])]),
                            opset_imports=[helper.make_opsetid("", 11)])
    onnx.save(old, str(tmp_path / "old.onnx"))
    with pytest.raises(EdgemedError, match="opset 11 is older than 13"):
        inspect_onnx(tmp_path / "old.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(EdgemedError, match="not a valid ONNX model"):
        inspect_onnx(tmp_path / "junk.onnx")
    r = run("import", to_onnx(small_cnn(classes=3), tmp_path / "k3.onnx"), "--classes", "a,b", "--out", tmp_path / "c")
    assert_clean_error(r, "3 scores per image", "2 classes")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_an_nn_module_in_memory_quantizes_without_files_first(tmp_path):
    import edgemed
    from edgemed.compress.calibration import build_calibration
    from edgemed.data.preprocess import PreprocessSpec

    cal = build_calibration("pneumoniamnist", size=32, out=tmp_path / "cal.json")
    r = edgemed.quantize(small_cnn(), preprocess=PreprocessSpec((28, 28), 1, (0.5,), (0.5,)),
                         classes=["normal", "pneumonia"], dataset="pneumoniamnist", calib=cal, formats=["onnx"],
                         val_limit=64, max_drop=100, out=tmp_path / "q", progress=False)
    assert r.recommended == "onnx-int8" and (tmp_path / "q" / "edgemed.json").exists()
    with pytest.raises(EdgemedError, match="needs classes"):
        edgemed.quantize(small_cnn(), calib=cal, out=tmp_path / "x")


def test_optimize_searches_an_onnx_source(onnx_bundle, tmp_path):
    from edgemed.compress.calibration import build_calibration
    from edgemed.export.bundle import load_bundle

    cal = build_calibration("pneumoniamnist", size=32, out=tmp_path / "cal.json")
    r = run("optimize", onnx_bundle / "bundle", "--calib", cal, "--budget-minutes", 5, "--val-limit", 64,
            "--rounds", 10, "--formats", "onnx,openvino", "--out", tmp_path / "opt")
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "opt" / "optimize.json").read_text())
    assert {c["name"] for c in s["candidates"]} == {"full-onnx-performance", "full-openvino-performance",
                                                   "full-openvino-mixed"}
    assert s["reference_runtime"] == "the FP32 ONNX on onnxruntime" and not s["sensitivity"]
    rec = load_bundle(tmp_path / "opt" / "recommended")
    assert "onnx-fp32" in {a.id for a in rec.artifacts} and rec.recommended == s["recommended"]["artifact"]
    assert_clean_error(run("optimize", onnx_bundle / "bundle", "--pruned", "x.safetensors", "--out", tmp_path / "o2"),
                       "--pruned")
