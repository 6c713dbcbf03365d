"""The user's own data for calibration and accuracy control: a CSV of path,label[,split] next to
the images, image folders, and DICOM with the modality's rescale and a display window."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgemed.data.datasets import load_dataset
from edgemed.errors import DataError
from tests.conftest import needs_data


@pytest.fixture
def image_list(tmp_path, data_dir):
    d = np.load(data_dir / "pneumoniamnist.npz")
    (tmp_path / "scans").mkdir()
    lines = ["path,label"]
    for i in range(60):
        Image.fromarray(d["train_images"][i]).save(tmp_path / "scans" / f"{i}.png")
        lines.append(f"scans/{i}.png,{['normal', 'pneumonia'][int(d['train_labels'][i, 0])]}")
    (tmp_path / "list.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "list.csv"


@needs_data
def test_csv_lists_images_with_labels_and_splits(image_list, tmp_path):
    ds = load_dataset(f"csv:{image_list}")
    assert ds.class_names == ["normal", "pneumonia"]
    sizes = {s: len(ds.split(s)[1]) for s in ds.split_names}
    assert sum(sizes.values()) == 60 and sizes["train"] > sizes["val"] > 0
    # labels are part of the data hash: the same images under other labels are other data
    rows = image_list.read_text().splitlines()
    flipped = tmp_path / "flipped.csv"
    flipped.write_text("\n".join([rows[0]] + [r.replace("normal", "X").replace("pneumonia", "normal").replace("X", "pneumonia")
                                             for r in rows[1:]]) + "\n")
    assert load_dataset(str(flipped)).sha256 != ds.sha256
    # a split column is used as given; integer labels name classes 0..K-1
    given = tmp_path / "given.csv"
    given.write_text("path,label,split\n" + "\n".join(f"scans/{i}.png,{i % 2},{'train' if i < 40 else 'test'}"
                                                        for i in range(60)) + "\n")
    ds = load_dataset(str(given))
    assert ds.class_names == ["0", "1"] and len(ds.split("train")[1]) == 40 and ds.split_names == ["train", "test"]


@needs_data
def test_calibration_builds_from_a_csv(image_list, tmp_path):
    from edgemed.compress.calibration import build_calibration, read_manifest

    out = build_calibration(f"csv:{image_list}", size=32, out=tmp_path / "cal.json")
    m = read_manifest(out)
    assert m["size"] == 32 and m["data_sha256"] == load_dataset(f"csv:{image_list}").sha256


@needs_data
def test_bad_csvs_are_one_line_each(image_list, tmp_path):
    cases = {
        "path,label\nscans/missing.png,normal\nscans/1.png,pneumonia\n": "scans/missing.png does not exist",
        "path,label\n../outside.png,normal\nscans/1.png,pneumonia\n": "outside its folder",
        "path,label\nscans/0.png,normal\nscans/1.png,normal\n": "at least two classes",
        "file,class\nscans/0.png,normal\n": "needs the columns path and label",
        "path,label\nscans/0.png,\n": "empty label",
        "path,label,split\nscans/0.png,a,train\nscans/1.png,b,holdout\n": "split 'holdout'",
    }
    for text, fragment in cases.items():
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(DataError, match=fragment):
            load_dataset(str(bad))


def test_dicom_rescale_and_window(tmp_path):
    from edgemed.data.images import read_image
    from tests.data.test_hostile_images import _dicom

    # stored 0..2048 → -1024..1024 HU; the file's window is soft tissue (-160..240 HU)
    path = _dicom(tmp_path / "ct.dcm", 2, 2, pixels=[[0, 864], [1064, 2048]], RescaleSlope=1,
                  RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    assert read_image(path).tolist() == [[0, 0], [128, 255]]  # -1024, -160, 40, 1024 HU in the file's window
    assert read_image(path, window=(0, 2048)).tolist() == [[0, 108], [132, 255]]
    with pytest.raises(DataError, match="width > 0"):
        read_image(path, window=(40, 0))
