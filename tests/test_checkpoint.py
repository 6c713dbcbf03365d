import json

import pytest
import torch

from edgemed.checkpoint import Checkpoint, load_checkpoint, read_checkpoint, save_checkpoint
from edgemed.data.preprocess import PreprocessSpec
from edgemed.errors import CheckpointError, EdgemedError
from edgemed.models import create_model


def make(name="mednext_micro", **kw):
    model = create_model(name, 2, 1, 28, **kw)
    ckpt = Checkpoint(path=None, model_name=name, model_kwargs=kw, num_classes=2, in_channels=1,
                      image_size=28, preprocess=PreprocessSpec((28, 28), 1, (0.5,), (0.5,)),
                      class_names=["a", "b"], task="binary", dataset={"name": "x", "sha256": "0" * 64})
    return model, ckpt


def test_round_trip_is_exact_and_pickle_free(tmp_path):
    model, ckpt = make()
    path = save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    # a safetensors file: 8-byte header length, then JSON; never a pickle stream
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "edgemed" in header["__metadata__"] and not raw.startswith(b"\x80")
    meta, loaded = load_checkpoint(path)
    assert meta.class_names == ["a", "b"] and meta.preprocess == ckpt.preprocess
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert not loaded.training


def test_existing_output_needs_force(tmp_path):
    model, ckpt = make()
    save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    with pytest.raises(EdgemedError, match="already exists.*--force"):
        save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    save_checkpoint(tmp_path / "m.safetensors", model, ckpt, force=True)


def test_pruned_shapes_are_recorded_and_restored(tmp_path):
    tp = pytest.importorskip("torch_pruning")
    model, ckpt = make("convnext_med_micro")
    x = torch.randn(1, 1, 28, 28)
    pruner = tp.pruner.MetaPruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=0.5, ignored_layers=[model.classifier])
    pruner.step()
    model.eval()
    path = save_checkpoint(tmp_path / "p.safetensors", model, ckpt)
    meta = read_checkpoint(path)
    assert meta.module_shapes and meta.module_shapes["stages.0.0.dwconv"]["out_channels"] == 4
    _, loaded = load_checkpoint(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_another_architecture_is_refused(tmp_path):
    model, ckpt = make("mednext_micro")
    ckpt.model_name = "resnet18_micro"
    ckpt.model_kwargs = {}
    path = save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    with pytest.raises(CheckpointError, match="do not fit resnet18_micro"):
        load_checkpoint(path)


def test_missing_tensors_are_named(tmp_path):
    import safetensors.torch as st

    model, ckpt = make()
    path = save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    tensors = st.load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    del tensors["classifier.weight"]
    st.save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="missing classifier.weight"):
        load_checkpoint(path)


@pytest.mark.parametrize("stored, why", [
    (lambda w: w.double() * 1e300, "not finite as torch.float32"),  # finite in float64, inf once loaded
    (lambda w: w.to(torch.int8), "stored as torch.int8 where mednext_micro holds torch.float32"),
])
@pytest.mark.parametrize("pruned", [False, True])
def test_weights_are_checked_as_the_model_holds_them(tmp_path, stored, why, pruned):
    import safetensors.torch as st
    from safetensors import safe_open

    model, ckpt = make()
    if pruned:  # a resized layer is rebuilt from the recorded shapes: in the model's dtype, not the file's
        model.classifier = torch.nn.Linear(model.classifier.in_features - 4, 2)
    path = save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = st.load_file(str(path))
    tensors["classifier.weight"] = stored(tensors["classifier.weight"] + 1e-3)
    st.save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=f"weight classifier.weight .*{why}"):
        load_checkpoint(path)
    tensors["classifier.weight"] = model.state_dict()["classifier.weight"].half()  # FP16, as the zoo ships
    st.save_file(tensors, str(path), metadata=meta)
    loaded = load_checkpoint(path)[1].classifier.weight
    assert loaded.dtype == torch.float32 and loaded.shape == model.classifier.weight.shape


def test_truncated_and_foreign_files(tmp_path):
    model, ckpt = make()
    path = save_checkpoint(tmp_path / "m.safetensors", model, ckpt)
    data = path.read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "t.safetensors")
    import safetensors.torch as st

    st.save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without edgemed metadata"):
        read_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "none.safetensors")
