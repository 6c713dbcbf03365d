"""`edgemed train`: AdamW + warm-up/cosine, torch-op augmentation, optional class weighting and
feature smoothing, best-on-validation checkpointing, early stopping, seeded runs.

`fit` is the loop itself, shared with pruning's fine-tuning (which adds a distillation teacher).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgemed.bench.system import host_info
from edgemed.checkpoint import Checkpoint, save_checkpoint
from edgemed.data.datasets import load_dataset, prepare_split
from edgemed.data.preprocess import PreprocessSpec, spec_for
from edgemed.errors import DataError, EdgemedError, ModelError, TrainingDiverged
from edgemed.fileio import check_output, sha256_json
from edgemed.metrics import classification_metrics, metric_value, softmax
from edgemed.progress import console, progress_bar
from edgemed.train.resume import FitState, load_fit_state, save_fit_state
from edgemed.versions import library_versions

MONITORS = ("accuracy", "balanced_accuracy", "auc", "loss")
# On a small validation set many epochs tie on accuracy (248 images: 0.4 pt each), and the first of
# them can be a barely trained one; "loss" keeps the most confident of the tied epochs instead.
TIE_BREAKS = ("first", "loss")


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict
    history: list[dict]
    wall_time_s: float


@dataclass
class FitConfig:
    """Optimisation settings of one fit (training from scratch or fine-tuning)."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    augment: str = "light"
    patience: int = 10
    monitor: str = "accuracy"
    tie_break: str = "first"  # among epochs equal on `monitor`: the first, or the lowest validation loss
    precision: str = "auto"
    feature_smoothing: float = 0.0
    label_smoothing: float = 0.0
    warmup_epochs: float = 1.0
    ema: float = 0.0  # decay of a moving average of the weights, per step (0: off); validated and saved
    train_crop: int = 0  # train on random crops of this side of the full-size images (0: whole images)
    class_weights: bool = False
    seed: int = 0
    distill_alpha: float = 0.7  # weight of the teacher's soft targets when a teacher is given
    distill_temperature: float = 4.0
    mixup: float = 0.0  # α of MixUp's Beta(α, α) blend share (0: off); edgemed.train.augment.mix_batch
    cutmix: float = 0.0  # α of CutMix's (0: off); with both, one of the two per batch
    history: list[dict] = field(default_factory=list)

    def validate(self) -> None:
        from edgemed.train.augment import PRESETS

        if self.monitor not in MONITORS:
            raise EdgemedError(f"unknown --monitor {self.monitor!r}: use one of {', '.join(MONITORS)}")
        if self.tie_break not in TIE_BREAKS:
            raise EdgemedError(f"unknown --tie-break {self.tie_break!r}: use one of {', '.join(TIE_BREAKS)}")
        if self.augment not in PRESETS:
            raise EdgemedError(f"unknown --augment {self.augment!r}: use one of {', '.join(PRESETS)}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise EdgemedError(f"unknown --precision {self.precision!r}: use auto, fp32 or bf16")
        if self.epochs < 1 or self.batch_size < 2 or not (math.isfinite(self.lr) and self.lr > 0):
            raise EdgemedError("--epochs must be ≥ 1, --batch-size ≥ 2 and --lr > 0")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise EdgemedError(f"--weight-decay must be a finite number ≥ 0, e.g. 0.05; got {self.weight_decay}")
        if not 0 <= self.label_smoothing < 1:  # NaN fails too
            raise EdgemedError(f"--label-smoothing is a share of the target in [0, 1), e.g. 0.1; got {self.label_smoothing}")
        if not (math.isfinite(self.feature_smoothing) and self.feature_smoothing >= 0):
            raise EdgemedError(f"--feature-smoothing is a weight λ ≥ 0, e.g. 0.1 (0: off); got {self.feature_smoothing}")
        if not 0 <= self.ema < 1:
            raise EdgemedError(f"--ema is a decay per step in [0, 1), e.g. 0.999; got {self.ema}")
        if not (math.isfinite(self.warmup_epochs) and 0 <= self.warmup_epochs <= self.epochs):
            raise EdgemedError(f"--warmup-epochs must lie between 0 and --epochs ({self.epochs}); got {self.warmup_epochs}")
        if self.train_crop < 0:
            raise EdgemedError(f"--train-crop is a side in pixels (0: off); got {self.train_crop}")
        if not all(0 <= a <= 10 for a in (self.mixup, self.cutmix)):  # NaN fails too
            raise EdgemedError(f"--mixup and --cutmix are Beta α values in [0, 10] (0: off; 0.2 and 1.0 are usual); "
                               f"got {self.mixup} and {self.cutmix}")
        if self.feature_smoothing > 0 and (self.mixup or self.cutmix):
            raise EdgemedError("feature smoothing pulls each image's features to its one class centre, which a mixed "
                               "image has not: pass --feature-smoothing 0 with --mixup/--cutmix")
        if not (0 < self.distill_alpha <= 1 and 0 < self.distill_temperature <= 100):
            raise EdgemedError(f"--distill-alpha must lie in (0, 1] and --distill-temperature in (0, 100]; got "
                               f"{self.distill_alpha} and {self.distill_temperature}")


def predict_logits(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """FP32 logits of a normalised NCHW float array, in eval mode."""
    import torch

    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            outs.append(model(torch.from_numpy(x[i:i + batch_size])).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def fit(net, x_train, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, class_names: list[str],
        cfg: FitConfig, *, teacher=None, progress: bool = True, label: str = "epoch",
        state_file: str | Path | None = None, identity: dict | None = None):
    """Train `net` in place and leave it holding its best-on-validation weights (eval mode).

    x_train: torch float NCHW tensor; x_val: numpy float NCHW. With `teacher`, the loss adds
    knowledge distillation (KL between temperature-softened teacher and student outputs).
    `state_file`: save the training state there after every epoch and, when it holds the state of
    an interrupted fit of the same `identity` (what the caller knows shapes the result: model,
    data, starting weights) and settings, continue after its last epoch. The caller deletes it
    once the result is saved, so an interruption before that loses no training either.
    `cfg.precision` auto trains in bf16 autocast only where a few timed steps say it is faster
    (edgemed.train.precision); a resumed fit keeps the precision it started with (auto's bf16 goes
    on in FP32 on a CPU without native bf16: `fp32_from_epoch`).
    Returns (best_epoch, history, wall_time_s, precision): precision says {"bf16": bool, "probe":
    what auto measured, or None}.
    """
    import torch
    import torch.nn.functional as F

    from edgemed.train.augment import augment as augment_batch
    from edgemed.train.augment import mix_batch
    from edgemed.train.losses import FeatureSmoothingLoss
    from edgemed.train.precision import choose as choose_precision
    from edgemed.train.precision import has_bf16

    cfg.validate()
    side = min(x_train.shape[2:])
    if cfg.train_crop > side or (cfg.train_crop and cfg.train_crop < getattr(net, "min_image_size", 1)):
        raise EdgemedError(f"--train-crop {cfg.train_crop} must lie between the model's smallest input "
                           f"({getattr(net, 'min_image_size', 1)} px) and the image size ({side} px): "
                           "pick a side in that range, or 0 for whole images")
    if cfg.train_crop and cfg.train_crop != side:
        with torch.no_grad():  # a model with a fixed-size head (flatten into a linear layer) takes one size only
            for who, m in (("the model", net), ("the --teacher", teacher)):
                if m is None:
                    continue
                try:
                    m.eval()(x_train[:1, :, :cfg.train_crop, :cfg.train_crop])
                except RuntimeError as e:
                    raise ModelError(f"--train-crop {cfg.train_crop}: {who} does not run on {cfg.train_crop}² crops "
                                     f"({str(e).splitlines()[0][:120]}); it needs a fully convolutional model with "
                                     "global pooling: pass --train-crop 0") from None
    k = len(class_names)
    batch_size = min(cfg.batch_size, max(2, len(y_train)))
    fs_loss = None
    if cfg.feature_smoothing > 0:
        if not hasattr(net, "forward_with_features"):
            raise ModelError("this model has no forward_with_features: pass --feature-smoothing 0")
        with torch.no_grad():
            dim = net.eval().forward_with_features(x_train[:2])[1].shape[1]
        fs_loss = FeatureSmoothingLoss(k, dim, cfg.feature_smoothing)
    net = net.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher = teacher.eval().to(memory_format=torch.channels_last)
    weight = None
    if cfg.class_weights:
        counts = np.bincount(y_train, minlength=k).astype(np.float64)
        weight = torch.tensor(len(y_train) / (k * np.maximum(counts, 1)), dtype=torch.float32)
    decay, no_decay = [], []
    for p in net.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = max(1, len(y_train) // batch_size)
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))

    # Weight averaging (EMA): the average of the last ~1/(1-decay) steps' weights is what gets
    # validated and saved; it smooths the noise of small-batch steps on small data sets.
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()} if cfg.ema else None

    def update_ema(step: int) -> None:
        decay = min(cfg.ema, (1 + step) / (10 + step))  # a short memory while the weights move fast
        live = net.state_dict()  # fresh: a model may rebind a buffer instead of updating it in place
        floats = [k for k, v in live.items() if v.is_floating_point()]
        torch._foreach_lerp_([ema[k] for k in floats], [live[k].detach() for k in floats], 1 - decay)
        for k in live.keys() - set(floats):
            ema[k].copy_(live[k])

    gen = torch.Generator().manual_seed(cfg.seed)
    y_train_t = torch.from_numpy(y_train)
    best, best_state, best_epoch, stale = -math.inf, None, 0, 0
    best_loss = math.inf  # the best epoch's validation loss, for --tie-break loss
    history = []
    t0 = time.perf_counter()
    step, first_epoch = 0, 1
    key, saved = None, None
    if state_file is not None:
        state_file = Path(state_file)
        key = _state_key(identity, cfg, net, fs_loss, teacher is not None, x_train, y_train, y_val)
        saved = load_fit_state(state_file, key)
        if saved is not None:
            net.load_state_dict(saved.model)
            best_state = saved.best_model
            opt.load_state_dict(saved.optimizer)
            gen.set_state(saved.rng["generator"])
            torch.set_rng_state(saved.rng["torch"])
            if fs_loss is not None:
                fs_loss.load_state_dict({k: v for k, v in saved.extra.items() if not k.startswith("ema.")})
            if ema is not None:
                ema = {k: saved.extra[f"ema.{k}"] for k in ema}
            best, best_epoch, stale, history = saved.best, saved.best_epoch, saved.stale, saved.history
            best_loss = next((h["val_loss"] for h in history if h["epoch"] == best_epoch), math.inf)
            step, first_epoch = saved.step, saved.epoch + 1
            t0 -= saved.elapsed_s
            console.log(f"resuming from {state_file}: {saved.epoch} of {cfg.epochs} {label}s done "
                        f"(best {best_epoch}), {saved.elapsed_s / 60:.1f} min of training kept")
        elif state_file.exists():
            console.log(f"{state_file} holds another run's state (other settings or data): starting over")
    # a state saved at an early stop has no epochs left to run
    last_epoch = first_epoch - 1 if cfg.patience and stale >= cfg.patience else cfg.epochs
    if saved is not None and saved.precision is not None:  # chosen when the run started
        precision = saved.precision
        if precision["bf16"] and cfg.precision == "auto" and not has_bf16() and first_epoch <= last_epoch:
            # auto measured bf16 faster on the CPU the run started on; emulated here it is slower
            precision = {**precision, "bf16": False, "fp32_from_epoch": first_epoch}
            console.log(f"--precision auto: FP32 from epoch {first_epoch} on (the run started in bf16 on a CPU "
                        "with native bf16; this one has none, and emulated bf16 is slower)")
    elif saved is not None:  # a state saved before auto was measured: its rule, not a switch mid-run
        precision = {"bf16": cfg.precision == "bf16" or (cfg.precision == "auto" and has_bf16()), "probe": None}
    else:
        probe_x = x_train[:batch_size]
        if cfg.train_crop:
            probe_x = probe_x[:, :, :cfg.train_crop, :cfg.train_crop]
        bf16, probe = choose_precision(cfg.precision, net, probe_x, y_train_t[:batch_size], total, teacher)
        precision = {"bf16": bf16, "probe": probe}
        if probe and "bf16_ms_per_step" in probe:
            console.log(f"--precision auto: {'bf16' if bf16 else 'FP32'} (bf16 steps "
                        f"{probe['fp32_ms_per_step'] / probe['bf16_ms_per_step']:.2f}× as fast as FP32's, "
                        f"{probe['bf16_ms_per_step']:.1f} against {probe['fp32_ms_per_step']:.1f} ms; bf16 needs "
                        f"≥ {probe['margin']:.2f}×)")
    use_bf16 = precision["bf16"]
    with progress_bar(progress) as bar:
        task = bar.add_task("train", total=total, completed=step, info="")
        for epoch in range(first_epoch, last_epoch + 1):
            net.train()
            order = torch.randperm(len(y_train), generator=gen)
            run_loss, run_correct, run_n = 0.0, 0, 0
            for b in range(steps_per_epoch):
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb = augment_batch(x_train[idx], cfg.augment, gen)
                if cfg.train_crop:
                    xb = random_crops(xb, cfg.train_crop, gen)
                yb = y_train_t[idx]
                partner, lam = yb, 1.0
                if cfg.mixup or cfg.cutmix:
                    xb, partner, lam = mix_batch(xb, yb, cfg.mixup, cfg.cutmix, gen)
                xb = xb.contiguous(memory_format=torch.channels_last)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                    if fs_loss is not None:
                        logits, feats = net.forward_with_features(xb)
                    else:
                        logits, feats = net(xb), None
                    if teacher is not None:
                        with torch.no_grad():
                            soft = teacher(xb).float()
                logits = logits.float()
                loss = F.cross_entropy(logits, yb, weight=weight, label_smoothing=cfg.label_smoothing)
                if lam < 1.0:  # a mixed batch: each image is λ its own class and 1 − λ its partner's
                    loss = lam * loss + (1 - lam) * F.cross_entropy(logits, partner, weight=weight,
                                                                    label_smoothing=cfg.label_smoothing)
                if teacher is not None:
                    t_ = cfg.distill_temperature
                    kd = F.kl_div(F.log_softmax(logits / t_, 1), F.softmax(soft / t_, 1),
                                  reduction="batchmean") * t_ * t_
                    loss = (1 - cfg.distill_alpha) * loss + cfg.distill_alpha * kd
                if fs_loss is not None:
                    loss = loss + fs_loss(feats, yb)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        f"training diverged: loss is {loss.item()} at epoch {epoch}, step {b + 1}; "
                        f"lower --lr (now {cfg.lr:g}) or check the data"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                if ema is not None:
                    update_ema(step)
                step += 1
                run_loss += loss.item() * len(yb)
                run_correct += int((logits.argmax(1) == (yb if lam >= 0.5 else partner)).sum())  # the larger share
                run_n += len(yb)
                bar.update(task, advance=1, description=f"{label} {epoch}/{cfg.epochs}",
                           info=f"loss {run_loss / run_n:.4f} acc {run_correct / run_n:.3f}")
            if ema is not None:  # validate the averaged weights, then train on from the live ones
                current = {k: v.clone() for k, v in net.state_dict().items()}
                net.load_state_dict(ema)
            val_logits = predict_logits(net, x_val)
            if ema is not None:
                net.load_state_dict(current)
            val_loss = float(F.cross_entropy(torch.from_numpy(val_logits), torch.from_numpy(y_val)))
            vm = classification_metrics(y_val, softmax(val_logits), class_names, n_boot=0)
            score = -val_loss if cfg.monitor == "loss" else (metric_value(vm, cfg.monitor) or 0.0)
            row = {"epoch": epoch, "train_loss": run_loss / max(run_n, 1),
                   "train_accuracy": run_correct / max(run_n, 1), "val_loss": val_loss,
                   "val_accuracy": vm["accuracy"]["value"], "val_auc": vm["auc"]["value"],
                   "lr": lr_at(step - 1), "time_s": round(time.perf_counter() - t0, 1)}
            history.append(row)
            gain = score > best
            # a tie won on loss changes the kept epoch, not the patience count: the steps taken stay
            # the same whichever tie-break is chosen
            improved = gain or (cfg.tie_break == "loss" and score == best and val_loss < best_loss)
            if improved:
                best, best_epoch, best_loss = score, epoch, val_loss
                best_state = copy.deepcopy(ema if ema is not None else net.state_dict())
            stale = 0 if gain else stale + 1
            auc = "n/a" if row["val_auc"] is None else f"{row['val_auc']:.4f}"
            bar.console.log(f"{label} {epoch:3d}  train loss {row['train_loss']:.4f}  val loss {val_loss:.4f}  "
                            f"val acc {row['val_accuracy']:.4f}  val auc {auc}" + ("  *best" if improved else ""))
            if state_file is not None:
                save_fit_state(state_file, key, FitState(
                    epoch=epoch, step=step, best=best, best_epoch=best_epoch, stale=stale, history=history,
                    elapsed_s=time.perf_counter() - t0, precision=precision, model=net.state_dict(), best_model=best_state,
                    optimizer=opt.state_dict(), rng={"generator": gen.get_state(), "torch": torch.get_rng_state()},
                    extra={**(fs_loss.state_dict() if fs_loss is not None else {}),
                           **({f"ema.{k}": v for k, v in ema.items()} if ema is not None else {})}))
            if cfg.patience and stale >= cfg.patience:
                bar.console.log(f"early stop: no {cfg.monitor} gain on val for {cfg.patience} epochs")
                break
    net.load_state_dict(best_state)
    net.to(memory_format=torch.contiguous_format).eval()
    return best_epoch, history, time.perf_counter() - t0, precision


def random_crops(x, side: int, generator):
    """One random side×side window of each image of an NCHW batch. Crops keep the pixel scale of
    the whole image, so a fully convolutional model trained on them runs on whole images (a
    resolution change would not: a model is tuned to the size of what it has seen)."""
    import torch

    h, w = x.shape[2:]
    top = torch.randint(0, h - side + 1, (len(x),), generator=generator).tolist()
    left = torch.randint(0, w - side + 1, (len(x),), generator=generator).tolist()
    return torch.stack([img[:, t:t + side, c:c + side] for img, t, c in zip(x, top, left, strict=True)])


LATER_OPTIONS = {"ema": 0.0, "train_crop": 0, "tie_break": "first", "distill_alpha": 0.7, "distill_temperature": 4.0,
                 "mixup": 0.0, "cutmix": 0.0}  # option → its default


def _state_key(identity, cfg: FitConfig, net, fs_loss, distill: bool, x_train, y_train, y_val) -> str:
    """What an interrupted fit must share with this one for its saved state to continue it (the
    caller's identity names the data, starting weights and model; the label sums are a cheap check
    that the sampled subsets match). Changing this key orphans every saved state."""
    # options added later count only when set, so states saved before them still resume
    settings = {k: v for k, v in asdict(cfg).items() if k != "history" and not (k in LATER_OPTIONS and v == LATER_OPTIONS[k])}
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    return sha256_json({"identity": identity, "settings": settings, "shapes": shapes, "distill": distill,
                        "feature_smoothing": fs_loss is not None, "train": list(x_train.shape),
                        "labels": [int(y_train.sum()), int(y_val.sum()), len(y_val)]})


def train(model: str, dataset: str, *, out: str | Path, epochs: int = 30, batch_size: int = 128,
          lr: float = 1e-3, weight_decay: float = 0.05, image_size: int | None = None,
          seed: int = 0, data_dir: str | None = None, class_weights: bool = False,
          augment: str = "light", patience: int = 10, monitor: str = "accuracy", tie_break: str = "first",
          precision: str = "auto", feature_smoothing: float | None = None,
          label_smoothing: float = 0.0, warmup_epochs: float = 1.0, ema: float = 0.0, train_crop: int = 0,
          model_kwargs: dict | None = None,
          threads: int | None = None, limit_train: int | None = None, limit_eval: int | None = None,
          init: str | Path | None = None, resume: bool = True, force: bool = False,
          progress: bool = True, record_trust: bool = True, pretrained: str | None = None,
          teacher: str | Path | None = None, distill_alpha: float | None = None,
          distill_temperature: float | None = None, mixup: float = 0.0, cutmix: float = 0.0) -> TrainResult:
    """Train a zoo model (or a user factory) on a data set and save the best-on-validation
    checkpoint; the test split is evaluated once at the end.

    `init`: a checkpoint of the same model and image channels to start from instead of random weights
    (on data with other classes, the class-count-dependent layers start fresh: models.replace_head)
    (fine-tuning; also at another `image_size`, e.g. trained at 128² then refined at 224², which
    costs a third of the compute per epoch for most of the run). Its input size is the default.
    `resume`: keep the training state in `OUT.train-state` after every epoch; a rerun with the same
    settings after an interruption continues from the last finished epoch (same result as an
    uninterrupted run). The file goes once the checkpoint is saved.
    `train_crop`: train on random crops of this side taken from the images at `image_size`, and
    validate, test and ship at `image_size`: the compute of a small input with the detail of a large
    one (a model trained on downscaled images does not carry over to full size; see
    benchmarks/results/seed_models.md).
    `pretrained`: start from the weights edgemed ships for `model` on that data set (the same as
    `init` with the shipped checkpoint; `edgemed models` lists them).
    `teacher`: distil from this checkpoint (same classes; any architecture and input size): the loss
    is (1 - distill_alpha) × cross-entropy + distill_alpha × T² × KL to its outputs softened by
    T = distill_temperature (defaults 0.7 and 4; edgemed.train.teacher).
    `mixup`, `cutmix`: α of MixUp / CutMix (0: off): each training image mixed with another of its
    batch, the loss shared between their labels (edgemed.train.augment.mix_batch).
    `record_trust`: a user factory named here is added to this machine's trust list
    (edgemed.trust), so the checkpoint loads in later commands without `--trust-code`.

    Example: `train("mednext_small", "pneumoniamnist", out="pneu.safetensors", epochs=10)`.
    """
    import torch

    from edgemed.models import create_model, get_entry, is_user_factory, resolve_kwargs

    out = check_output(out, force)
    if pretrained:
        from edgemed.models.pretrained import pretrained_checkpoint

        if init is not None:
            raise ModelError("give --pretrained or --init, not both")
        init = pretrained_checkpoint(model, pretrained)
    if not is_user_factory(model):
        get_entry(model)  # fail on an unknown name before loading any data
    else:
        from edgemed.trust import absolute_spec
        from edgemed.trust import record_trust as record

        model = absolute_spec(model)  # the checkpoint then loads from any working folder
        if record_trust:  # the user named this code: checkpoints made from it load without --trust-code
            record(model)
    start = _read_init(init, model, model_kwargs) if init is not None else None
    teacher_ckpt = None
    if teacher is not None:
        from edgemed.train.teacher import load_teacher

        teacher_ckpt, teacher_net = load_teacher(teacher)  # a bad file fails before any data is loaded
        teacher_sha = teacher_ckpt.sha256  # hashed once: the bytes that taught this run
    elif distill_alpha is not None or distill_temperature is not None:
        raise EdgemedError("--distill-alpha and --distill-temperature set how to learn from a --teacher: "
                           "give a --teacher CKPT, or drop them")
    defaults = FitConfig()
    distill_alpha = defaults.distill_alpha if distill_alpha is None else distill_alpha
    distill_temperature = defaults.distill_temperature if distill_temperature is None else distill_temperature
    if feature_smoothing is None:  # seed A's default, except with mixing (one class per image: FitConfig)
        feature_smoothing = 0.1 if model.startswith("convnext_med") and not (mixup or cutmix) else 0.0
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    augment=augment, patience=patience, monitor=monitor, tie_break=tie_break, precision=precision,
                    feature_smoothing=feature_smoothing, label_smoothing=label_smoothing,
                    warmup_epochs=warmup_epochs, ema=ema, train_crop=train_crop, class_weights=class_weights, seed=seed,
                    distill_alpha=distill_alpha, distill_temperature=distill_temperature, mixup=mixup, cutmix=cutmix)
    cfg.validate()
    from edgemed.runtime import check_threads

    check_threads(threads)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)

    ds = load_dataset(dataset, data_dir)
    if ds.task not in ("binary", "multiclass"):
        raise DataError(f"{ds.name} is a {ds.task} task; edgemed trains single-label classifiers: choose "
                        "another data set (see `edgemed data list`)")
    for s in ("train", "val"):
        ds.split(s)
    size = image_size or (start.image_size if start else ds.image_size[0])
    channels = ds.channels
    if start is not None and start.in_channels != channels:
        raise ModelError(f"--init {start.path} was trained on {start.in_channels}-channel images; {ds.name} has "
                         f"{channels}: start from a checkpoint of {channels}-channel images, or train from scratch")
    if teacher_ckpt is not None:
        from edgemed.train.teacher import check_teacher

        check_teacher(teacher_ckpt, channels, ds.class_names, start.preprocess.resize if start else None)
    # fine-tuning keeps the resize rule and normalisation the starting weights learned with; a
    # student from scratch takes its teacher's (from the same kind of data), so the teacher sees
    # its own kind of input
    like = start or teacher_ckpt
    base = PreprocessSpec(size=(size, size), channels=channels, mean=(0.0,) * channels, std=(1.0,) * channels,
                          **({"interpolation": like.preprocess.interpolation, "resize": like.preprocess.resize} if like else {}))
    x_train_u8, y_train = prepare_split(ds, "train", base, limit_train, seed)
    spec = (replace(base, mean=like.preprocess.mean, std=like.preprocess.std) if like
            else spec_for(x_train_u8, base.size, channels))
    x_val_u8, y_val = prepare_split(ds, "val", spec, limit_eval, seed)
    x_train = torch.from_numpy(spec.normalize(x_train_u8))
    x_val = spec.normalize(x_val_u8)
    k = ds.num_classes

    kwargs = dict(model_kwargs or {})
    new_head: list[str] = []  # the layers started fresh for other classes
    if start is not None:
        from edgemed.checkpoint import build_model

        # the architecture (and any pruned shapes) comes from the checkpoint; its convolutions do
        # not depend on the input size, so it runs at `size` too
        kwargs = dict(start.model_kwargs)
        net = build_model(start).train()
        if start.class_names != ds.class_names:  # other classes: the backbone carries over, the head is new
            from edgemed.models import replace_head

            new_head = replace_head(net, start, k)
            console.log(f"starting from {start.path.name} with a new head for {ds.name}'s {k} classes "
                        f"({', '.join(new_head)}; it was trained for {', '.join(start.class_names)})")
        if size < getattr(net, "min_image_size", 1):
            raise ModelError(f"image size {size} is too small for {model}: it needs at least {net.min_image_size} px "
                                 f"(pass --image-size {net.min_image_size} or more)")
    else:
        net = create_model(model, k, channels, size, **kwargs)
        if not is_user_factory(model):
            kwargs = resolve_kwargs(model, size, kwargs)
    distil_from = None
    if teacher_ckpt is not None:
        from edgemed.train.teacher import TeacherView

        distil_from = TeacherView(teacher_net, spec, teacher_ckpt.preprocess)
    state_file = train_state_path(out) if resume else None
    identity = {"model": model, "kwargs": kwargs, "data": ds.sha256, "size": size, "spec": spec,
                "limits": [limit_train, limit_eval], "init": start.sha256 if start else None,
                **({"teacher": teacher_sha} if teacher_ckpt is not None else {})}  # only when set: older states resume
    best_epoch, history, wall, trained_in = fit(net, x_train, y_train, x_val, y_val, ds.class_names, cfg, teacher=distil_from,
                                    progress=progress, state_file=state_file, identity=identity)
    metrics = {"val": classification_metrics(y_val, softmax(predict_logits(net, x_val)), ds.class_names)}
    # what the weights came from (a starting checkpoint, a teacher): bundles carry it into their card
    step = {"op": "train", "image_size": size}
    if start is not None:
        step.update(init=start.path.name, init_sha256=start.sha256, init_image_size=start.image_size)
        if new_head:
            step.update(new_head=new_head, init_classes=start.class_names)
    if teacher_ckpt is not None:
        step.update(teacher=teacher_ckpt.path.name, teacher_sha256=teacher_sha, teacher_model=teacher_ckpt.model_name,
                    teacher_image_size=teacher_ckpt.image_size)
    lineage = (start.lineage if start else []) + ([step] if start is not None or teacher_ckpt is not None else [])
    if "test" in ds.split_names:
        x_test_u8, y_test = prepare_split(ds, "test", spec, limit_eval, seed)
        metrics["test"] = classification_metrics(
            y_test, softmax(predict_logits(net, spec.normalize(x_test_u8))), ds.class_names)
    ckpt = Checkpoint(
        path=out, model_name=model, model_kwargs=kwargs, num_classes=k, in_channels=channels,
        image_size=size, preprocess=spec, class_names=ds.class_names, task=ds.task,
        dataset={"name": ds.name, "sha256": ds.sha256, "source": ds.recorded_source,
                 "limit_train": limit_train, "limit_eval": limit_eval},
        metrics=metrics,
        lineage=lineage,
        training={"epochs_run": len(history), "epochs": epochs, "best_epoch": best_epoch,
                  "batch_size": cfg.batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
                  "augment": augment, "class_weights": class_weights, "monitor": monitor,
                  "tie_break": tie_break,
                  "precision": "bf16-autocast" if trained_in["bf16"] else "fp32",
                  **({"precision_probe": trained_in["probe"]} if trained_in["probe"] else {}),
                  # bf16 autocast before this epoch: resumed on a CPU without native bf16
                  **({"fp32_from_epoch": trained_in["fp32_from_epoch"]} if trained_in.get("fp32_from_epoch") else {}),
                  "threads": threads, "feature_smoothing": feature_smoothing,
                  "label_smoothing": label_smoothing, "warmup_epochs": warmup_epochs, "ema": ema, "train_crop": train_crop,
                  **({"mixup": mixup, "cutmix": cutmix} if mixup or cutmix else {}),
                  # the teacher itself is named in the lineage
                  **({"distill": {"alpha": distill_alpha, "temperature": distill_temperature}}
                     if teacher_ckpt is not None else {}),
                  "wall_time_s": round(wall, 1),
                  "host": host_info(),  # the wall time is this CPU's
                  "history": history},
        versions=library_versions(),
    )
    save_checkpoint(out, net, ckpt, force=force)
    if state_file is not None:
        state_file.unlink(missing_ok=True)
    console.log(f"saved {out} (best epoch {best_epoch}, {wall / 60:.1f} min)")
    return TrainResult(out, metrics, history, wall)


def train_state_path(out: str | Path) -> Path:
    """Where a training run to `out` keeps its per-epoch state (safetensors)."""
    out = Path(out)
    return out.with_name(out.name + ".train-state")


def _read_init(init, model: str, model_kwargs: dict | None):
    """The checkpoint to start from: the same model, no conflicting constructor overrides."""
    from edgemed.checkpoint import read_checkpoint

    start = read_checkpoint(init)
    if start.model_name != model:
        raise ModelError(f"--init {init} holds a {start.model_name}, not a {model}: "
                         f"train {start.model_name} or start from a {model} checkpoint")
    if model_kwargs:
        raise ModelError("--model-kwargs cannot change a model started from --init: its architecture "
                         "comes from the checkpoint")
    return start
