import numpy as np
import pytest

from edgemed.data.preprocess import PreprocessSpec, spec_for
from edgemed.errors import EdgemedError


def spec(**kw):
    base = dict(size=(28, 28), channels=1, mean=(0.5,), std=(0.25,))
    base.update(kw)
    return PreprocessSpec(**base)


def test_round_trip_json():
    s = spec(interpolation="bicubic", resize="center_crop")
    assert PreprocessSpec.from_dict(s.to_dict()) == s


def test_normalize_values_and_layout():
    img = np.full((2, 28, 28), 255, np.uint8)
    x = spec()(img)
    assert x.shape == (2, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, (1.0 - 0.5) / 0.25)


def test_rgb_to_grey_and_grey_to_rgb():
    rgb = np.zeros((1, 28, 28, 3), np.uint8)
    rgb[..., 0] = 255  # pure red → PIL luma 76
    grey = spec().fit(rgb)
    assert grey.shape == (1, 28, 28, 1) and int(grey[0, 0, 0, 0]) == 76
    s3 = spec(channels=3, mean=(0, 0, 0), std=(1, 1, 1))
    out = s3.fit(np.full((1, 28, 28), 100, np.uint8))
    assert out.shape == (1, 28, 28, 3) and (out == 100).all()


def test_resize_stretch_and_center_crop():
    img = np.zeros((40, 80), np.uint8)
    img[:, 20:60] = 200  # a bright centre band
    stretched = spec().fit_one(img)
    cropped = spec(resize="center_crop").fit_one(img)
    assert stretched.shape == cropped.shape == (28, 28, 1)
    # the crop keeps only the bright centre; stretching keeps the dark sides too
    assert cropped.mean() > stretched.mean()


def test_variable_size_list_and_16bit():
    imgs = [np.zeros((30, 50), np.uint8), (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))]
    out = spec().fit(imgs)
    assert out.shape == (2, 28, 28, 1) and out[1].max() > 200


def test_nan_image_rejected():
    with pytest.raises(EdgemedError, match="NaN"):
        spec().fit_one(np.full((28, 28), np.nan, np.float32))


@pytest.mark.parametrize("kw, msg", [
    (dict(channels=2), "channels"),
    (dict(mean=(0.1, 0.2)), "mean/std"),
    (dict(std=(0.0,)), "std"),
    (dict(interpolation="cubic"), "interpolation"),
    (dict(resize="pad"), "resize"),
])
def test_invalid_specs(kw, msg):
    with pytest.raises(EdgemedError, match=msg):
        spec(**kw)


def test_from_dict_rejects_unknown_and_missing_keys():
    d = spec().to_dict()
    d["gamma"] = 1
    with pytest.raises(EdgemedError, match="unknown"):
        PreprocessSpec.from_dict(d)
    with pytest.raises(EdgemedError, match="missing"):
        PreprocessSpec.from_dict({"size": [28, 28]})


def test_spec_for_uses_training_statistics():
    x = np.concatenate([np.zeros((5, 4, 4, 1), np.uint8), np.full((5, 4, 4, 1), 255, np.uint8)])
    s = spec_for(x, (4, 4), 1)
    assert s.mean == pytest.approx((0.5,)) and s.std == pytest.approx((0.5,))
