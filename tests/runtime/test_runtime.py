import numpy as np
import pytest

from edgemed.errors import EdgemedError, RuntimeUnavailable
from edgemed.export import load_bundle
from edgemed.formats import FORMATS, install_hint
from edgemed.runtime import available_devices, open_session
from edgemed.runtime.base import dequantize_output, quantize_input
from tests.conftest import needs_data, run_without_torch

pytestmark = needs_data


@pytest.fixture(scope="module")
def batch(tiny_bundle):
    from edgemed.checkpoint import read_checkpoint
    from edgemed.export.parity import parity_images

    b = load_bundle(tiny_bundle)
    ckpt = read_checkpoint(b.artifact("torch-fp32").path)
    x, _ = parity_images(ckpt, n=12)
    return x


# every exported artifact on every runtime that reads its format, from the one format table
CASES = [(f"{name}-{p}", rt) for name, f in FORMATS.items() if f.exporter for p in f.precisions for rt in f.runtimes]


@pytest.mark.parametrize("artifact_id, runtime", CASES)
def test_each_runtime_matches_the_torch_reference(tiny_bundle, batch, artifact_id, runtime):
    if not available_devices(runtime):
        pytest.skip(f"{runtime} is not installed here: {install_hint(runtime)}")
    b = load_bundle(tiny_bundle)
    if artifact_id not in {a.id for a in b.artifacts}:
        pytest.skip(f"{artifact_id} is not exported here (its converter is not installed)")
    ref = open_session(b.artifact("torch-fp32"), threads=1).run(batch)
    s = open_session(b.artifact(artifact_id), threads=1, runtime=runtime)
    out = s.run(batch)
    assert out.shape == (12, 2) and out.dtype == np.float32
    tol = 1e-4 if artifact_id.endswith("fp32") else 2e-2
    np.testing.assert_allclose(out, ref, atol=tol * max(1, np.abs(ref).max()))
    assert s.runtime == runtime and s.describe()["threads"] == 1


def test_static_batch_runs_in_chunks_and_pads(tiny_bundle, batch):
    s = open_session(load_bundle(tiny_bundle).artifact("tflite-fp32"))
    assert s.static_batch == 1
    assert s.run(batch[:5]).shape == (5, 2)
    with pytest.raises(EdgemedError, match="static batch of 1"):
        s.prepare(batch[:2])


def test_missing_device_lists_the_available_ones(tiny_bundle):
    b = load_bundle(tiny_bundle)
    with pytest.raises(RuntimeUnavailable, match="'npu' is not available to onnxruntime here: available devices are cpu"):
        open_session(b.artifact("onnx-fp32"), device="npu")
    with pytest.raises(RuntimeUnavailable, match="available devices are cpu"):
        open_session(b.artifact("tflite-fp32"), device="gpu")
    with pytest.raises(RuntimeUnavailable, match="'gpu' is not available to openvino"):
        open_session(b.artifact("openvino-fp32"), device="gpu")
    assert "cpu" in available_devices("openvino")


def test_wrong_runtime_for_format(tiny_bundle):
    with pytest.raises(EdgemedError, match="cannot run tflite"):
        open_session(load_bundle(tiny_bundle).artifact("tflite-fp32"), runtime="onnxruntime")


def test_int8_io_quantization_round_trip():
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    q = quantize_input(x, 0.02, -3, np.int8)
    assert q.dtype == np.int8 and q.min() == -103 and q.max() == 97
    np.testing.assert_allclose(dequantize_output(q, 0.02, -3), x, atol=0.011)
    assert quantize_input(np.array([100.0]), 0.02, 0, np.int8)[0] == 127  # saturates


def test_runtime_layer_imports_no_torch(tiny_bundle, tmp_path):
    img = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.full((28, 28), 128, np.uint8)).save(img)
    for args in (["bundle", "verify", tiny_bundle], ["bundle", "inspect", tiny_bundle],
                 ["predict", tiny_bundle, img, "--format", "tflite", "--json"],
                 ["predict", tiny_bundle, img, "--format", "onnx"]):
        r = run_without_torch(args)
        assert r.returncode == 0, r.stderr
    # a command that needs torch names the extra to install
    r = run_without_torch(["export", tiny_bundle / "torch" / "model.safetensors", "--out", tmp_path / "o"])
    assert r.returncode == 2 and 'pip install "edgemed[train]"' in r.stderr and "Traceback" not in r.stderr
