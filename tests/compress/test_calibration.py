import json

import numpy as np
import pytest

from edgemed.checkpoint import read_checkpoint
from edgemed.compress.calibration import MIN_IMAGES, build_calibration, load_calibration
from edgemed.errors import DataError, EdgemedError
from tests.conftest import needs_data, write_npz

pytestmark = needs_data


def test_manifest_is_stratified_training_indices(tmp_path):
    path = build_calibration("breastmnist", size=100, seed=1, out=tmp_path / "b.json")
    m = json.loads(path.read_text())
    assert m["split"] == "train" and m["size"] == len(m["indices"]) == 100
    assert len(set(m["indices"])) == 100 and max(m["indices"]) < 546
    assert m["class_counts"] == [27, 73]  # BreastMNIST train is 147 / 399 → 27 % / 73 %
    assert m["data_sha256"].startswith("ce5b8197")
    again = build_calibration("breastmnist", size=100, seed=1, out=tmp_path / "c.json")
    assert json.loads(again.read_text())["indices"] == m["indices"]  # seeded


def test_committed_manifests_match_the_shared_data():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "calibration"
    names = sorted(p.stem for p in root.glob("*.json"))
    assert names == ["bloodmnist", "breastmnist", "pneumoniamnist", "sarscov2_ct_224"]
    from edgemed.data import load_dataset

    for name in names:
        m = json.loads((root / f"{name}.json").read_text())
        assert m["data_sha256"] == load_dataset(name).sha256 and m["size"] == 300


def test_loading_uses_the_models_spec(tiny_checkpoint, tmp_path):
    ckpt = read_checkpoint(tiny_checkpoint)
    cal = load_calibration(build_calibration("pneumoniamnist", size=40, out=tmp_path / "p.json"), ckpt)
    assert cal.x.shape == (40, 1, 28, 28) and cal.x.dtype == np.float32
    assert abs(float(cal.x.mean())) < 1.0  # normalised with the checkpoint's mean/std


def test_refuses_other_datasets_changed_data_and_bad_arrays(tiny_checkpoint, tmp_path):
    ckpt = read_checkpoint(tiny_checkpoint)
    other = build_calibration("breastmnist", size=40, out=tmp_path / "b.json")
    with pytest.raises(DataError, match="calibration set for breastmnist, but the model was trained on pneumoniamnist"):
        load_calibration(other, ckpt)
    m = json.loads(build_calibration("pneumoniamnist", size=40, out=tmp_path / "p.json").read_text())
    m["data_sha256"] = "0" * 64
    (tmp_path / "p.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="is not the data .* was built from"):
        load_calibration(tmp_path / "p.json", ckpt)
    np.save(tmp_path / "small.npy", np.zeros((MIN_IMAGES - 1, 1, 28, 28), np.float32))
    with pytest.raises(DataError, match=f"has {MIN_IMAGES - 1} images; at least {MIN_IMAGES}"):
        load_calibration(tmp_path / "small.npy", ckpt)
    np.save(tmp_path / "shape.npy", np.zeros((40, 3, 28, 28), np.float32))
    with pytest.raises(DataError, match=r"has shape \(40, 3, 28, 28\); expected \(N, 1, 28, 28\)"):
        load_calibration(tmp_path / "shape.npy", ckpt)
    nan = np.zeros((40, 1, 28, 28), np.float32)
    nan[3, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(DataError, match="1 images with NaN"):
        load_calibration(tmp_path / "nan.npy", ckpt)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG"):
        load_calibration(tmp_path / "empty", ckpt)


def test_too_small_size_is_refused(tmp_path):
    with pytest.raises(EdgemedError, match="too small"):
        build_calibration("breastmnist", size=10, out=tmp_path / "x.json")
    p = write_npz(tmp_path / "tiny.npz", n=(20, 6, 6))
    with pytest.raises(DataError, match="only 20 training images"):
        build_calibration(str(p), size=32, out=tmp_path / "y.json")
