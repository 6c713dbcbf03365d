
from pathlib import Path

import numpy as np
import pytest

from edgemed.errors import DataError, EdgemedError
from edgemed.export import load_bundle
from tests.conftest import needs_data

pytestmark = [needs_data, pytest.mark.filterwarnings("ignore")]
pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    from edgemed.compress.calibration import build_calibration

    return build_calibration("pneumoniamnist", size=32, out=tmp_path_factory.mktemp("cal") / "p.json")


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory, tiny_checkpoint, calib):
    from edgemed.compress.quantize import quantize

    out = tmp_path_factory.mktemp("q") / "b"
    r = quantize(tiny_checkpoint, calib=calib, formats=["openvino", "onnx", "tflite"], out=out, max_drop=5.0,
                 val_limit=96, threads=2, progress=False, sensitivity=True)
    return r


def test_every_format_int8_with_fp32_references(int8_bundle):
    b = load_bundle(int8_bundle.bundle)
    ids = {a.id for a in b.artifacts}
    assert {"torch-fp32", "openvino-fp32", "onnx-fp32", "tflite-fp32"} <= ids
    int8 = [a for a in b.artifacts if a.precision in ("int8", "mixed")]
    assert {a.format for a in int8} == {"openvino", "onnx", "tflite"}
    for a in int8:
        q = a.details
        assert q["route"] in ("nncf", "ort", "conv") and q["calibration_images"] == 32
        assert q["bound_met"] is True and a.parity["top1_agreement"] > 0.8
    assert b.recommended in {a.id for a in int8}
    quant = b.manifest["quantization"]
    assert quant["metric"] == "accuracy" and quant["validation_images"] == 96
    assert quant["calibration"]["kind"] == "manifest"
    for row in quant["results"]:  # each drop comes with its CI and the images that changed class
        lo, hi = row["drop_ci_points"]
        assert lo <= row["drop_points"] + 1e-9 <= hi + 2e-9 and 0 <= row["flips"] <= 96
        # a net drop of k images needs at least k of them to change class
        assert row["flips"] >= round(abs(row["drop_points"]) * 96 / 100)


def test_validation_change_is_a_paired_ci_of_the_drop():
    from edgemed.compress.accuracy_control import AccuracyTarget
    from edgemed.compress.quantize import validation_change

    y = np.array([0, 1] * 50)
    ref = np.eye(2)[y] * 4.0  # FP32 right on all 100 images
    lost = ref.copy()
    lost[[0, 1]] = ref[[0, 1]][:, ::-1]  # INT8 wrong on two of them: a 2-point drop
    target = AccuracyTarget(None, y, "accuracy", 0.005, ["a", "b"])
    ch = validation_change(target, ref, lost)
    assert ch["flips"] == 2 and 0 <= ch["drop_ci_points"][0] < 2 < ch["drop_ci_points"][1] <= 6
    wrong_ref = ref.copy()
    wrong_ref[[5]] = ref[[5]][:, ::-1]  # FP32 wrong on image 5, INT8 right there and wrong on image 0
    swapped = ref.copy()
    swapped[[0]] = ref[[0]][:, ::-1]
    net_zero = validation_change(target, wrong_ref, swapped)
    assert net_zero["flips"] == 2 and net_zero["drop_ci_points"][0] < 0 < net_zero["drop_ci_points"][1]
    same = validation_change(target, ref, ref)
    assert same == {"drop_ci_points": [0.0, 0.0], "flips": 0}


def test_a_recommendation_within_the_bound_but_not_its_ci_is_flagged(monkeypatch):
    """The seed B case (Intel AMX): OpenVINO +0.40 pt on 248 validation images was recommended for its
    speed and lost 0.60 pt on test; the recommendation stays the fastest, with a note on how sure it is."""
    import edgemed.compress.quantize as q

    lat = {"openvino-mixed": 1.3, "onnx-int8": 3.1, "tflite-int8": 1.6,
           "openvino-fp32": 1.9, "onnx-fp32": 2.9, "tflite-fp32": 2.2}  # Intel AMX, roughly
    monkeypatch.setattr(q, "_latency", lambda arts, x1, threads: {a: lat[a] for a in arts})

    class Writer:
        recommended = None

        def artifacts(self, ids):
            return sorted(ids)

        def recommend(self, artifact_id):
            self.recommended = artifact_id

    def rows():
        return [{"artifact": "openvino-mixed", "format": "openvino", "drop_points": 0.40, "drop_ci_points": [0.0, 1.21],
                 "flips": 1, "bound_met": True},
                {"artifact": "onnx-int8", "format": "onnx", "drop_points": 0.0, "drop_ci_points": [-0.81, 0.81],
                 "flips": 2, "bound_met": True},
                {"artifact": "tflite-int8", "format": "tflite", "drop_points": 0.0, "drop_ci_points": [0.0, 0.0],
                 "flips": 0, "bound_met": True}]

    w = Writer()
    r = rows()
    best, note = q.recommend(r, w, None, 1, 0.5, 248)
    assert best == w.recommended == "openvino-mixed" and r[2]["p50_ms_indicative"] == 1.6
    assert r[2]["fp32_p50_ms_indicative"] == 2.2  # each build timed beside its format's FP32
    assert note.startswith("openvino-mixed meets the 0.5 pt bound on 248 validation images (drop +0.40 pt, 1 ")
    assert "reaches +1.21 pt; tflite-int8's stays within it (1.60 vs 1.30 ms; `edgemed predict BUNDLE IMAGES " \
           "--artifact tflite-int8`)" in note  # the fastest build whose CI is within the bound
    assert "`edgemed bench BUNDLE --split test`" in note  # no local path: the note travels in the manifest
    local = q.QuantizeResult(Path("my bundles") / "ct int8", r, best, {}, note=note).local_note()
    assert "`edgemed bench 'my bundles/ct int8' --split test`" in local  # copied as printed, it runs
    assert q.recommend(rows(), w, None, 1, None, 248) == ("openvino-mixed", None)  # no bound asked for
    assert q.recommend(rows(), w, None, 1, 2.0, 248) == ("openvino-mixed", None)  # CI within a wider bound
    r = rows()
    r[0]["bound_met"] = False  # the fastest over the bound: the next, whose CI is within it, with no note
    assert q.recommend(r, w, None, 1, 0.5, 248) == ("tflite-int8", None)
    r = rows()
    r[2]["drop_ci_points"] = [-0.4, 0.81]  # no build's CI within the bound: the note names none
    best, note = q.recommend(r, w, None, 1, 0.5, 248)
    assert best == "openvino-mixed" and "reaches +1.21 pt: measure" in note
    r = rows()
    r[0]["drop_ci_points"] = None  # no CI (an undefined metric on a resample): no claim either way
    assert q.recommend(r, w, None, 1, 0.5, 248) == ("openvino-mixed", None)
    r = rows()
    r[0]["bound_met"] = r[2]["bound_met"] = False  # only ONNX INT8 left, slower than ONNX FP32 (mednext_small)
    best, note = q.recommend(r, w, None, 1, 0.5, 248)
    assert best == "onnx-int8" and note.endswith("onnx-int8 is the fastest INT8 build here but slower than onnx-fp32 "
                                                 "(3.10 vs 2.90 ms): for speed, deploy the FP32 build.")
    r = [dict(x, bound_met=False) for x in rows()]  # none within the bound: the smallest drop, untimed
    assert q.recommend(r, w, None, 1, 0.5, 248)[0] == "onnx-int8" and "p50_ms_indicative" not in r[0]


def test_int8_graphs_really_are_integer(int8_bundle):
    import onnx

    b = load_bundle(int8_bundle.bundle)
    onnx_int8 = next(a for a in b.artifacts if a.format == "onnx" and a.precision != "fp32")
    graph = onnx.load(str(onnx_int8.path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # route `ort`: dense convs take INT8 weights (a DequantizeLinear of an INT8 initializer);
    # depth-wise convs keep their float weights
    made = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}

    def int8_weight(conv) -> bool:
        w = made.get(conv.input[1])
        return w is not None and w.op_type == "DequantizeLinear" and w.input[0] in inits

    convs = [n for n in graph.node if n.op_type == "Conv"]
    grouped = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert grouped and not any(int8_weight(n) for n in grouped)
    assert any(int8_weight(n) for n in convs if n not in grouped)
    assert onnx_int8.details["float_depthwise_convs"] == len(grouped)
    ov_int8 = next(a for a in b.artifacts if a.format == "openvino" and a.precision != "fp32")
    assert "FakeQuantize" in ov_int8.path.read_text()
    tfl = next(a for a in b.artifacts if a.format == "tflite" and a.precision != "fp32")
    assert tfl.details["ops"]["CONV_2D"].get("int8", 0) > 0 and tfl.details["xnnpack"]["partitions"] == 1


def test_sensitivity_report_ranks_every_layer(int8_bundle, tiny_checkpoint):
    from edgemed.checkpoint import load_checkpoint
    from edgemed.compress.scope import quantizable_layers
    from edgemed.models import deploy_form

    ranking = int8_bundle.sensitivity
    _, model = load_checkpoint(tiny_checkpoint)
    # layers of the exported form: MedNeXt's depth-wise branches fused into one conv
    assert sorted(r["layer"] for r in ranking) == sorted(quantizable_layers(deploy_form(model)))
    assert "stages.0.0.sem.dwconv" in {r["layer"] for r in ranking}
    keys = [(r["flips"], r["kl"]) for r in ranking]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("route", ["ort", "nncf", "pt2e"])
def test_onnx_routes_keep_ignored_layers_float(tiny_checkpoint, calib, tmp_path, route):
    import onnx
    import torch

    from edgemed.checkpoint import load_checkpoint
    from edgemed.compress.quantize import quantize
    from edgemed.compress.scope import conv_bn_pairs, onnx_module_of

    r = quantize(tiny_checkpoint, calib=calib, formats=["onnx"], routes=f"onnx={route}", ignore=["stem.*"],
                 out=tmp_path / "b", val_limit=64, threads=2, progress=False)
    a = load_bundle(r.bundle).artifact("onnx-mixed")
    assert a.details["route"] == route and a.details["ignored_layers"] == ["stem.0"]
    graph = onnx.load(str(a.path)).graph
    made_by = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    weight_is_int8 = {n.name: made_by.get(n.input[1]) is not None and made_by[n.input[1]].op_type == "DequantizeLinear"
                      for n in convs}
    assert any(weight_is_int8.values())  # the rest of the model is INT8
    if route != "pt2e":  # the torch exporter's module scopes name the stem's conv (BatchNorm folded in)
        ckpt, model = load_checkpoint(tiny_checkpoint)
        fused = conv_bn_pairs(model, torch.zeros(1, ckpt.in_channels, ckpt.image_size, ckpt.image_size))
        stem = [n.name for n in convs if onnx_module_of(n, fused) == "stem.0"]
        assert stem and not any(weight_is_int8[n] for n in stem)


def test_ort_route_calibrates_once_per_model(tiny_checkpoint, calib, tmp_path):
    """Accuracy-control rebuilds read the ranges of the first calibration: same file as a fresh
    calibration, and no calibration images needed."""
    import inspect

    import onnxruntime.quantization as oq
    import torch

    from edgemed.checkpoint import load_checkpoint
    from edgemed.compress import ort_quant
    from edgemed.compress.calibration import load_calibration
    from edgemed.compress.scope import conv_bn_pairs
    from edgemed.export import onnx as onnx_export

    if "calibration_cache_path" not in inspect.signature(oq.quantize_static).parameters:
        pytest.skip("this onnxruntime has no calibration cache")
    ckpt, model = load_checkpoint(tiny_checkpoint)
    x = load_calibration(calib, ckpt).x
    fp32 = onnx_export.export(model, torch.from_numpy(x[:1]), tmp_path, "fp32").files[0]
    fused = conv_bn_pairs(model, torch.from_numpy(x[:1]))
    cache = tmp_path / "ranges.json"
    ort_quant.quantize_onnx(fp32, x, tmp_path / "a.onnx", [], fused, ranges_cache=cache)
    assert cache.is_file()
    ort_quant.quantize_onnx(fp32, x[:0], tmp_path / "b.onnx", ["stem.0"], fused, ranges_cache=cache)  # no images
    ort_quant.quantize_onnx(fp32, x, tmp_path / "c.onnx", ["stem.0"], fused)
    assert (tmp_path / "b.onnx").read_bytes() == (tmp_path / "c.onnx").read_bytes()
    assert (tmp_path / "a.onnx").read_bytes() != (tmp_path / "b.onnx").read_bytes()


@pytest.mark.parametrize("kw, error, msg", [
    (dict(max_drop=-1), EdgemedError, "--max-drop must be a finite number of points ≥ 0"),
    (dict(max_drop=float("nan")), EdgemedError, "--max-drop must be a finite number"),  # NaN: no JSON, no bound
    (dict(max_drop=float("inf")), EdgemedError, "--max-drop must be a finite number"),
    (dict(metric="f1"), EdgemedError, "unknown --metric"),
    (dict(preset="fast"), EdgemedError, "unknown --preset"),
    (dict(routes="onnx=caffe"), EdgemedError, "unknown onnx route 'caffe'"),
    (dict(formats=["onnx"], routes="tflite=conv"), EdgemedError, "routes given for formats not being quantized"),
    (dict(ignore=["nosuchlayer"]), EdgemedError, "matches no quantizable layer"),
])
def test_bad_options_leave_no_bundle(tiny_checkpoint, calib, tmp_path, kw, error, msg):
    from edgemed.compress.quantize import quantize

    args = dict(calib=calib, formats=["openvino"], out=tmp_path / "b", val_limit=32, progress=False)
    args.update(kw)
    with pytest.raises(error, match=msg):
        quantize(tiny_checkpoint, **args)
    assert not (tmp_path / "b").exists()


def test_auc_on_a_one_class_validation_slice_is_refused(tiny_checkpoint, calib, tmp_path, monkeypatch):
    import edgemed.compress.quantize as q

    real = q._validation

    def one_class(ckpt, data_dir, limit):
        x, y = real(ckpt, data_dir, 64)
        keep = y == 1
        return x[keep], y[keep]

    monkeypatch.setattr(q, "_validation", one_class)
    with pytest.raises(DataError, match="auc needs at least 5 validation images of every class; too few of normal"):
        q.quantize(tiny_checkpoint, calib=calib, formats=["openvino"], metric="auc", max_drop=0.5,
                   out=tmp_path / "b", progress=False)
    assert not (tmp_path / "b").exists()


def test_own_accuracy_control_reverts_the_most_sensitive_layers(monkeypatch):
    """The revert loop (our own, for the PT2E and TFLite routes) on simulated scores: layer 'b' costs 2 points."""
    import edgemed.compress.quantize as q
    from edgemed.compress.accuracy_control import AccuracyTarget

    builds = []

    def fake_int8(fmt, route, model, example, calib, tmp, fp32_file, opts, keep_float, accuracy=None):
        builds.append(list(keep_float))
        return [tmp / "m.tflite"], {"route": route, "ignored_layers": list(keep_float)}

    def fake_score(artifact, x, target, threads):
        floats = set(builds[-1])
        return 0.90 - (0.0 if "b" in floats else 0.02) - (0.0 if "a" in floats else 0.001), None

    class Writer:
        def add(self, *a, **k):
            return None

    class FP32:
        input_layout, static_batch = "NCHW", 1

    class Cal:
        x = np.zeros((32, 1, 4, 4), np.float32)

    monkeypatch.setattr(q, "_int8", fake_int8)
    monkeypatch.setattr(q, "_score", fake_score)
    monkeypatch.setattr("edgemed.compress.scope.quantizable_layers", lambda m: list("abcdefgh"))
    ranking = [{"layer": name, "kl": 1.0 / (i + 1), "flips": 0} for i, name in enumerate("bacdefgh")]
    target = AccuracyTarget(np.zeros(1), np.zeros(1), "accuracy", 0.005, ["x", "y"], reference=0.90)
    first = ([], {}, 0.879, None)
    files, details, score, _, attempts, _ = q._control(
        "onnx", "pt2e", None, None, Cal(), __import__("pathlib").Path("/tmp"), None, {}, [], target, Writer(),
        FP32(), ranking, 1, None, first)
    assert details["reverted_layers"] == ["b"] and score == pytest.approx(0.899)
    assert [a["float_layers"] for a in attempts] == [["b"]]
    # an unreachable bound keeps the best model found and rebuilds it last
    target.max_drop = 0.0
    builds.clear()
    files, details, score, _, attempts, _ = q._control(
        "onnx", "pt2e", None, None, Cal(), __import__("pathlib").Path("/tmp"), None, {}, [], target, Writer(),
        FP32(), ranking, 1, None, first)
    assert score == pytest.approx(0.90) and details["reverted_layers"] == ["b", "a"]
    assert [a["float_layers"] for a in attempts] == [["b"], ["b", "a"]]  # 25 % of 8 layers = 2 at most
    assert builds[-1] == ["b", "a"]
    # layers NNCF reverted for OpenVINO are tried first: one build when they suffice …
    target.max_drop = 0.005
    builds.clear()
    files, details, score, _, attempts, _ = q._control(
        "onnx", "ort", None, None, Cal(), __import__("pathlib").Path("/tmp"), None, {}, [], target, Writer(),
        FP32(), ranking, 1, None, first, learned=["b"])
    assert builds == [["b"]] and details["reverted_layers"] == ["b"] and len(attempts) == 1
    # … and when they do not, the ranked loop goes on, and the best file is what is left on disk
    builds.clear()
    files, details, score, _, attempts, _ = q._control(
        "onnx", "ort", None, None, Cal(), __import__("pathlib").Path("/tmp"), None, {}, [], target, Writer(),
        FP32(), ranking, 1, None, first, learned=["c"])
    assert builds == [["c"], ["b"]] and details["reverted_layers"] == ["b"]


def test_large_inputs_rank_on_fewer_images():
    """At 224² the per-layer passes (NNCF's ranking, our sensitivity) use a subset; small inputs all."""
    import nncf

    from edgemed.compress.accuracy_control import AccuracyTarget
    from edgemed.compress.quantize import sensitivity_images

    small = AccuracyTarget(np.zeros((200, 1, 28, 28), np.float32), np.zeros(200, int), "accuracy", 0.005, ["a", "b"])
    large = AccuracyTarget(np.zeros((200, 3, 224, 224), np.float32), np.zeros(200, int), "accuracy", 0.005, ["a", "b"])
    assert small.restorer_options(nncf) == {}
    params = large.restorer_options(nncf)["advanced_accuracy_restorer_parameters"]
    assert params.ranking_subset_size * large.batch == 64
    assert sensitivity_images(small.x) == 128 and sensitivity_images(large.x) == 24


@pytest.mark.parametrize("name", ["convnext_med_micro", "mednext_micro", "resnet18_micro"])
def test_sensitivity_replays_the_fp32_prefix_exactly(name):
    """Replaying the blocks before each quantized layer gives the same numbers as recomputing
    them, and the blocks before the classifier are replayed, not run."""
    import torch

    from edgemed.compress.scope import layer_sensitivity, prefix_modules, quantizable_layers
    from edgemed.models import create_model

    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=1, image_size=28).eval()
    rng = np.random.default_rng(0)
    cal, ev = (rng.standard_normal((n, 1, 28, 28)).astype(np.float32) for n in (16, 40))
    fast = layer_sensitivity(model, cal, ev)
    slow = layer_sensitivity(model, cal, ev, reuse_prefix=False)
    assert [r["layer"] for r in fast] == [r["layer"] for r in slow]
    assert [(r["kl"], r["max_abs_logit_diff"], r["flips"]) for r in fast] == \
        [(r["kl"], r["max_abs_logit_diff"], r["flips"]) for r in slow]
    layers = quantizable_layers(model)
    prefix = prefix_modules(model, torch.from_numpy(ev[:1]), layers)
    assert prefix[layers[0]] == [] and len(prefix[layers[-1]]) >= 2
    # inside a replayed block nothing runs: count the conv calls while ranking only the last layer
    ran = []
    hooks = [model.get_submodule(n).register_forward_hook(lambda *_, n=n: ran.append(n)) for n in layers]
    layer_sensitivity(model, cal, ev, layers=[layers[-1]])
    for h in hooks:
        h.remove()
    inside = [n for n in layers[:-1] if any(n.startswith(m + ".") for m in prefix[layers[-1]])]
    assert inside
    chunks = 2  # 40 images in chunks of 32
    assert all(ran.count(n) == 1 + 1 + chunks for n in inside)  # calibration, execution order, reference


def test_many_candidates_in_one_process_read_model_and_data_once(tiny_checkpoint, tiny_convnext_checkpoint, calib,
                                                                 tmp_path, monkeypatch):
    """An optimize worker quantizes candidate after candidate: with inputs held, the weights, the
    calibration set and the validation split are read once, yet each candidate gets a freshly built
    model (the trust gate runs each time); a rewritten checkpoint is read again, and a model of
    another data set still meets the calibration manifest's check. Without holding, nothing is kept."""
    import os
    import shutil

    from edgemed import checkpoint as checkpoint_module
    from edgemed.compress import calibration as calibration_module
    from edgemed.compress import quantize as q
    from edgemed.data import datasets

    calls = {"weights": 0, "build": 0, "calibration": 0, "split": 0}

    def counting(name, fn):
        def wrapped(*a, **kw):
            calls[name] += 1
            return fn(*a, **kw)
        return wrapped

    monkeypatch.setattr(checkpoint_module, "read_weights", counting("weights", checkpoint_module.read_weights))
    monkeypatch.setattr(checkpoint_module, "build_model", counting("build", checkpoint_module.build_model))
    monkeypatch.setattr(calibration_module, "load_calibration", counting("calibration", calibration_module.load_calibration))
    monkeypatch.setattr(datasets, "prepare_split", counting("split", datasets.prepare_split))
    monkeypatch.setattr(q, "_HELD", None)
    ckpt_file = tmp_path / "m.safetensors"
    shutil.copy2(tiny_checkpoint, ckpt_file)

    q._model(ckpt_file), q._model(ckpt_file)
    assert calls["weights"] == 2  # not held: read every time
    q.hold_inputs()
    calls.update(weights=0, build=0)
    scores = []
    for i, preset in enumerate(["performance", "mixed"]):
        r = q.quantize(ckpt_file, calib=calib, formats=["onnx"], out=tmp_path / f"b{i}", preset=preset,
                       val_limit=64, threads=1, progress=False)
        scores.append(r.reference["value"])
    assert calls == {"weights": 1, "build": 2, "calibration": 1, "split": 1}
    assert scores[0] == scores[1]  # the second candidate's FP32 reference is the untouched model
    a, b = q._model(ckpt_file)[1], q._model(ckpt_file)[1]
    assert a is not b and all(pa.data_ptr() != pb.data_ptr() for pa, pb in zip(a.parameters(), b.parameters()))
    os.utime(ckpt_file, ns=(1, 1))  # as if rewritten: another modification time
    q._model(ckpt_file)
    assert calls["weights"] == 2
    # a BloodMNIST model with the PneumoniaMNIST manifest: refused as without holding
    with pytest.raises(DataError, match="calibration set for pneumoniamnist"):
        q.quantize(tiny_convnext_checkpoint, calib=calib, formats=["onnx"], out=tmp_path / "other", val_limit=64,
                   threads=1, progress=False)


def test_cli_quantize_into_an_exported_bundle(tiny_checkpoint, tiny_bundle, tiny_convnext_checkpoint, calib, tmp_path):
    """`--base-bundle`: the export's artifacts (FP16 too) join the INT8 bundle, its FP32 file is
    reused as it is, and a bundle of another checkpoint is refused in one line."""
    from typer.testing import CliRunner

    from edgemed.cli import app
    from tests.conftest import assert_clean_error

    out = tmp_path / "q"
    r = CliRunner().invoke(app, ["quantize", str(tiny_checkpoint), "--calib", str(calib), "--formats", "onnx",
                                 "--base-bundle", str(tiny_bundle), "--val-limit", "64", "--out", str(out)])
    assert r.exit_code == 0, r.output
    base, b = load_bundle(tiny_bundle), load_bundle(out)
    ids = {a.id for a in b.artifacts}
    assert {"onnx-fp32", "onnx-fp16", "onnx-int8"} <= ids or {"onnx-fp32", "onnx-fp16", "onnx-mixed"} <= ids
    assert b.artifact("onnx-fp32").files == base.artifact("onnx-fp32").files
    r = CliRunner().invoke(app, ["quantize", str(tiny_convnext_checkpoint), "--calib", str(calib), "--formats", "onnx",
                                 "--base-bundle", str(tiny_bundle), "--out", str(tmp_path / "other")])
    assert_clean_error(r, "exported from another checkpoint")
    assert not (tmp_path / "other").exists()
