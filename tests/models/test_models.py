import pytest
import torch

from edgemed.errors import ModelError
from edgemed.models import REGISTRY, count_macs, count_params, create_model, list_models


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_exports_with_torch_export(name):
    entry = REGISTRY[name]
    size = entry.default_image_size if entry.test_variant or entry.default_image_size <= 64 else 64
    model = create_model(name, num_classes=3, in_channels=1, image_size=size).eval()
    x = torch.randn(2, 1, size, size)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
    assert model(x).shape == (2, 3)


def test_zoo_sizes_match_the_papers():
    tiny = create_model("convnext_med", 2, 3, 224)
    assert 27e6 < count_params(tiny) < 29e6           # ConvNeXt-Tiny ≈ 28 M
    assert 4.2e9 < count_macs(tiny, (1, 3, 224, 224)) < 4.7e9  # ≈ 4.5 GMAC
    resnet = create_model("resnet18_medmnist", 2, 3, 28)
    assert 0.43e9 < count_macs(resnet, (1, 3, 28, 28)) < 0.48e9  # MedMNIST ResNet-18 (28) ≈ 0.46 GMAC


def test_small_input_variants_pick_their_stems():
    assert create_model("convnext_med", 2, 1, 28).stem[0].stride == (1, 1)
    assert create_model("convnext_med", 2, 1, 224).stem[0].stride == (4, 4)
    assert isinstance(create_model("resnet18_medmnist", 2, 1, 224).stem[-1], torch.nn.MaxPool2d)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in create_model("resnet18_medmnist", 2, 1, 28).modules())


def test_seed_modules_are_present():
    a = create_model("convnext_med_micro", 2, 1, 28)
    names = {type(m).__name__ for m in a.modules()}
    assert {"DualPool", "SEVector", "LayerNorm2d"} <= names
    b = create_model("mednext_micro", 2, 1, 28)
    names = {type(m).__name__ for m in b.modules()}
    assert {"SpatialEncodingModule", "SmoothDwConvFFN", "LinearAttentionFFN"} <= names


def test_forward_with_features_matches_forward():
    m = create_model("convnext_med_micro", 4, 3, 28).eval()
    x = torch.randn(3, 3, 28, 28)
    logits, feats = m.forward_with_features(x)
    torch.testing.assert_close(logits, m(x))
    assert feats.shape == (3, 2 * 32)


def test_list_hides_test_variants_by_default():
    assert all(not e.test_variant for e in list_models())
    assert any(e.test_variant for e in list_models(include_tests=True))


def test_unknown_model_and_wrong_kwargs():
    with pytest.raises(ModelError, match="unknown model 'vgg'"):
        create_model("vgg", 2)
    with pytest.raises(ModelError, match="does not take depthz"):
        create_model("mednext_micro", 2, 1, 28, depthz=3)
    with pytest.raises(ModelError, match="invalid arguments"):
        create_model("mednext_micro", 2, 1, 28, stem_stride=3)
    with pytest.raises(ModelError, match="at least 2 classes"):
        create_model("mednext_micro", 1)


def test_image_too_small_names_the_minimum():
    # small inputs get the stride-1 stem; three 2× downsamples still need 8 px
    with pytest.raises(ModelError, match="image size 4 is too small for convnext_med: it needs at least 8"):
        create_model("convnext_med", 2, 1, 4)


def test_user_factory_from_file(tmp_path):
    f = tmp_path / "mynet.py"
    f.write_text(
        "import torch\n"
        "def build(num_classes, in_channels=3, width=4):\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(in_channels, width, 3), torch.nn.AdaptiveAvgPool2d(1),\n"
        "                               torch.nn.Flatten(), torch.nn.Linear(width, num_classes))\n")
    m = create_model(f"{f}:build", 5, 1, 28, width=6)
    assert m(torch.zeros(1, 1, 28, 28)).shape == (1, 5)
    with pytest.raises(ModelError, match="has no callable 'nope'"):
        create_model(f"{f}:nope", 2)
    with pytest.raises(ModelError, match="not found"):
        create_model(f"{tmp_path / 'missing.py'}:build", 2)
