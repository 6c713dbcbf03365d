"""`edgemed import`: models trained elsewhere, in the layouts real training code saves, become
checkpoints that every later stage takes; bad weights, pickles and wrong metadata are one line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.importer import import_model, read_sidecar
from tests.conftest import assert_clean_error, needs_data

runner = CliRunner()
NET = (
    "import torch\n"
    "from torch import nn\n"
    "def build(num_classes, in_channels=1, width=8):\n"
    "    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),\n"
    "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))\n")
META = dict(classes=["normal", "pneumonia"], input_size=28, channels=1, mean=[0.5], std=[0.5])


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def user_model(tmp_path):
    """The user's factory and a model of it 'trained elsewhere' (random weights, BatchNorm stats set)."""
    net = tmp_path / "net.py"
    net.write_text(NET)
    ns: dict = {}
    exec(compile(NET, str(net), "exec"), ns)  # the test's own code, to make reference weights
    torch.manual_seed(0)
    model = ns["build"](2)
    model[1].running_mean.uniform_(-1, 1)
    return net, model.eval()


LAYOUTS = {
    "bare .pt": (lambda sd: sd, "w.pt", None, None),
    "Lightning .ckpt": (lambda sd: {"epoch": 3, "global_step": 90, "state_dict": {"model." + k: v for k, v in sd.items()},
                                    "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.1}]}],
                                    "hyper_parameters": {"lr": 0.1}}, "w.ckpt", "state_dict", "model."),
    "DDP model_state_dict .pth": (lambda sd: {"epoch": 3, "model_state_dict": {"module." + k: v for k, v in sd.items()}},
                                  "w.pth", "model_state_dict", "module."),
    "loop 'model' .bin": (lambda sd: {"model": sd, "step": 7}, "w.bin", "model", None),
}


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_every_saved_layout_imports_to_the_same_model(layout, user_model, tmp_path):
    from edgemed.checkpoint import load_checkpoint

    net, model = user_model
    wrap, name, nested, prefix = LAYOUTS[layout]
    torch.save(wrap(model.state_dict()), tmp_path / name)
    r = import_model(f"{net}:build", weights=tmp_path / name, out=tmp_path / "m.safetensors", **META)
    assert r.layout["nested_under"] == nested and r.layout["prefix_stripped"] == prefix
    assert r.torch_export == "ok"
    ckpt, loaded = load_checkpoint(r.checkpoint)  # trusted: the user named the factory
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert ckpt.class_names == META["classes"] and ckpt.preprocess.mean == (0.5,)
    assert ckpt.lineage[0]["op"] == "import" and len(ckpt.lineage[0]["sha256"]) == 64


def test_safetensors_weights_and_the_weights_key(user_model, tmp_path):
    net, model = user_model
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    r = import_model(f"{net}:build", weights=tmp_path / "w.safetensors", out=tmp_path / "a.safetensors", **META)
    assert r.layout["kind"] == "safetensors" and r.loaded == len(model.state_dict())
    torch.save({"ema": {"weights": model.state_dict()}}, tmp_path / "ema.pt")
    with pytest.raises(EdgemedError, match="--weights-key"):
        import_model(f"{net}:build", weights=tmp_path / "ema.pt", out=tmp_path / "b.safetensors", **META)
    r = import_model(f"{net}:build", weights=tmp_path / "ema.pt", weights_key="ema.weights",
                     out=tmp_path / "b.safetensors", **META)
    assert r.layout["nested_under"] == "ema.weights"


def test_missing_unexpected_and_misshaped_keys_are_named(user_model, tmp_path):
    net, model = user_model
    sd = model.state_dict()
    partial = {k: v for k, v in sd.items() if not k.startswith("5.")}  # no classifier head
    torch.save(partial, tmp_path / "p.pt")
    with pytest.raises(EdgemedError, match=r"2 missing \(5.bias, 5.weight\).*--allow-missing"):
        import_model(f"{net}:build", weights=tmp_path / "p.pt", out=tmp_path / "x.safetensors", **META)
    assert not (tmp_path / "x.safetensors").exists()
    r = import_model(f"{net}:build", weights=tmp_path / "p.pt", out=tmp_path / "x.safetensors",
                     allow_missing=["5.*"], **META)
    assert r.allowed_missing == ["5.bias", "5.weight"]
    torch.save({**sd, "extra.weight": torch.zeros(3)}, tmp_path / "u.pt")
    with pytest.raises(EdgemedError, match=r"1 unexpected \(extra.weight\).*--ignore-unexpected"):
        import_model(f"{net}:build", weights=tmp_path / "u.pt", out=tmp_path / "y.safetensors", **META)
    # a Lightning module's own buffers (a weighted loss) beside the model's: left out by name
    torch.save({"state_dict": {**{"model." + k: v for k, v in sd.items()}, "criterion.weight": torch.ones(2)}},
               tmp_path / "l.ckpt")
    with pytest.raises(EdgemedError, match=r"1 unexpected \(criterion.weight\)"):
        import_model(f"{net}:build", weights=tmp_path / "l.ckpt", out=tmp_path / "l.safetensors", **META)
    r = import_model(f"{net}:build", weights=tmp_path / "l.ckpt", out=tmp_path / "l.safetensors",
                     ignore_unexpected=["criterion.*"], **META)
    assert r.loaded == len(sd) and r.layout["prefix_stripped"] == "model."
    torch.save(sd, tmp_path / "w.pt")
    with pytest.raises(EdgemedError, match=r"2 misshaped \(5.bias \(file \(2,\), model \(3,\)\)"):
        import_model(f"{net}:build", weights=tmp_path / "w.pt", out=tmp_path / "z.safetensors",
                     **{**META, "classes": ["a", "b", "c"]})
    with pytest.raises(EdgemedError, match="weights do not fit"):  # another architecture entirely
        import_model("mednext_micro", weights=tmp_path / "w.pt", out=tmp_path / "z.safetensors", **META)


def test_a_pickle_with_code_is_refused_and_never_run(user_model, tmp_path):
    import pickle

    net, model = user_model
    sentinel = tmp_path / "SENTINEL"

    class Payload:  # what a malicious "weights" file carries
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": model.state_dict(), "x": Payload()}, f)
    torch.save({"model": model}, tmp_path / "whole.pt")  # a whole pickled module
    for name in ("evil.pt", "whole.pt"):
        with pytest.raises(EdgemedError, match="never unpickles"):
            import_model(f"{net}:build", weights=tmp_path / name, out=tmp_path / "x.safetensors", **META)
    assert not sentinel.exists()


def test_the_import_is_checked_before_it_is_written(user_model, tmp_path):
    net, model = user_model
    torch.save(model.state_dict(), tmp_path / "w.pt")
    bad = [
        (dict(META, classes=["only"]), "--classes"),
        (dict(META, channels=2), "--channels"),
        (dict(META, input_size=None), "--input-size"),
        (dict(META, std=[0.5, 0.5]), "--std needs one value or one per channel"),
        (dict(META, task="binary", classes=["a", "b", "c"]), "--task binary needs 2 classes"),
    ]
    for kwargs, fragment in bad:
        with pytest.raises(EdgemedError, match=fragment):
            import_model(f"{net}:build", weights=tmp_path / "w.pt", out=tmp_path / "x.safetensors", **kwargs)
    sd = dict(model.state_dict())
    sd["0.weight"] = torch.full_like(sd["0.weight"], float("nan"))
    torch.save(sd, tmp_path / "nan.pt")
    with pytest.raises(EdgemedError, match="0.weight holds NaN"):
        import_model(f"{net}:build", weights=tmp_path / "nan.pt", out=tmp_path / "x.safetensors", **META)
    assert not (tmp_path / "x.safetensors").exists()


def test_sidecar_and_monai_metadata(user_model, tmp_path):
    net, model = user_model
    torch.save(model.state_dict(), tmp_path / "w.pt")
    (tmp_path / "meta.yaml").write_text("classes: [normal, pneumonia]\ninput_size: 28\nchannels: 1\nmean: [0.5]\n")
    r = import_model(f"{net}:build", weights=tmp_path / "w.pt", out=tmp_path / "a.safetensors",
                     metadata=tmp_path / "meta.yaml", std=[0.25])
    from edgemed.checkpoint import read_checkpoint

    ck = read_checkpoint(r.checkpoint)
    assert ck.preprocess.mean == (0.5,) and ck.preprocess.std == (0.25,) and ck.image_size == 28
    monai = {"network_data_format": {
        "inputs": {"image": {"type": "image", "num_channels": 1, "spatial_shape": [28, 28]}},
        "outputs": {"pred": {"type": "probabilities", "channel_def": {"0": "normal", "1": "pneumonia"}}}}}
    (tmp_path / "metadata.json").write_text(json.dumps(monai))
    assert read_sidecar(tmp_path / "metadata.json") == {"channels": 1, "input_size": 28,
                                                        "classes": ["normal", "pneumonia"]}
    (tmp_path / "bad.yaml").write_text("classes: [a, b]\nlayers: 3\n")
    with pytest.raises(EdgemedError, match="unknown keys layers"):
        read_sidecar(tmp_path / "bad.yaml")


@needs_data
def test_cli_import_then_quantize_and_a_new_session_needs_no_flag(user_model, tmp_path, data_dir):
    net, model = user_model
    torch.save({"state_dict": {"model." + k: v for k, v in model.state_dict().items()}}, tmp_path / "w.ckpt")
    ck = tmp_path / "mine.safetensors"
    r = run("import", f"{net}:build", "--weights", tmp_path / "w.ckpt", "--classes", "normal,pneumonia",
            "--input-size", 28, "--channels", 1, "--mean", 0.5, "--std", 0.5, "--dataset", "pneumoniamnist",
            "--out", ck)
    assert r.exit_code == 0, r.output
    assert "under 'state_dict'" in r.output and "'model.' stripped" in r.output
    assert_clean_error(run("import", f"{net}:build", "--weights", tmp_path / "w.ckpt", "--classes", "a,b",
                           "--input-size", 28, "--channels", 1, "--out", ck), "already exists")
    from edgemed.compress.calibration import build_calibration

    cal = build_calibration("pneumoniamnist", size=32, out=tmp_path / "cal.json")
    r = run("quantize", ck, "--calib", cal, "--formats", "onnx", "--val-limit", 64, "--max-drop", 100,
            "--out", tmp_path / "q")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "q" / "edgemed.json").exists()


def test_monai_densenet_through_the_factory_path(tmp_path):
    nets = pytest.importorskip("monai.networks.nets", reason="MONAI is not installed (pip install 'edgemed[monai]')")
    from edgemed.checkpoint import load_checkpoint

    model = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=8,
                             block_config=(2, 2, 2, 2)).eval()
    torch.save(model.state_dict(), tmp_path / "dn.pth")
    r = import_model("monai.networks.nets:DenseNet121", weights=tmp_path / "dn.pth", out=tmp_path / "dn.safetensors",
                     classes=["a", "b", "c"], input_size=32, channels=1,
                     model_kwargs={"spatial_dims": 2, "init_features": 8, "growth_rate": 8, "block_config": [2, 2, 2, 2]})
    assert r.torch_export == "ok"
    _, loaded = load_checkpoint(r.checkpoint)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
