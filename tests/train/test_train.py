import numpy as np
import pytest
import torch

from edgemed.checkpoint import load_checkpoint, read_checkpoint
from edgemed.errors import EdgemedError, TrainingDiverged
from edgemed.train import evaluate, train
from edgemed.train.augment import augment
from tests.conftest import needs_data


@needs_data
def test_tiny_training_saves_best_checkpoint_with_metrics(tiny_checkpoint):
    ckpt = read_checkpoint(tiny_checkpoint)
    assert ckpt.model_name == "mednext_micro" and ckpt.class_names == ["normal", "pneumonia"]
    assert ckpt.dataset["name"] == "pneumoniamnist" and len(ckpt.dataset["sha256"]) == 64
    # a catalog set is found again by name on any machine: no folder of the training machine
    assert ckpt.dataset["source"] == "pneumoniamnist"
    assert ckpt.training["host"]["cpu"] and isinstance(ckpt.training["host"]["isa"], list)
    assert set(ckpt.metrics) == {"val", "test"}
    assert ckpt.metrics["test"]["accuracy"]["ci"] is not None
    assert ckpt.training["history"] and ckpt.training["wall_time_s"] > 0
    assert ckpt.versions["torch"].startswith("2.")
    # PreprocessSpec holds the training split's statistics
    assert 0.3 < ckpt.preprocess.mean[0] < 0.8


@needs_data
def test_evaluate_reproduces_training_metrics(tiny_checkpoint):
    ckpt = read_checkpoint(tiny_checkpoint)
    m = evaluate(tiny_checkpoint, split="test", limit=128, n_boot=0)
    assert m["accuracy"]["value"] == pytest.approx(ckpt.metrics["test"]["accuracy"]["value"])
    assert m["n"] == ckpt.metrics["test"]["n"]


@needs_data
def test_same_seed_same_weights(tmp_path):
    kw = dict(epochs=1, batch_size=32, limit_train=128, limit_eval=64, threads=1, progress=False,
              precision="fp32")
    a = train("resnet18_micro", "breastmnist", out=tmp_path / "a.safetensors", seed=3, **kw)
    b = train("resnet18_micro", "breastmnist", out=tmp_path / "b.safetensors", seed=3, **kw)
    wa, wb = load_checkpoint(a.checkpoint)[1].state_dict(), load_checkpoint(b.checkpoint)[1].state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k])


@needs_data
def test_nan_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(TrainingDiverged, match="lower --lr"):
        train("resnet18_micro", "breastmnist", out=tmp_path / "n.safetensors", epochs=1,
              batch_size=32, lr=1e12, limit_train=64, limit_eval=32, progress=False)
    assert not (tmp_path / "n.safetensors").exists()


@needs_data
def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "x.safetensors"
    out.write_bytes(b"precious")
    with pytest.raises(EdgemedError, match="already exists"):
        train("resnet18_micro", "breastmnist", out=out, epochs=1, limit_train=32, progress=False)
    assert out.read_bytes() == b"precious"


@needs_data
def test_class_weights_and_multiclass_rgb(tiny_convnext_checkpoint):
    ckpt = read_checkpoint(tiny_convnext_checkpoint)
    assert ckpt.in_channels == 3 and ckpt.num_classes == 8
    assert ckpt.training["feature_smoothing"] == pytest.approx(0.1)  # seed A's loss is on by default


def test_augment_keeps_shape_and_changes_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    y = augment(x, "strong", g)
    assert y.shape == x.shape and not torch.equal(x, y)
    assert torch.equal(augment(x, "none", g), x)


def test_feature_smoothing_pulls_toward_class_centres():
    from edgemed.train.losses import FeatureSmoothingLoss

    loss = FeatureSmoothingLoss(2, 4, weight=1.0, momentum=0.0)
    f = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    assert loss(f, torch.tensor([0, 0, 1])).item() == pytest.approx(0.0, abs=1e-6)
    spread = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0]])
    assert loss(spread, torch.tensor([0, 0])).item() > 0.4
    assert np.isfinite(loss.centers.numpy()).all()


@needs_data
def test_init_starts_from_a_checkpoint_at_another_size(tiny_checkpoint, tmp_path):
    start = read_checkpoint(tiny_checkpoint)
    # lr so small the weights barely move: the result must sit next to the starting weights
    r = train("mednext_micro", "pneumoniamnist", out=tmp_path / "ft.safetensors", init=tiny_checkpoint,
              image_size=32, epochs=1, batch_size=32, lr=1e-9, limit_train=64, limit_eval=32, threads=1,
              progress=False, precision="fp32")
    ckpt, net = load_checkpoint(r.checkpoint)
    assert ckpt.image_size == 32 and ckpt.preprocess.size == (32, 32)
    assert ckpt.preprocess.mean == start.preprocess.mean  # the starting weights' normalisation
    assert ckpt.lineage[-1]["op"] == "train" and ckpt.lineage[-1]["init_sha256"] == start.sha256
    assert ckpt.lineage[-1]["init_image_size"] == 28
    w0 = dict(load_checkpoint(tiny_checkpoint)[1].named_parameters())
    for k, v in net.named_parameters():  # (BatchNorm statistics move with any forward pass)
        torch.testing.assert_close(v, w0[k], atol=1e-5, rtol=0)


@needs_data
def test_init_refuses_another_model_or_task(tiny_checkpoint, tmp_path):
    with pytest.raises(EdgemedError, match="holds a mednext_micro"):
        train("resnet18_micro", "pneumoniamnist", out=tmp_path / "a.safetensors", init=tiny_checkpoint,
              epochs=1, limit_train=32, progress=False)
    with pytest.raises(EdgemedError, match="trained on 1-channel images; bloodmnist has 3"):
        train("mednext_micro", "bloodmnist", out=tmp_path / "b.safetensors", init=tiny_checkpoint,
              epochs=1, limit_train=32, progress=False)
    assert not list(tmp_path.iterdir())


@needs_data
@pytest.mark.parametrize("model, fixture", [("mednext_micro", "tiny_checkpoint"),
                                            ("convnext_med_micro", "tiny_convnext_checkpoint")])
def test_init_on_other_classes_keeps_the_backbone_and_gives_a_new_head(model, fixture, tmp_path, request):
    """Fine-tuning shipped (or any) weights on a user's data with other classes: every layer but
    the class-count-dependent ones starts from the checkpoint; those are new, for the data's classes."""
    from tests.conftest import write_npz

    start_path = request.getfixturevalue(fixture)
    start = read_checkpoint(start_path)
    classes = 3 if start.num_classes != 3 else 4
    data = write_npz(tmp_path / "other.npz", n=(48, 12, 12), classes=classes, rgb=start.in_channels == 3)
    r = train(model, str(data), out=tmp_path / "ft.safetensors", init=start_path, epochs=1, batch_size=16,
              lr=1e-9, threads=1, progress=False, precision="fp32")
    ckpt, net = load_checkpoint(r.checkpoint)
    step = ckpt.lineage[-1]
    assert ckpt.num_classes == classes and step["init_sha256"] == start.sha256 and step["new_head"]
    assert step["init_classes"] == start.class_names
    w0 = dict(load_checkpoint(start_path)[1].named_parameters())
    new = [k for k, v in net.named_parameters() if v.shape != w0[k].shape]
    assert new and all(k.rpartition(".")[0] in step["new_head"] for k in new)
    for k, v in net.named_parameters():  # lr 1e-9: all else is where the checkpoint left it
        if k not in new:
            torch.testing.assert_close(v, w0[k], atol=1e-5, rtol=0)


def _watch_validation(monkeypatch, interrupt_at: int | None = None) -> dict:
    """Count `fit`'s validation passes (one per epoch, then val and test metrics at the end) and
    optionally stop with Ctrl-C at the `interrupt_at`-th, i.e. after that many - 1 epochs."""
    import edgemed.train.loop as loop

    real = loop.predict_logits
    calls = {"n": 0, "restore": lambda: monkeypatch.setattr(loop, "predict_logits", real)}

    def watched(*a, **k):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "predict_logits", watched)
    return calls


@needs_data
@pytest.mark.parametrize("opts", [dict(ema=0.0), dict(ema=0.9), dict(mixup=0.4, cutmix=1.0, feature_smoothing=0.0)])
def test_interrupted_training_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, opts):
    from edgemed.train.loop import train_state_path

    # convnext_med_micro: drop path (global RNG), augmentation and mixing (generator), feature
    # smoothing (class centres) and the weight average all carry state across epochs
    kw = dict(epochs=3, batch_size=32, limit_train=128, limit_eval=64, threads=1, progress=False,
              precision="fp32", augment="strong", patience=0, model_kwargs={"drop_path": 0.2}, **opts)
    whole = train("convnext_med_micro", "breastmnist", out=tmp_path / "whole.safetensors", **kw)
    assert not train_state_path(whole.checkpoint).exists()

    out = tmp_path / "resumed.safetensors"
    watch = _watch_validation(monkeypatch, interrupt_at=3)  # Ctrl-C in epoch 3's validation
    with pytest.raises(KeyboardInterrupt):
        train("convnext_med_micro", "breastmnist", out=out, **kw)
    watch["restore"]()
    assert not out.exists() and train_state_path(out).exists()
    calls = _watch_validation(monkeypatch)
    resumed = train("convnext_med_micro", "breastmnist", out=out, **kw)
    assert calls["n"] == 1 + 2  # only epoch 3 was trained again (then final val and test)
    assert not train_state_path(out).exists()

    strip = [{k: v for k, v in row.items() if k != "time_s"} for row in whole.history]
    assert [{k: v for k, v in row.items() if k != "time_s"} for row in resumed.history] == strip
    wa, wb = load_checkpoint(whole.checkpoint)[1].state_dict(), load_checkpoint(out)[1].state_dict()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)


@needs_data
def test_ema_saves_the_weight_average_without_changing_training(tmp_path):
    kw = dict(epochs=2, batch_size=32, limit_train=96, limit_eval=48, threads=1, progress=False,
              precision="fp32", patience=0)
    plain = train("resnet18_micro", "breastmnist", out=tmp_path / "plain.safetensors", **kw)
    averaged = train("resnet18_micro", "breastmnist", out=tmp_path / "ema.safetensors", ema=0.9, **kw)
    # the same steps are taken; what is validated and saved is their average
    assert [r["train_loss"] for r in averaged.history] == [r["train_loss"] for r in plain.history]
    wa, wb = load_checkpoint(plain.checkpoint)[1].state_dict(), load_checkpoint(averaged.checkpoint)[1].state_dict()
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if wa[k].is_floating_point())
    assert load_checkpoint(averaged.checkpoint)[0].training["ema"] == 0.9
    with pytest.raises(EdgemedError, match="--ema"):
        train("resnet18_micro", "breastmnist", out=tmp_path / "bad.safetensors", ema=1.0, **kw)


def test_mix_batch_shares_each_image_and_its_loss_by_lambda():
    from edgemed.train.augment import mix_batch

    n, side = 16, 32
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, side, side).clone()
    y = torch.arange(n)  # each image is its own label's value: the partner label names the partner image
    before = x.clone()
    for seed in range(4):
        mixed, partner, lam = mix_batch(x, y, 0.4, 0.0, torch.Generator().manual_seed(seed))  # MixUp: a blend
        assert 0 <= lam <= 1 and sorted(partner.tolist()) == list(range(n))
        torch.testing.assert_close(mixed[:, 0, 0, 0], lam * y.float() + (1 - lam) * partner.float())
        mixed, partner, lam = mix_batch(x, y, 0.0, 1.0, torch.Generator().manual_seed(seed))  # CutMix: a box
        moved = partner != y
        from_partner = (mixed == partner.float().view(n, 1, 1, 1)) & (mixed != y.float().view(n, 1, 1, 1))
        # λ is the share of each image's own pixels, the box being the same for the whole batch
        assert torch.equal(from_partner[moved].float().mean((1, 2, 3)),
                           torch.full((int(moved.sum()),), 1 - lam))
        assert torch.equal(x, before)  # the batch given is not changed in place
    a = mix_batch(x, y, 0.4, 1.0, torch.Generator().manual_seed(7))
    b = mix_batch(x, y, 0.4, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and a[2] == b[2]  # from the generator alone: runs and resumes repeat
    kinds = {bool(((m := mix_batch(x, y, 0.4, 1.0, torch.Generator().manual_seed(s))[0]) != m.round()).any())
             for s in range(12)}
    assert kinds == {True, False}  # with both set, some batches blend (fractions), some paste boxes


@needs_data
def test_mixing_is_recorded_and_bad_settings_are_refused(tmp_path):
    kw = dict(epochs=1, batch_size=32, limit_train=64, limit_eval=48, threads=1, progress=False, precision="fp32")
    r = train("resnet18_micro", "breastmnist", out=tmp_path / "m.safetensors", cutmix=1.0, **kw)
    t = read_checkpoint(r.checkpoint).training
    assert t["cutmix"] == 1.0 and t["mixup"] == 0.0
    plain = train("resnet18_micro", "breastmnist", out=tmp_path / "p.safetensors", **kw)
    assert "mixup" not in read_checkpoint(plain.checkpoint).training
    assert r.history[0]["train_loss"] != plain.history[0]["train_loss"]  # the mixed batches were trained on
    # convnext_med's default feature smoothing gives way to mixing; asked for, it is refused below
    c = train("convnext_med_micro", "breastmnist", out=tmp_path / "c.safetensors", mixup=0.2, **kw)
    assert read_checkpoint(c.checkpoint).training["feature_smoothing"] == 0.0
    for bad, msg in [(dict(mixup=-1.0), "--mixup and --cutmix are Beta"), (dict(cutmix=float("nan")), "Beta"),
                     (dict(mixup=0.2, feature_smoothing=0.1), "--feature-smoothing 0 with --mixup"),
                     (dict(mixup=0.2, label_smoothing=2.0), "--label-smoothing is a share"),
                     (dict(label_smoothing=float("nan")), "--label-smoothing is a share"),
                     (dict(feature_smoothing=-1.0), "--feature-smoothing is a weight"),
                     (dict(lr=float("nan")), "--lr > 0")]:
        with pytest.raises(EdgemedError, match=msg):
            train("resnet18_micro", "breastmnist", out=tmp_path / "bad.safetensors", **bad, **kw)
        assert not (tmp_path / "bad.safetensors").exists()


def test_random_crops_are_windows_of_each_image_at_its_own_scale():
    from edgemed.train.loop import random_crops

    x = torch.arange(4 * 2 * 10 * 12, dtype=torch.float32).reshape(4, 2, 10, 12)
    crops = random_crops(x, 6, torch.Generator().manual_seed(0))
    assert crops.shape == (4, 2, 6, 6)
    offsets = set()
    for img, crop in zip(x, crops, strict=True):
        top, left = divmod(int(crop[0, 0, 0] - img[0, 0, 0]), 12)  # values encode their position
        torch.testing.assert_close(crop, img[:, top:top + 6, left:left + 6], rtol=0, atol=0)
        offsets.add((top, left))
    assert len(offsets) > 1  # each image gets its own window


def test_train_crop_needs_a_model_that_runs_on_crops():
    from edgemed.errors import ModelError
    from edgemed.train.loop import FitConfig, fit

    fixed_head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 2))  # takes 28² only
    x, y = torch.zeros(8, 1, 28, 28), np.array([0, 1] * 4)
    with pytest.raises(ModelError, match="--train-crop 16: .*fully convolutional.*--train-crop 0"):
        fit(fixed_head, x, y, x.numpy(), y, ["a", "b"], FitConfig(epochs=1, train_crop=16), progress=False)
    # a student that runs on crops, distilled from a teacher that does not
    pooled = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ModelError, match="--train-crop 16: the --teacher does not run on 16² crops"):
        fit(pooled, x, y, x.numpy(), y, ["a", "b"], FitConfig(epochs=1, train_crop=16), teacher=fixed_head,
            progress=False)
    for bad in (-1.0, 2.0, float("nan")):
        with pytest.raises(EdgemedError, match="--warmup-epochs"):
            FitConfig(epochs=1, warmup_epochs=bad).validate()


@needs_data
def test_train_crop_trains_on_crops_and_validates_whole_images(tmp_path, monkeypatch):
    from edgemed.train import loop

    seen = []
    real = loop.random_crops
    monkeypatch.setattr(loop, "random_crops", lambda x, side, g: seen.append(real(x, side, g)) or seen[-1])
    kw = dict(epochs=1, batch_size=32, limit_train=64, limit_eval=32, threads=1, progress=False,
              precision="fp32", patience=0, image_size=28)
    result = train("resnet18_micro", "breastmnist", out=tmp_path / "crop.safetensors", train_crop=16, **kw)
    assert seen and all(b.shape[2:] == (16, 16) for b in seen)
    ckpt = read_checkpoint(result.checkpoint)
    assert ckpt.image_size == 28 and ckpt.training["train_crop"] == 16 and "test" in ckpt.metrics
    for bad in (29, -1):
        with pytest.raises(EdgemedError, match="--train-crop"):
            train("resnet18_micro", "breastmnist", out=tmp_path / "bad.safetensors", train_crop=bad, **kw)


@needs_data
def test_saved_state_of_other_settings_is_not_resumed(tmp_path, monkeypatch):
    from edgemed.train.loop import train_state_path

    kw = dict(epochs=2, batch_size=32, limit_train=96, limit_eval=48, threads=1, progress=False, precision="fp32")
    out = tmp_path / "m.safetensors"
    watch = _watch_validation(monkeypatch, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        train("resnet18_micro", "breastmnist", out=out, lr=1e-3, **kw)
    watch["restore"]()
    assert train_state_path(out).exists()
    calls = _watch_validation(monkeypatch)
    changed = train("resnet18_micro", "breastmnist", out=out, lr=3e-3, **kw)
    assert calls["n"] == 2 + 2  # both epochs trained
    fresh = train("resnet18_micro", "breastmnist", out=tmp_path / "fresh.safetensors", lr=3e-3, **kw)
    assert changed.history[0]["train_loss"] == fresh.history[0]["train_loss"]
    assert len(changed.history) == 2


def test_a_damaged_state_file_is_ignored(tmp_path):
    from edgemed.train.resume import load_fit_state

    bad = tmp_path / "m.safetensors.train-state"
    bad.write_bytes(b"not a safetensors file")
    assert load_fit_state(bad, "any") is None


@needs_data
def test_tie_break_keeps_the_tied_epoch_with_the_lowest_validation_loss(tmp_path):
    # 16 validation images: the micro model predicts the majority class at every epoch, so all
    # epochs tie on accuracy while the validation loss still moves
    kw = dict(epochs=6, batch_size=32, limit_train=96, limit_eval=16, threads=1, progress=False,
              precision="fp32", patience=3)
    first = train("resnet18_micro", "breastmnist", out=tmp_path / "first.safetensors", **kw)
    lowest = train("resnet18_micro", "breastmnist", out=tmp_path / "loss.safetensors", tie_break="loss", **kw)
    history = first.history
    # selection only: the same steps, and a tie won on loss is no gain for early stopping
    assert [h["val_loss"] for h in lowest.history] == [h["val_loss"] for h in history]
    assert len(history) == 4, "no accuracy gain after epoch 1: patience 3 stops after epoch 4"
    top = max(h["val_accuracy"] for h in history)
    tied = [h for h in history if h["val_accuracy"] == top]
    assert len({h["val_loss"] for h in tied}) > 1, "the test needs tied epochs with different losses"
    first_ckpt, lowest_ckpt = load_checkpoint(first.checkpoint)[0], load_checkpoint(lowest.checkpoint)[0]
    assert first_ckpt.training["best_epoch"] == tied[0]["epoch"]
    assert lowest_ckpt.training["best_epoch"] == min(tied, key=lambda h: h["val_loss"])["epoch"]
    assert lowest_ckpt.training["best_epoch"] != first_ckpt.training["best_epoch"]
    assert lowest_ckpt.training["tie_break"] == "loss"
    assert lowest_ckpt.metrics["val"]["accuracy"]["value"] == top
    with pytest.raises(EdgemedError, match="--tie-break"):
        train("resnet18_micro", "breastmnist", out=tmp_path / "bad.safetensors", tie_break="last", **kw)


def test_teacher_view_feeds_the_teacher_its_own_normalisation_and_size():
    from edgemed.data.preprocess import PreprocessSpec
    from edgemed.train.teacher import TeacherView

    student = PreprocessSpec(size=(32, 32), channels=1, mean=(0.4,), std=(0.2,))
    teacher = PreprocessSpec(size=(16, 16), channels=1, mean=(0.5,), std=(0.25,))
    view = TeacherView(torch.nn.Identity(), student, teacher)
    raw = torch.full((2, 1, 32, 32), 0.7)  # one grey level, as [0, 1] pixels
    seen = view((raw - 0.4) / 0.2)
    assert seen.shape == (2, 1, 16, 16)
    torch.testing.assert_close(seen, torch.full_like(seen, (0.7 - 0.5) / 0.25))
    view.train()
    assert not view.training and not view.net.training  # the teacher never trains
    # a --train-crop window is rescaled as the whole image is: 24 student pixels are 12 teacher ones
    assert view((torch.full((2, 1, 24, 24), 0.7) - 0.4) / 0.2).shape == (2, 1, 12, 12)
    same = TeacherView(torch.nn.Identity(), student, student)
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(same(x), x)


@needs_data
def test_a_student_learns_from_its_teacher_not_only_from_the_labels(tiny_checkpoint, tmp_path):
    from edgemed.checkpoint import save_checkpoint

    # a teacher that predicts the opposite of what it learned: its head's logits negated
    ckpt, net = load_checkpoint(tiny_checkpoint)
    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.neg_()
        head.bias.neg_()
    contrary = tmp_path / "contrary.safetensors"
    save_checkpoint(contrary, net, ckpt)
    # the student runs at 32² while the teacher learned at 28²: the view resizes for it
    kw = dict(epochs=3, batch_size=32, lr=3e-3, image_size=32, limit_train=256, limit_eval=128, threads=1,
              progress=False, precision="fp32", patience=0, monitor="loss")
    plain = train("resnet18_micro", "pneumoniamnist", out=tmp_path / "plain.safetensors", **kw)
    taught = train("resnet18_micro", "pneumoniamnist", out=tmp_path / "taught.safetensors", teacher=contrary,
                   distill_alpha=1.0, **kw)
    student = read_checkpoint(taught.checkpoint)
    assert student.training["distill"] == {"alpha": 1.0, "temperature": 4.0}
    assert student.preprocess.mean == ckpt.preprocess.mean  # the teacher's normalisation
    # the lineage names the teacher, and a bundle's model card says so
    from edgemed.card import model_card

    assert student.lineage == [{"op": "train", "image_size": 32, "teacher": "contrary.safetensors",
                                "teacher_sha256": read_checkpoint(contrary).sha256, "teacher_model": "mednext_micro",
                                "teacher_image_size": 28}]
    items = {i["label"]: i["value"] for sec in model_card({"provenance": {"lineage": student.lineage}})["sections"]
             for i in sec["items"]}
    assert "contrary.safetensors" in items["Knowledge distillation"]
    # on labels alone the student learns to rank the classes; on the contrary teacher alone it ranks
    # them the wrong way round (AUC below 0.5; accuracy could pass by predicting the majority class)
    assert plain.history[-1]["val_auc"] > 0.8
    assert taught.history[-1]["val_auc"] < 0.5


@needs_data
def test_a_teacher_of_another_task_or_bad_settings_are_refused(tiny_convnext_checkpoint, tiny_checkpoint, tmp_path):
    kw = dict(epochs=1, limit_train=32, limit_eval=16, progress=False)
    with pytest.raises(EdgemedError, match="distil from a model of this data set's task"):
        train("resnet18_micro", "pneumoniamnist", out=tmp_path / "a.safetensors", teacher=tiny_convnext_checkpoint, **kw)
    with pytest.raises(EdgemedError, match="--distill-alpha"):
        train("resnet18_micro", "pneumoniamnist", out=tmp_path / "b.safetensors", teacher=tiny_checkpoint,
              distill_alpha=1.5, **kw)
    with pytest.raises(EdgemedError, match="give a --teacher CKPT, or drop them"):
        train("resnet18_micro", "pneumoniamnist", out=tmp_path / "c.safetensors", distill_temperature=2.0, **kw)
    assert not list(tmp_path.iterdir())


def test_precision_auto_keeps_bf16_only_where_it_measured_faster(monkeypatch):
    import edgemed.train.precision as precision

    timings = {}
    monkeypatch.setattr(precision, "has_bf16", lambda: True)
    monkeypatch.setattr(precision, "step_ms", lambda net, x, y, steps, warmup=1, teacher=None: dict(timings))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    timings.update(fp32=300.0, bf16=250.0)  # 1.2×: bf16
    assert precision.choose("auto", net, x, y, 500) == (True, {"fp32_ms_per_step": 300.0, "bf16_ms_per_step": 250.0,
                                                                "margin": precision.BF16_MARGIN})
    timings.update(fp32=300.0, bf16=290.0)  # 1.03×: not worth bf16's lower precision
    assert precision.choose("auto", net, x, y, 500)[0] is False
    timings.update(fp32=252.0, bf16=304.0)  # slower (mednext_small at 28² on Intel AMX)
    assert precision.choose("auto", net, x, y, 500)[0] is False
    assert precision.choose("auto", net, x, y, 10)[0] is False  # too short a run to time
    assert precision.choose("bf16", net, x, y, 10) == (True, None) and precision.choose("fp32", net, x, y, 500) == (False, None)
    monkeypatch.setattr(precision, "has_bf16", lambda: False)
    assert precision.choose("auto", net, x, y, 500) == (False, None)


def test_the_precision_probe_changes_no_training_step(monkeypatch):
    """Timed on copies, with the global RNG (drop path) restored: the weights are those of the same
    run without the probe; the real timings on a real model are of the right shape."""
    import edgemed.train.precision as precision

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Dropout(0.5), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = torch.randn(8, 1, 16, 16), torch.tensor([0, 1, 2, 3] * 2)
    monkeypatch.setattr(precision, "has_bf16", lambda: True)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    bf16, probe = precision.choose("auto", net, x, y, 500)
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert probe["fp32_ms_per_step"] > 0 and probe["bf16_ms_per_step"] > 0 and isinstance(bf16, bool)


def test_the_precision_probe_times_the_teachers_forward_pass_too(monkeypatch):
    """With distillation every step runs the teacher, often a larger model: auto times it in each
    precision, as training runs it (under the same autocast, without gradients)."""
    import edgemed.train.precision as precision

    student = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    teacher = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                  torch.nn.Linear(8, 2)).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append((o.dtype, torch.is_grad_enabled())))
    monkeypatch.setattr(precision, "has_bf16", lambda: True)
    x, y = torch.randn(4, 1, 12, 12), torch.tensor([0, 1, 0, 1])
    precision.choose("auto", student, x, y, 500, teacher)
    assert len(seen) == 2 * (precision.PROBE_STEPS + 1)  # warm-up and timed steps, both precisions
    assert {d for d, _ in seen} == {torch.float32, torch.bfloat16} and not any(g for _, g in seen)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


@needs_data
def test_a_resumed_run_keeps_the_precision_auto_chose(tmp_path, monkeypatch):
    import edgemed.train.precision as precision
    from edgemed.train.loop import train_state_path

    monkeypatch.setattr(precision, "has_bf16", lambda: True)
    monkeypatch.setattr(precision, "PROBE_MIN_STEPS", 1)
    chosen = {"fp32": 200.0, "bf16": 100.0}
    monkeypatch.setattr(precision, "step_ms", lambda net, x, y, steps, warmup=1, teacher=None: dict(chosen))
    kw = dict(epochs=2, batch_size=32, limit_train=64, limit_eval=48, threads=1, progress=False, patience=0)
    out = tmp_path / "r.safetensors"
    watch = _watch_validation(monkeypatch, interrupt_at=2)  # Ctrl-C in epoch 2's validation
    with pytest.raises(KeyboardInterrupt):
        train("resnet18_micro", "breastmnist", out=out, **kw)
    watch["restore"]()
    assert train_state_path(out).exists()
    chosen.update(fp32=100.0, bf16=200.0)  # the probe would now pick FP32: the resumed run keeps bf16
    t = read_checkpoint(train("resnet18_micro", "breastmnist", out=out, **kw).checkpoint).training
    assert t["precision"] == "bf16-autocast" and "fp32_from_epoch" not in t
    assert t["precision_probe"] == {"fp32_ms_per_step": 200.0, "bf16_ms_per_step": 100.0, "margin": 1.1}
    fresh = read_checkpoint(train("resnet18_micro", "breastmnist", out=tmp_path / "f.safetensors", **kw).checkpoint)
    assert fresh.training["precision"] == "fp32" and fresh.training["precision_probe"]["bf16_ms_per_step"] == 200.0


@needs_data
def test_a_run_auto_started_in_bf16_resumes_in_fp32_on_a_cpu_without_native_bf16(tmp_path, monkeypatch):
    """Emulated bf16 is several times slower than FP32: the measured choice does not travel to
    such a host, and the checkpoint says from which epoch the run trained in FP32."""
    import edgemed.train.precision as precision
    import edgemed.train.resume as resume

    monkeypatch.setattr(precision, "has_bf16", lambda: True)
    monkeypatch.setattr(precision, "PROBE_MIN_STEPS", 1)
    monkeypatch.setattr(precision, "step_ms", lambda net, x, y, steps, warmup=1, teacher=None: {"fp32": 200.0, "bf16": 100.0})
    kw = dict(epochs=3, batch_size=32, limit_train=64, limit_eval=48, threads=1, progress=False, patience=0)
    out = tmp_path / "r.safetensors"
    watch = _watch_validation(monkeypatch, interrupt_at=2)
    with pytest.raises(KeyboardInterrupt):
        train("resnet18_micro", "breastmnist", out=out, **kw)
    watch["restore"]()
    monkeypatch.setattr(precision, "has_bf16", lambda: False)  # resumed on another host
    autocast = []
    real = torch.autocast

    def spy(*a, **k):
        autocast.append(k.get("enabled", True))
        return real(*a, **k)

    monkeypatch.setattr(torch, "autocast", spy)
    t = read_checkpoint(train("resnet18_micro", "breastmnist", out=out, **kw).checkpoint).training
    assert t["precision"] == "fp32" and t["fp32_from_epoch"] == 2 and t["precision_probe"]["bf16_ms_per_step"] == 100.0
    assert autocast and not any(autocast)  # no training step of the resumed epochs ran in bf16
    assert resume._precision({"bf16": False, "probe": None, "fp32_from_epoch": 2})["fp32_from_epoch"] == 2
    for bad in ("2", 2.0, True, -1, 10**9):  # a state file's field, bounded like the probe's
        assert "fp32_from_epoch" not in resume._precision({"bf16": False, "probe": None, "fp32_from_epoch": bad})


def test_a_saved_precision_choice_is_read_back_bounded():
    """The fit state sits in the user's folder and its probe goes into the checkpoint: only the known
    small fields come back (a 30 MB string there once made a checkpoint edgemed then refused to read)."""
    from edgemed.train.resume import _precision

    good = {"bf16": True, "probe": {"fp32_ms_per_step": 200.0, "bf16_ms_per_step": 100.0, "margin": 1.1}}
    assert _precision(good) == good
    assert _precision({"bf16": False, "probe": {**good["probe"], "junk": "x" * 30_000_000}}) == {
        "bf16": False, "probe": good["probe"]}
    assert _precision({"bf16": True, "probe": {**good["probe"], "margin": float("nan")}}) == {"bf16": True, "probe": None}
    assert _precision({"bf16": True, "probe": "x" * 100}) == {"bf16": True, "probe": None}
    assert _precision({"bf16": "yes"}) is None and _precision(None) is None and _precision([1]) is None
    short = {"bf16": False, "probe": {"skipped": "10 steps < 50: FP32"}}  # a resumed short run says so too
    assert _precision(short) == short and _precision({"bf16": False, "probe": {"skipped": "x" * 201}})["probe"] is None
