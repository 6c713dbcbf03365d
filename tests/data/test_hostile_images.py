"""Hostile image and array files (issue 19): each is refused by name with a DataError before it
is decoded or allocated, and a batch keeps going around it."""

import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.data import images as images_mod
from edgemed.data import load_dataset
from edgemed.data.images import MAX_IMAGE_PIXELS, read_image
from edgemed.errors import DataError
from tests.conftest import assert_clean_error, needs_data, write_npz

runner = CliRunner()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path, width=60000, height=60000):
    """A valid PNG header claiming width×height 1-bit pixels, with a few bytes of data: costs
    nothing to write, and only a reader that decodes before checking the size would suffer."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + _chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def onnx_bundle(tmp_path_factory, tiny_checkpoint):
    from edgemed.export.exporter import export

    out = tmp_path_factory.mktemp("bundle") / "onnx"
    export(tiny_checkpoint, ["onnx"], ["fp32"], out, parity_images=16, progress=False, threads=2)
    return out


@needs_data
def test_bomb_png_is_reported_by_name_and_the_rest_classified(onnx_bundle, data_dir, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.load(data_dir / "pneumoniamnist.npz")["test_images"][0]).save(good)
    bomb = bomb_png(tmp_path / "bomb.png")
    r = runner.invoke(app, ["predict", str(onnx_bundle), str(good), str(bomb), "--json"])
    assert r.exit_code == 3, r.output  # some files failed, the others ran
    assert "Traceback" not in r.output and "unexpected" not in r.output
    preds = {p["file"].rsplit("/", 1)[1]: p for p in json.loads(r.stdout)["predictions"]}
    assert preds["good.png"]["ok"]
    err = preds["bomb.png"]["error"]
    assert str(bomb) in err and "3600 MP" in err and "over edgemed's limit" in err and "downscale" in err
    assert "\n" not in err


def test_images_over_edgemeds_limit_are_refused_from_the_header(tmp_path):
    # 9000² is under PIL's own limits (only edgemed's check sees it); 10000² makes PIL warn
    for side in (9000, 10000):
        p = bomb_png(tmp_path / f"{side}.png", side, side)
        with pytest.raises(DataError, match=rf"{side}\.png: image is {side}×{side} \(\d+ MP\), over edgemed's limit"):
            read_image(p)
    assert MAX_IMAGE_PIXELS < 9000 * 9000
    ok = tmp_path / "ok.png"
    Image.new("L", (64, 32)).save(ok)
    assert read_image(ok).shape == (32, 64)


def test_oversized_and_corrupt_files_are_data_errors(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("L", (64, 64)).save(big)
    monkeypatch.setattr(images_mod, "MAX_IMAGE_BYTES", 16)
    with pytest.raises(DataError, match=r"big\.png: file is .* over edgemed's limit .* downscale"):
        read_image(big)
    monkeypatch.undo()
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    bad_idat = tmp_path / "bad_idat.png"
    bad_idat.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                         + _chunk(b"IDAT", b"not zlib at all") + _chunk(b"IEND", b""))
    for name in ("cut.jpg", "bad_idat.png"):
        with pytest.raises(DataError, match=rf"{name}: not a readable image"):
            read_image(tmp_path / name)


def _dicom(path, rows, cols, frames=1, pixel_bytes=None, pixels=None, **tags):
    """A 16-bit grey DICOM file: `pixels` (uint16, rows×cols) or a ramp; extra header `tags`."""
    pydicom = pytest.importorskip("pydicom", reason="pydicom (edgemed[dicom]) is not installed")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    for key, value in tags.items():
        setattr(ds, key, value)
    n = rows * cols * frames * 2 if pixel_bytes is None else pixel_bytes
    ds.PixelData = (np.asarray(pixels, "<u2") if pixels is not None else np.arange(n // 2, dtype="<u2") % 4096).tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).Rows == rows
    return path


def test_dicom_size_and_frames_are_checked_from_the_header(tmp_path):
    bomb = _dicom(tmp_path / "bomb.dcm", 60000, 60000, pixel_bytes=64)
    with pytest.raises(DataError, match=r"bomb\.dcm: image is 60000×60000 \(3600 MP\), over edgemed's limit"):
        read_image(bomb)
    volume = _dicom(tmp_path / "volume.dcm", 8, 8, frames=3)
    with pytest.raises(DataError, match=r"volume\.dcm: DICOM holds 3 frames .* its own file"):
        read_image(volume)
    ok = read_image(_dicom(tmp_path / "ok.dcm", 8, 6))
    assert ok.shape == (8, 6) and np.isfinite(ok).all()


def _npy_bytes(shape, descr="|u1", body=b""):
    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + body


def _npz(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _labels(n=4):
    buf = io.BytesIO()
    np.save(buf, np.zeros((n, 1), np.uint8))
    return buf.getvalue()


def test_npz_declaring_a_huge_array_is_refused_before_loading(tmp_path):
    p = _npz(tmp_path / "huge.npz", {"train_images.npy": _npy_bytes((10**6, 10**5, 28)),
                                     "train_labels.npy": _labels()})
    with pytest.raises(DataError, match=r"huge\.npz: member train_images declares shape \(1000000, 100000, 28\) "
                                        r"uint8 \(2607\.7 GiB\), over edgemed's limit of 8 GiB .*subsample"):
        load_dataset(str(p))
    r = runner.invoke(app, ["data", "info", str(p)])
    assert_clean_error(r, "member train_images declares shape")


def test_npz_hostile_members_are_data_errors(tmp_path):
    cases = {
        "object": {"train_images.npy": _npy_bytes((4, 28, 28), "|O"), "train_labels.npy": _labels()},
        "raw": {"train_images.npy": _npy_bytes((4, 28, 28), body=bytes(4 * 28 * 28)),
                "train_labels": b"not an array"},
        "truncated": {"train_images.npy": _npy_bytes((4, 28, 28), body=b"\0" * 10),
                      "train_labels.npy": _labels()},
        "negative": {"train_images.npy": _npy_bytes((-4, 28, 28)), "train_labels.npy": _labels()},
        "badheader": {"train_images.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': os.sy", "train_labels.npy": _labels()},
    }
    expect = {"object": "has dtype object; edgemed reads plain numeric arrays only",
              "raw": "member train_labels is corrupt", "truncated": "is truncated",
              "negative": "impossible shape", "badheader": "is not a plain .npy array"}
    for name, members in cases.items():
        with pytest.raises(DataError, match=expect[name]):
            load_dataset(str(_npz(tmp_path / f"{name}.npz", members)))
    np.save(tmp_path / "bare.npy", np.zeros((4, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"bare\.npy: not a readable \.npz data file"):
        load_dataset(str(tmp_path / "bare.npy"))
    labels = np.full((20, 1), 2**31, np.uint32)
    with pytest.raises(DataError, match="over edgemed's limit of .* classes"):
        load_dataset(str(write_npz(tmp_path / "many.npz", train_labels=labels)))
    floats = np.full((20, 1), 0.5, np.float32)
    with pytest.raises(DataError, match="non-integer values"):
        load_dataset(str(write_npz(tmp_path / "float.npz", train_labels=floats)))
