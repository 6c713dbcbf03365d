"""Property-based fuzzing of the loaders that read foreign files (checkpoint header metadata,
`edgemed.json`, recipes): any input gives a valid object or an EdgemedError, never another
exception. (Calibration manifests: tests/compress/test_calibration_hostile.py; results JSON:
tests/report/test_inert.py.)"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgemed.errors import EdgemedError

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def paths_of(obj, prefix=()):
    """Every key path of a nested dict/list (the places a mutation can hit)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from paths_of(v, (*prefix, i))


@st.composite
def mutated(draw, good: dict):
    """A valid document with a few of its values replaced by arbitrary JSON or removed."""
    doc = copy.deepcopy(good)
    places = [p for p in paths_of(doc) if p]
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(places))
        parent = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            pass
    return doc


def either_ok_or_edgemed_error(load):
    with contextlib.suppress(EdgemedError):  # anything else fails the test
        load()


# ---- checkpoint header -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_meta(tiny_checkpoint):
    from safetensors import safe_open

    with safe_open(str(tiny_checkpoint), framework="numpy") as f:
        return json.loads(f.metadata()["edgemed"])


def test_checkpoint_metadata_fuzz(good_meta, tmp_path_factory):
    from safetensors.numpy import save_file

    from edgemed.checkpoint import read_checkpoint

    path = tmp_path_factory.mktemp("fz") / "c.safetensors"
    tensors = {"w": np.zeros(4, np.float32)}

    @FUZZ
    @given(st.one_of(mutated(good_meta), JSON))
    def check(meta):
        save_file(tensors, str(path), metadata={"edgemed": json.dumps(meta)})
        either_ok_or_edgemed_error(lambda: read_checkpoint(path))

    check()


def test_checkpoint_raw_header_fuzz(tmp_path_factory):
    """Arbitrary bytes where the safetensors header length and JSON would be."""
    from edgemed.checkpoint import read_checkpoint

    path = tmp_path_factory.mktemp("fz") / "raw.safetensors"

    @FUZZ
    @given(st.binary(max_size=64), st.integers(0, 2**64 - 1))
    def check(body, n):
        path.write_bytes(n.to_bytes(8, "little") + body)
        either_ok_or_edgemed_error(lambda: read_checkpoint(path))

    check()


# ---- bundle manifest -------------------------------------------------------------------------

def test_bundle_manifest_fuzz(tiny_bundle, tmp_path_factory):
    from edgemed.export.bundle import load_bundle

    root = tmp_path_factory.mktemp("fz") / "b"
    shutil.copytree(tiny_bundle, root)
    good = json.loads((root / "edgemed.json").read_text())

    @FUZZ
    @given(st.one_of(mutated(good), JSON))
    def check(manifest):
        (root / "edgemed.json").write_text(json.dumps(manifest))

        def load():
            b = load_bundle(root)
            for a in b.artifacts:  # what commands read after loading
                _ = (a.path, a.size, b.preprocess, b.class_names)

        either_ok_or_edgemed_error(load)

    check()


# ---- recipes ---------------------------------------------------------------------------------

GOOD_RECIPE = {"name": "fz", "model": {"zoo": "mednext_micro", "kwargs": {"drop_path": 0.1}},
               "dataset": "pneumoniamnist",
               "stages": {"train": {"epochs": 1}, "export": {"formats": ["onnx"]}, "bench": {"threads": 2}},
               "accuracy_bound": {"metric": "accuracy", "max_drop": 0.5}}


def test_recipe_fuzz(tmp_path_factory):
    from edgemed.pipeline.recipe import load_recipe

    path = tmp_path_factory.mktemp("fz") / "r.yaml"

    @FUZZ
    @given(st.one_of(mutated(GOOD_RECIPE).map(yaml.safe_dump), JSON.map(yaml.safe_dump),
                     st.text(alphabet="abc:-[]{}&*!|>'\"#\n ,0123456789", max_size=80)))
    def check(text):
        path.write_text(text)
        either_ok_or_edgemed_error(lambda: load_recipe(path))

    check()
