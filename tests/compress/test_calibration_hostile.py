"""Hostile calibration manifests and arrays (issue 19): every field read is checked, and any JSON
either loads as a valid manifest or raises EdgemedError (exit 2 through the CLI), nothing else."""

import io
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.compress import calibration as cal_mod
from edgemed.compress.calibration import (
    MAX_IMAGES,
    SCHEMA_VERSION,
    build_calibration,
    load_calibration,
    read_manifest,
)
from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import DataError, EdgemedError
from tests.conftest import assert_clean_error, needs_data, write_npz

runner = CliRunner()
SPEC = PreprocessSpec(size=(28, 28), channels=1, mean=(0.5,), std=(0.25,))
VALID = {
    "schema": "edgemed-calibration", "schema_version": 1, "dataset": "breastmnist",
    "source": "breastmnist", "data_sha256": "ab" * 32, "split": "train", "seed": 0, "size": 3,
    "class_names": ["malignant", "normal, benign"], "indices": [0, 5, 9],
}
# (field, hostile value, fragment of the message)
BAD_FIELDS = [
    ("indices", ["1", "2"], "item 0 is '1'"),
    ("indices", [0, -1], "item 1 is -1"),
    ("indices", [True, 2], "item 0 is True"),
    ("indices", [0, 1.5], "item 1 is 1.5"),
    ("indices", [0, [1]], "item 1 is [1]"),
    ("indices", [3, 3, 4], "repeats 1 positions"),
    ("indices", "0,1,2", "'indices' must be a list"),
    ("indices", {"0": 1}, "'indices' must be a list"),
    ("indices", None, "'indices' must be a list"),
    ("schema_version", "1", "'schema_version' must be a whole number"),
    ("schema_version", True, "'schema_version' must be a whole number"),
    ("schema_version", 99, "newer than this edgemed"),
    ("dataset", 123, "'dataset' must be the data set's name"),
    ("dataset", ["breastmnist"], "'dataset' must be the data set's name"),
    ("dataset", "", "'dataset' must be the data set's name"),
    ("source", {"path": "/etc"}, "'source' must be"),
    ("data_sha256", "abc", "'data_sha256' must be the data file's sha256"),
    ("data_sha256", 12345, "'data_sha256' must be the data file's sha256"),
    ("split", "test", "must come from the training split, not 'test'"),
    ("split", ["train"], "must come from the training split"),
    ("seed", "0", "'seed' must be a whole number"),
    ("size", "3", "'size' must be the number of indices (3)"),
    ("size", 4, "'size' must be the number of indices (3)"),
]


def _write(path, manifest) -> object:
    path.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return path


@pytest.mark.parametrize(("field", "value", "fragment"), BAD_FIELDS)
def test_every_field_is_checked(tmp_path, field, value, fragment):
    p = _write(tmp_path / "m.json", {**VALID, field: value})
    with pytest.raises(DataError, match=re.escape(fragment)) as e:
        read_manifest(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg
    assert "rebuild it with `edgemed calibration build" in msg or "upgrade" in msg or field == "split"


def test_hostile_json_is_a_data_error(tmp_path, monkeypatch):
    p = tmp_path / "m.json"
    for text in ("[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion
                 json.dumps({**VALID, "seed": 0}).replace('"seed": 0', '"seed": ' + "9" * 5000),
                 "[1, 2]", "null", '"edgemed-calibration"', "{", "\udcff"):
        p.write_text(text, errors="surrogateescape")
        with pytest.raises(EdgemedError, match=re.escape(str(p))):
            read_manifest(p)
    huge = {**VALID, "indices": list(range(MAX_IMAGES + 1)), "size": MAX_IMAGES + 1}
    with pytest.raises(DataError, match=f"lists {MAX_IMAGES + 1} images, over edgemed's limit of {MAX_IMAGES}"):
        read_manifest(_write(p, huge))
    monkeypatch.setattr(cal_mod, "MAX_MANIFEST_BYTES", 64)
    with pytest.raises(DataError, match="MiB, over edgemed's limit"):
        read_manifest(_write(p, VALID))
    monkeypatch.undo()
    with pytest.raises(EdgemedError, match="not found"):
        read_manifest(tmp_path)  # a folder named like a manifest
    assert read_manifest(_write(p, VALID))["indices"] == [0, 5, 9]


# ---- property: any mutation of a valid manifest loads or raises EdgemedError ----------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
KEYS = st.sampled_from(sorted(VALID) + ["extra"])
MUTATION = st.one_of(
    st.tuples(st.just("drop"), KEYS, st.none()),
    st.tuples(st.just("set"), KEYS, JSON),
    st.tuples(st.just("item"), st.integers(0, 2), JSON),
    st.tuples(st.just("indices"), st.just("indices"), st.lists(st.integers(-5, 2**66), max_size=50)),
    st.tuples(st.just("whole"), st.just(""), JSON),
)


def _apply(mutations) -> object:
    m = json.loads(json.dumps(VALID))
    for kind, key, value in mutations:
        if kind == "whole":
            return value
        if not isinstance(m, dict):
            break
        if kind == "drop":
            m.pop(key, None)
        elif kind == "item" and isinstance(m.get("indices"), list) and len(m["indices"]) > key:
            m["indices"][key] = value
        elif kind in ("set", "indices"):
            m[key] = value
    return m


def _assert_valid(m: dict) -> None:
    assert m["schema"] == "edgemed-calibration" and type(m["schema_version"]) is int
    assert 1 <= m["schema_version"] <= SCHEMA_VERSION
    assert isinstance(m["dataset"], str) and m["dataset"] and m["split"] == "train"
    assert re.fullmatch(r"[0-9a-f]{64}", m["data_sha256"])
    idx = m["indices"]
    assert isinstance(idx, list) and len(idx) <= MAX_IMAGES and len(set(idx)) == len(idx)
    assert all(type(i) is int and i >= 0 for i in idx)
    assert m.get("seed") is None or type(m["seed"]) is int


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_any_mutated_manifest_loads_or_raises_edgemed_error(tmp_path, mutations):
    p = tmp_path / "m.json"
    p.write_text(json.dumps(_apply(mutations)))
    try:
        m = read_manifest(p)
    except EdgemedError as e:
        assert "\n" not in str(e)
        return
    _assert_valid(m)


# ---- through the loader and the CLI, with real data ------------------------------------------
@pytest.fixture(scope="module")
def pneumonia_manifest(tmp_path_factory, data_dir):
    return json.loads(build_calibration("pneumoniamnist", size=40,
                                        out=tmp_path_factory.mktemp("cal") / "p.json").read_text())


@needs_data
@pytest.mark.parametrize(("indices", "fragment"), [
    (["1", "2"], "item 0 is '1'"),
    ([-1] + list(range(39)), "item 0 is -1"),
    ([True] + list(range(1, 40)), "item 0 is True"),
    (list(range(39)) + [4708], "index 4708 falls outside the training split of 4708 images"),
    (list(range(MAX_IMAGES + 1)), "over edgemed's limit"),
])
def test_quantize_cli_refuses_bad_indices(tiny_checkpoint, pneumonia_manifest, tmp_path, indices, fragment):
    m = {**pneumonia_manifest, "indices": indices, "size": len(indices)}
    p = _write(tmp_path / "bad.json", m)
    r = runner.invoke(app, ["quantize", str(tiny_checkpoint), "--calib", str(p), "--formats", "onnx",
                            "--out", str(tmp_path / "b")])
    assert_clean_error(r, str(p), fragment, "edgemed calibration build pneumoniamnist")
    assert not (tmp_path / "b").exists()


@needs_data
def test_quantize_cli_refuses_wrong_field_types(tiny_checkpoint, pneumonia_manifest, tmp_path):
    for field, value, fragment in [("dataset", 7, "'dataset' must be"), ("data_sha256", None, "'data_sha256'"),
                                   ("schema_version", "1", "'schema_version'")]:
        p = _write(tmp_path / "bad.json", {**pneumonia_manifest, field: value})
        r = runner.invoke(app, ["quantize", str(tiny_checkpoint), "--calib", str(p), "--formats", "onnx",
                                "--out", str(tmp_path / "b")])
        assert_clean_error(r, str(p), fragment)


def _ckpt(name, source=None):
    return SimpleNamespace(preprocess=SPEC, dataset={"name": name, **({"source": source} if source else {})})


@needs_data
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(indices=st.lists(st.integers(-3, 700) | st.booleans() | st.text(max_size=3), min_size=0, max_size=60))
def test_any_indices_load_or_raise_edgemed_error(tmp_path, indices):
    sha = "ce5b81972a53a35bac77bc672ec94ce0dcf0ea03bfc5e57283c5fb34c98e5c69"  # shared breastmnist
    p = _write(tmp_path / "m.json", {**VALID, "data_sha256": sha, "indices": indices, "size": len(indices)})
    try:
        cal = load_calibration(p, _ckpt("breastmnist"))
    except EdgemedError:
        return
    assert cal.x.shape == (len(indices), 1, 28, 28) and np.isfinite(cal.x).all()


@needs_data
def test_manifest_paths_stay_in_their_folder(tmp_path):
    (tmp_path / "cal").mkdir()
    data = write_npz(tmp_path / "cal" / "local.npz", n=(40, 6, 6))
    m = json.loads(build_calibration(str(data), size=32, out=tmp_path / "cal" / "m.json").read_text())
    for source in ("/etc/passwd", "../local.npz", "folder:../..", str(data)):
        p = _write(tmp_path / "cal" / "m.json", {**m, "source": source})
        with pytest.raises(DataError, match="is not inside the manifest's folder"):
            load_calibration(p, _ckpt("local"))
    p = _write(tmp_path / "cal" / "m.json", {**m, "source": "local.npz"})
    assert load_calibration(p, _ckpt("local")).x.shape == (32, 1, 28, 28)
    # the checkpoint (named by the user) says where its data is; the manifest's path is not opened
    p = _write(tmp_path / "cal" / "m.json", {**m, "source": "/etc/passwd"})
    assert load_calibration(p, _ckpt("local", str(data))).x.shape == (32, 1, 28, 28)


def test_calibration_arrays_are_checked_from_their_header(tmp_path):
    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**7, 1, 28, 28)})
    (tmp_path / "huge.npy").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"huge\.npy declares shape \(10000000, 1, 28, 28\) float32 .* GiB"):
        load_calibration(tmp_path / "huge.npy", _ckpt("x"))
    np.save(tmp_path / "text.npy", np.array(["a"] * 40))
    with pytest.raises(DataError, match="has dtype <U1; edgemed reads plain numeric arrays"):
        load_calibration(tmp_path / "text.npy", _ckpt("x"))
    np.savez(tmp_path / "zip.npy", a=np.zeros(3))
    (tmp_path / "zip.npy.npz").rename(tmp_path / "zip.npy")
    with pytest.raises(DataError, match="is not a plain .npy array"):
        load_calibration(tmp_path / "zip.npy", _ckpt("x"))
    nan = np.zeros((40, 1, 28, 28), np.float32)
    nan[0, 0, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", nan)
    with pytest.raises(DataError, match="1 images with NaN or infinite"):
        load_calibration(tmp_path / "inf.npy", _ckpt("x"))
