import io
import urllib.request

import numpy as np
import pytest
from PIL import Image

from edgemed.data import CATALOG, load_dataset
from edgemed.data.datasets import cache_dir, load_image_folder
from edgemed.errors import DataError
from tests.conftest import needs_data, write_npz


@needs_data
def test_shared_sets_load_with_catalog_counts(data_dir):
    for name in ("pneumoniamnist", "breastmnist", "bloodmnist"):
        ds = load_dataset(name, data_dir)
        info = CATALOG[name]
        for split in ("train", "val", "test"):
            images, labels = ds.split(split)
            assert len(images) == len(labels) == info.n_samples[split]
        assert ds.num_classes == len(info.class_names)
    pneu = load_dataset("pneumoniamnist")  # found through EDGEMED_DATA_DIR
    assert pneu.class_counts("test") == [234, 390]
    assert pneu.sha256.startswith("d0bfa333")


@needs_data
def test_ct_set_is_224_grey(data_dir):
    ds = load_dataset("sarscov2_ct_224", data_dir)
    assert ds.image_size == (224, 224) and ds.channels == 1
    assert "patient" in ds.note


def test_unknown_name_lists_known_sets():
    with pytest.raises(DataError, match="unknown data set 'nosuchmnist'.*pneumoniamnist"):
        load_dataset("nosuchmnist")


def test_missing_file_offline_names_the_setting(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="EDGEMED_DATA_DIR or pass --data-dir"):
        load_dataset("dermamnist", tmp_path)


def test_sarscov2_is_never_downloaded(tmp_path):
    with pytest.raises(DataError, match="sarscov2_ct_224.npz not found"):
        load_dataset("sarscov2_ct_224", tmp_path)


def test_download_checks_md5_and_warns_on_mismatch(tmp_path, monkeypatch):
    payload = io.BytesIO()
    np.savez(payload, **{k: v for k, v in np.load(write_npz(tmp_path / "x.npz")).items()})
    data = payload.getvalue()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(data))
    with pytest.warns(UserWarning, match="md5"):
        ds = load_dataset("breastmnist", tmp_path / "empty")
    assert (cache_dir() / "breastmnist.npz").is_file()
    assert ds.name == "breastmnist" and len(ds.split("train")[0]) == 20


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(str(bad))


def test_images_labels_count_mismatch(tmp_path):
    p = write_npz(tmp_path / "m.npz", train_labels=np.zeros((19, 1), np.uint8))
    with pytest.raises(DataError, match="20 images but 19 labels"):
        load_dataset(str(p))


def test_wrong_dtype_and_missing_split_key(tmp_path):
    p = write_npz(tmp_path / "f.npz", train_images=np.zeros((20, 28, 28), np.float32))
    with pytest.raises(DataError, match="uint8"):
        load_dataset(str(p))
    np.savez(tmp_path / "half.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="not both"):
        load_dataset(str(tmp_path / "half.npz"))


def test_absent_split_is_named(tmp_path):
    np.savez(tmp_path / "t.npz", train_images=np.zeros((4, 8, 8), np.uint8),
             train_labels=np.array([0, 1, 0, 1], np.uint8))
    ds = load_dataset(str(tmp_path / "t.npz"))
    with pytest.raises(DataError, match="no 'test' split: it has train"):
        ds.split("test")


def _write_pngs(root, per_class=10, classes=("benign", "malignant")):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            size = 20 + i  # mixed sizes, as users' folders are
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_image_folder_split_rule_is_stratified_and_stable(tmp_path):
    _write_pngs(tmp_path / "set")
    a = load_image_folder(tmp_path / "set", seed=0)
    b = load_dataset(f"folder:{tmp_path / 'set'}")
    assert a.class_names == ["benign", "malignant"]
    assert [len(a.split(s)[1]) for s in ("train", "val", "test")] == [14, 2, 4]
    assert a.class_counts("test") == [2, 2]
    assert a.sha256 == b.sha256


def test_image_folder_with_explicit_splits_and_bad_file(tmp_path):
    for split in ("train", "val"):
        _write_pngs(tmp_path / "s" / split, per_class=3)
    ds = load_dataset(str(tmp_path / "s"))
    assert ds.split_names == ["train", "val"]
    (tmp_path / "s" / "train" / "benign" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_dataset(str(tmp_path / "s"))


@needs_data
def test_a_set_found_by_catalog_name_is_recorded_by_name_a_file_by_its_path(data_dir):
    by_name = load_dataset("breastmnist", data_dir)
    assert by_name.recorded_source == "breastmnist"  # found again on any machine; no local folder recorded
    by_path = load_dataset(str(data_dir / "breastmnist.npz"))
    assert by_path.name == "breastmnist" and by_path.recorded_source == str(data_dir / "breastmnist.npz")
