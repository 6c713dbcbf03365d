import pytest
import torch

from edgemed.checkpoint import load_checkpoint, read_checkpoint
from edgemed.errors import EdgemedError
from edgemed.models import count_macs, create_model
from tests.conftest import needs_data

tp = pytest.importorskip("torch_pruning")


@pytest.mark.parametrize("name", ["convnext_med_micro", "mednext_micro", "resnet18_micro"])
def test_channels_are_really_removed_and_the_graph_still_exports(name):
    from edgemed.compress.prune import prune_model

    model = create_model(name, 3, 1, 28).eval()
    x = torch.randn(2, 1, 28, 28)
    before, after = prune_model(model, x[:1], ratio=0.5, round_to=None)
    assert after < 0.6 * before
    assert model(x).shape == (2, 3)  # classifier outputs untouched
    torch.export.export(model, (x,))


def test_target_macs_is_reached():
    from edgemed.compress.prune import prune_model

    model = create_model("convnext_med_micro", 2, 1, 28).eval()
    before, after = prune_model(model, torch.randn(1, 1, 28, 28), target_macs=0.6, round_to=None)
    assert after <= 0.6 * before and after > 0.3 * before


@pytest.mark.parametrize("kw, msg", [
    (dict(ratio=1.5), "--ratio must be between 0 and 1"),
    (dict(target_macs=0.0), "--target-macs must be between 0 and 1"),
    (dict(), "exactly one of --ratio or --target-macs"),
    (dict(ratio=0.3, target_macs=0.5), "exactly one"),
    (dict(ratio=0.3, importance="random"), "unknown --importance"),
])
def test_bad_settings(kw, msg):
    from edgemed.compress.prune import prune_model

    with pytest.raises(EdgemedError, match=msg):
        prune_model(create_model("resnet18_micro", 2, 1, 28), torch.zeros(1, 1, 28, 28), **kw)


@needs_data
def test_prune_finetune_distill_saves_a_pickle_free_checkpoint(tiny_checkpoint, tmp_path):
    from edgemed.compress.prune import prune

    r = prune(tiny_checkpoint, out=tmp_path / "p.safetensors", target_macs=0.5, finetune_epochs=1, distill=True,
              limit_train=128, limit_eval=64, batch_size=32, threads=2, progress=False)
    assert r.after["macs"] <= 0.5 * r.before["macs"] and r.after["params"] < r.before["params"]
    assert r.before["torch_latency_ms"] > 0 and r.after["val_accuracy"] is not None
    ckpt = read_checkpoint(r.checkpoint)
    assert ckpt.module_shapes and ckpt.lineage[-1]["op"] == "prune" and ckpt.lineage[-1]["distill"]
    # 4 fine-tuning steps: FP32 whatever the CPU (too short to time), said apart from the parent's training
    assert ckpt.training["finetune_precision"] == "fp32"
    assert ckpt.training["precision"] == read_checkpoint(tiny_checkpoint).training["precision"]
    _, model = load_checkpoint(r.checkpoint)
    assert count_macs(model, (1, 1, 28, 28)) == r.after["macs"]


@needs_data
def test_taylor_importance_and_distill_without_finetune(tiny_checkpoint, tmp_path):
    from edgemed.compress.prune import prune

    r = prune(tiny_checkpoint, out=tmp_path / "t.safetensors", ratio=0.25, importance="taylor",
              limit_train=64, limit_eval=32, threads=2, progress=False)
    assert r.after["params"] < r.before["params"]
    with pytest.raises(EdgemedError, match="--distill needs --finetune-epochs"):
        prune(tiny_checkpoint, out=tmp_path / "d.safetensors", ratio=0.25, distill=True, progress=False)


@needs_data
def test_interrupted_fine_tuning_resumes_to_the_uninterrupted_result(tiny_checkpoint, tmp_path, monkeypatch):
    import edgemed.train.loop as loop
    from edgemed.compress.prune import prune
    from edgemed.train.loop import train_state_path

    kw = dict(ratio=0.3, finetune_epochs=2, distill=True, batch_size=32, limit_train=96, limit_eval=48,
              threads=1, progress=False)
    real, calls = loop.predict_logits, {"n": 0, "stop_at": None}

    def counted(*a, **k):  # validation passes: before, pruned, one per epoch, after, test
        calls["n"] += 1
        if calls["n"] == calls["stop_at"]:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "predict_logits", counted)
    whole = prune(tiny_checkpoint, out=tmp_path / "whole.safetensors", **kw)
    whole_calls = calls["n"]
    out = tmp_path / "resumed.safetensors"
    calls.update(n=0, stop_at=4)  # Ctrl-C in the second epoch's validation
    with pytest.raises(KeyboardInterrupt):
        prune(tiny_checkpoint, out=out, **kw)
    assert train_state_path(out).exists() and not out.exists()
    calls.update(n=0, stop_at=None)
    resumed = prune(tiny_checkpoint, out=out, **kw)
    assert calls["n"] == whole_calls - 1  # the first epoch was not trained again
    assert not train_state_path(out).exists()
    assert resumed.after["val_accuracy"] == whole.after["val_accuracy"]
    wa, wb = load_checkpoint(whole.checkpoint)[1].state_dict(), load_checkpoint(out)[1].state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)
