import json
import shutil

import pytest

from edgemed.errors import BundleError, EdgemedError, ExportError
from edgemed.export import load_bundle, verify_bundle
from edgemed.export.base import unsupported_op
from edgemed.export.parity import within_tolerance
from tests.conftest import EXPORT_FORMATS, needs_data

pytestmark = needs_data


def test_every_format_and_precision_exports_with_parity(tiny_bundle):
    b = load_bundle(tiny_bundle)
    from edgemed.formats import FORMATS

    ids = {a.id for a in b.artifacts}
    assert ids == {"torch-fp32"} | {f"{f}-{p}" for f in EXPORT_FORMATS for p in FORMATS[f].precisions}
    assert {f["format"] for f in b.manifest["failed"]} == set()
    for a in b.artifacts:
        if a.format == "torch":
            continue
        p = a.parity
        assert p["n"] == 64 and p["tolerance_met"]
        assert p["top1_agreement"] >= (0.99 if a.precision == "fp32" else 0.98)
        if a.precision == "fp32":
            assert p["max_abs_diff"] < 1e-4
    onnx = b.artifact("onnx-fp32")
    assert onnx.details["opset"] == 18 and onnx.static_batch is None
    assert b.artifact("tflite-fp32").static_batch == 1
    assert {f["path"] for f in b.artifact("openvino-fp16").files} == {"openvino_fp16/model.xml", "openvino_fp16/model.bin"}
    # FP16 weights take half the bytes of FP32 ones
    def weights(artifact_id):
        return next(f["size"] for f in b.artifact(artifact_id).files if f["path"].endswith(".bin"))

    assert weights("openvino-fp16") < 0.6 * weights("openvino-fp32")


def test_manifest_has_what_a_device_needs(tiny_bundle):
    m = json.loads((tiny_bundle / "edgemed.json").read_text())
    assert m["schema"] == "edgemed-bundle" and m["schema_version"] == 1
    assert m["class_names"] == ["normal", "pneumonia"]
    assert m["input"] == {**m["input"], "shape": [1, 1, 28, 28], "dtype": "float32", "layout": "NCHW"}
    assert m["preprocess"]["size"] == [28, 28]
    prov = m["provenance"]
    assert len(prov["checkpoint"]["sha256"]) == 64 and len(prov["dataset"]["sha256"]) == 64
    assert "onnxruntime" in prov["libraries"]
    for a in m["artifacts"]:
        assert not a["file"].startswith("/") and all(len(f["sha256"]) == 64 for f in a["files"])


def test_moved_bundle_still_loads(tiny_bundle, tmp_path):
    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tiny_bundle, moved)
    b = load_bundle(moved)
    assert b.artifact("onnx-fp32").path == moved / "model_fp32.onnx"


@pytest.fixture
def copy(tiny_bundle, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_bundle, dst)
    return dst


def test_tampered_file_is_refused_by_name(copy):
    p = copy / "model_fp32.onnx"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model_fp32.onnx .*altered"):
        load_bundle(copy)


def test_truncated_file_is_refused_by_name(copy):
    p = copy / "openvino_fp32" / "model.bin"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(BundleError, match="openvino_fp32/model.bin .*truncated"):
        load_bundle(copy)
    assert any("model.bin" in x for x in verify_bundle(load_bundle(copy, verify=False)))


def test_manifest_problems(copy):
    mpath = copy / "edgemed.json"
    m = json.loads(mpath.read_text())
    m["schema_version"] = 99
    mpath.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="unknown bundle schema version 99"):
        load_bundle(copy)
    m["schema_version"] = 1
    del m["preprocess"]
    mpath.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="lacks preprocess"):
        load_bundle(copy)
    mpath.write_text("{ not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(copy)


def test_path_outside_the_bundle_is_refused(copy):
    mpath = copy / "edgemed.json"
    m = json.loads(mpath.read_text())
    m["artifacts"][1]["files"][0]["path"] = "../evil.onnx"
    mpath.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="a file outside the bundle"):
        load_bundle(copy)


def test_existing_output_needs_force(tiny_checkpoint, tiny_bundle):
    from edgemed.export.exporter import export

    before = (tiny_bundle / "edgemed.json").read_bytes()
    with pytest.raises(EdgemedError, match="already exists"):
        export(tiny_checkpoint, ["onnx"], ["fp32"], tiny_bundle, progress=False)
    assert (tiny_bundle / "edgemed.json").read_bytes() == before


def test_unsupported_op_fails_that_format_alone(tmp_path, data_dir):
    """A model with a 2-D FFT: ONNX exports it, TFLite cannot take it (op named)."""
    from edgemed.export.exporter import export
    from edgemed.train import train

    f = tmp_path / "fftnet.py"
    f.write_text(
        "import torch\n"
        "class FFTNet(torch.nn.Module):\n"
        "    def __init__(self, num_classes, in_channels):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(in_channels, 4, 3)\n"
        "        self.fc = torch.nn.Linear(4, num_classes)\n"
        "    def forward(self, x):\n"
        "        y = torch.fft.rfft2(self.conv(x)).abs()\n"
        "        return self.fc(y.mean((2, 3)))\n"
        "def build(num_classes, in_channels):\n"
        "    return FFTNet(num_classes, in_channels)\n")
    ckpt = train(f"{f}:build", "breastmnist", out=tmp_path / "fft.safetensors", epochs=1,
                 batch_size=16, limit_train=32, limit_eval=16, progress=False).checkpoint
    result = export(ckpt, ["onnx", "tflite"], ["fp32"], tmp_path / "b", parity_images=16, progress=False)
    assert result.artifacts == ["onnx-fp32"]
    assert result.failed[0]["format"] == "tflite"
    assert "aten._fft_r2c" in result.failed[0]["error"]
    assert load_bundle(tmp_path / "b").manifest["failed"] == result.failed
    with pytest.raises(ExportError, match="no format exported.*tflite cannot take op aten._fft_r2c"):
        export(ckpt, ["tflite"], ["fp32"], tmp_path / "c", parity_images=16, progress=False)
    assert not (tmp_path / "c").exists()  # no partial bundle left behind
    with pytest.raises(ExportError, match="--strict"):
        export(ckpt, ["onnx", "tflite"], ["fp32"], tmp_path / "d", parity_images=16, strict=True, progress=False)


def test_parity_tolerance_rules():
    good = {"max_abs_diff": 1e-6, "reference_max_abs_logit": 5.0, "top1_agreement": 1.0}
    assert within_tolerance(good, "fp32")[0]
    assert not within_tolerance({**good, "max_abs_diff": 0.1}, "fp32")[0]
    assert within_tolerance({**good, "max_abs_diff": 0.1}, "fp16")[0]
    ok, why = within_tolerance({**good, "top1_agreement": 0.9}, "fp16")
    assert not ok and "agreement" in why


def test_unsupported_op_reads_each_exporters_message():
    class E(Exception):
        pass

    assert unsupported_op(E("No ONNX function found for <OpOverload(op='prims.erf_inv', overload='default')>")) == "prims.erf_inv.default"
    assert unsupported_op(E("Lowering not found: aten.erfinv.default")) == "aten.erfinv.default"
    assert unsupported_op(E("something else")) is None


def test_onnx_topological_sort_fixes_appended_casts():
    import onnx
    from onnx import TensorProto, helper

    from edgemed.export.onnx import topological_sort

    relu = helper.make_node("Relu", ["x_cast"], ["y"])
    cast = helper.make_node("Cast", ["x"], ["x_cast"], to=TensorProto.FLOAT)
    graph = helper.make_graph([relu, cast], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    topological_sort(graph)
    assert [n.op_type for n in graph.node] == ["Cast", "Relu"]
    onnx.checker.check_model(helper.make_model(graph))
