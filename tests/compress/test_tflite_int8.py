"""Static INT8 TFLite through edgemed.compress.tflite_int8 on tiny trained models and real images."""

import numpy as np
import pytest

from edgemed.errors import EdgemedError
from tests.conftest import needs_data

torch = pytest.importorskip("torch", reason="torch is not installed (edgemed[train])")
pytest.importorskip("litert_torch", reason="litert-torch is not installed (edgemed[tflite])")
pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer is not installed (edgemed[tflite])")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (edgemed[runtime])")

from edgemed.compress import tflite_int8 as t  # noqa: E402


def _images(ckpt, split, n):
    from edgemed.data.datasets import load_dataset, prepare_split

    ds = load_dataset(ckpt.dataset["name"])
    x, y = prepare_split(ds, split, ckpt.preprocess, limit=n)
    return ckpt.preprocess.normalize(x).astype(np.float32), y


def _agreement(model, path, x):
    from edgemed.runtime import open_session

    got = open_session(path, threads=2).run(x)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape and np.isfinite(got).all()
    return float((got.argmax(1) == ref.argmax(1)).mean())


@pytest.fixture(scope="module")
def convnext(tiny_convnext_checkpoint, tmp_path_factory):
    """convnext_med_micro (RGB BloodMNIST), its calibration images and a split FP32 TFLite."""
    from edgemed.checkpoint import load_checkpoint

    ckpt, model = load_checkpoint(tiny_convnext_checkpoint)
    cal, _ = _images(ckpt, "train", 64)
    fp32 = tmp_path_factory.mktemp("tflite") / "fp32.tflite"
    split = t.convert_fp32(model, cal[:1], fp32)
    assert split == [f"stages.{i}.0.dwconv" for i in range(4)]
    return ckpt, model, cal, fp32


def test_split_large_depthwise_keeps_outputs():
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 7, padding=3, groups=8), nn.Conv2d(8, 8, 9, padding=4, groups=8),
                          nn.Conv2d(8, 8, 11, padding=5, groups=8),
                          nn.Conv2d(8, 8, 7, padding=3, groups=8, stride=2),  # strided: left alone
                          nn.Conv2d(8, 8, 5, padding=2, groups=8)).eval()  # 25 taps: fast already
    split, names = t.split_large_depthwise(model)
    assert names == ["0", "1", "2"]
    assert type(model[0]) is nn.Conv2d  # the original is untouched
    assert set(dict(split.named_parameters())) == set(dict(model.named_parameters()))
    x = torch.randn(2, 8, 20, 20)
    with torch.inference_mode():
        assert torch.allclose(split(x), model(x), atol=1e-5)


def test_mednext_branches_fuse_into_one_depthwise_conv():
    from edgemed.models import create_model
    from edgemed.models.mednext import FusedSpatialEncoding, SpatialEncodingModule

    torch.manual_seed(0)
    model = create_model("mednext_micro", 3, 1, 28).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics and biases
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    deploy, names = t.split_large_depthwise(model)
    sems = [n for n, m in model.named_modules() if isinstance(m, SpatialEncodingModule)]
    fused = [n for n, m in deploy.named_modules() if isinstance(m, FusedSpatialEncoding)]
    assert sems and fused == sems
    assert not any(isinstance(m, SpatialEncodingModule) for m in deploy.modules())
    assert names == [f"{n}.dwconv" for n in sems]  # the fused 7×7 is then split for XNNPACK
    x = torch.randn(2, 1, 28, 28)
    with torch.inference_mode():
        torch.testing.assert_close(deploy(x), model(x), atol=1e-5, rtol=1e-4)


@needs_data
def test_convnext_int8_is_delegated_and_agrees(convnext, tmp_path):
    ckpt, model, cal, fp32 = convnext
    out = tmp_path / "int8.tflite"
    d = t.quantize_tflite(model, cal, out, fp32_path=fp32)
    assert out.is_file() and d["route"] == t.DEFAULT_ROUTE == t.ROUTES[0]
    assert d["fp32_source"].startswith("given") and d["calibration"]["images"] == 64
    assert sorted(d["quantized_layers"]) == sorted(t.quantizable_layers(model))
    ops = d["ops"]
    assert ops["CONV_2D"] == {"int8": len(d["quantized_layers"])}  # the RGB stem conv included
    int8_types = {k for k, v in ops.items() if v.get("int8")}
    assert int8_types == {"CONV_2D", "QUANTIZE"}  # LayerNorm, GELU, depth-wise, head: float
    assert d["xnnpack"]["partitions"] == 1 and d["xnnpack"]["ops_not_delegated"] == 0
    # the given FP32 file was converted with its 7×7 depth-wise convs split: no kernel above 25 taps
    assert d["split_depthwise"] == [] and t._large_depthwise_ops(out) == 0
    x, _ = _images(ckpt, "val", 96)
    assert _agreement(model, out, x) >= 0.9
    assert d["calibration_parity"]["top1_agreement"] >= 0.9


@needs_data
def test_keep_float_leaves_named_layers_float(convnext, tmp_path):
    _, model, cal, fp32 = convnext
    out = tmp_path / "mixed.tflite"
    d = t.quantize_tflite(model, cal, out, fp32_path=fp32, keep_float=["stages.0.*", "downsamples.2.1", "classifier"])
    kept = ["stages.0.0.pwconv1", "stages.0.0.pwconv2", "downsamples.2.1"]
    assert sorted(d["float_layers"]) == sorted(kept)
    dtypes = t.layer_dtypes(out, model)  # read back from the flatbuffer
    assert all(dtypes[name] == "float" for name in kept)
    assert dtypes["stages.1.0.pwconv1"] == dtypes["downsamples.0.1"] == "int8"
    assert dtypes["classifier"] == "float"  # not quantized by the conv route anyway
    assert set(d["quantized_layers"]).isdisjoint(kept)


@needs_data
def test_all_route_quantizes_every_op(convnext, tmp_path):
    _, model, cal, fp32 = convnext
    d = t.quantize_tflite(model, cal, tmp_path / "all.tflite", fp32_path=fp32, route="all",
                          keep_float=["stages.3"])
    assert d["ops"]["GELU"].get("int8") and d["ops"]["FULLY_CONNECTED"].get("int8")
    dtypes = t.layer_dtypes(tmp_path / "all.tflite", model)
    assert dtypes["stages.3.0.pwconv1"] == "float" and dtypes["stages.2.0.pwconv1"] == "int8"


@needs_data
def test_mednext_from_an_unsplit_fp32_file(tiny_checkpoint, tmp_path):
    from edgemed.checkpoint import load_checkpoint
    from edgemed.export import tflite

    ckpt, model = load_checkpoint(tiny_checkpoint)
    cal, _ = _images(ckpt, "train", 48)
    plain = tmp_path / "plain_fp32.tflite"
    tflite.convert(model, torch.from_numpy(cal[:1]), plain, split_depthwise=False)  # e.g. an older export
    out = tmp_path / "int8.tflite"
    d = t.quantize_tflite(model, cal, out, fp32_path=plain)
    # its 7×7 depth-wise convs would run on XNNPACK's slow path: the model is converted again
    assert d["fp32_source"].startswith("converted again")
    assert d["split_depthwise"] == [f"stages.{i}.0.sem.dwconv" for i in range(4)]  # branches fused, then split
    assert set(d["quantized_layers"]) == set(t.quantizable_layers(model))
    x, _ = _images(ckpt, "test", 96)
    assert _agreement(model, out, x) >= 0.9
    # edgemed's own FP32 export is already split, so it is quantized as given
    exported = tmp_path / "exported_fp32.tflite"
    assert tflite.convert(model, torch.from_numpy(cal[:1]), exported)  # names the convs it split
    assert t.quantize_tflite(model, cal, tmp_path / "int8b.tflite", fp32_path=exported)["fp32_source"].startswith("given")


@needs_data
def test_bad_inputs_raise_clear_errors(convnext, tmp_path):
    _, model, cal, fp32 = convnext
    out = tmp_path / "x.tflite"
    cases = [
        (cal[:0], "at least 32"),
        (cal[:10], "has 10 images.*at least 32"),
        (np.where(np.arange(len(cal))[:, None, None, None] == 3, np.nan, cal).astype(np.float32), "NaN"),
        (cal.transpose(0, 2, 3, 1).copy(), "do not fit the model"),
        (cal[:, 0], "4-D NCHW"),
        ((cal * 50 + 100).astype(np.uint8), "float images"),
        (cal.tolist(), "numpy array"),
    ]
    for bad, message in cases:
        with pytest.raises(EdgemedError, match=message):
            t.quantize_tflite(model, bad, out)
    with pytest.raises(EdgemedError, match="unknown TFLite INT8 route"):
        t.quantize_tflite(model, cal, out, route="fast")
    with pytest.raises(EdgemedError, match="matches no module"):
        t.quantize_tflite(model, cal, out, keep_float=["stage.0.*"])
    with pytest.raises(EdgemedError, match="does not exist"):
        t.quantize_tflite(model, cal, out, fp32_path=tmp_path / "missing.tflite")
    out.write_bytes(b"old")
    with pytest.raises(EdgemedError, match="already exists"):
        t.quantize_tflite(model, cal, out, force=False)
    assert not any(p.name.endswith(".tmp.tflite") for p in tmp_path.iterdir())


def test_quantizable_layers_per_route():
    from edgemed.models import create_model

    grey = create_model("convnext_med_micro", 2, 1, 28)
    conv = t.quantizable_layers(grey)
    assert "stages.0.0.pwconv1" in conv and "downsamples.0.1" in conv
    assert "stem.0" not in conv  # one input channel: TFLite makes it a depth-wise conv (float)
    assert not any(n.endswith("dwconv") or n.startswith(("se.", "classifier")) for n in conv)
    assert set(t.quantizable_layers(grey, "conv_fc")) == set(conv) | {"se.fc1", "se.fc2", "classifier"}
    assert {"stem.0", "stages.0.0.dwconv"} <= set(t.quantizable_layers(grey, "all"))
    with pytest.raises(EdgemedError, match="unknown TFLite INT8 route"):
        t.quantizable_layers(grey, "nope")
