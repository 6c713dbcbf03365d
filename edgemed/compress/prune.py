"""`edgemed prune`: structured channel pruning on Torch-Pruning's dependency graph.

Channels are really removed (params and MACs drop); coupled layers are pruned together (residual
adds, the GAP‖GMP concat feeding SEVector and the classifier, the sigmoid gates of MedNeXt's
Linear-Attention FFN), and the classifier's outputs are never touched. Optional fine-tuning with
knowledge distillation from the unpruned model. The pruned checkpoint records its module shapes,
so it loads without pickle.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from edgemed.errors import EdgemedError, missing_extra
from edgemed.fileio import check_output
from edgemed.progress import console

IMPORTANCE = ("l2", "taylor")


@dataclass
class PruneResult:
    checkpoint: Path
    before: dict
    after: dict
    settings: dict


def _tp():
    try:
        import torch_pruning as tp
    except ImportError:
        raise missing_extra("torch-pruning", "prune") from None
    return tp


def torch_latency_ms(models: dict, example, threads: int, rounds: int = 60) -> dict:
    """Median batch-1 eager latency of several models, interleaved so they share the noise."""
    from edgemed.bench.latency import median_ms, time_torch

    return median_ms(time_torch(models, example.numpy(), threads, warmup=5, iterations=rounds))


def _importance(tp, name: str):
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    return tp.importance.GroupTaylorImportance()


def _taylor_gradients(model, x, y, batches: int = 8, batch_size: int = 32) -> None:
    """Taylor importance needs loss gradients on real training images."""
    import torch
    import torch.nn.functional as F

    model.zero_grad()
    model.train()
    for i in range(0, min(len(x), batches * batch_size), batch_size):
        loss = F.cross_entropy(model(torch.from_numpy(x[i:i + batch_size])), torch.from_numpy(y[i:i + batch_size]))
        loss.backward()
    model.eval()


def prune_model(model, example, *, ratio: float | None = None, target_macs: float | None = None,
                importance: str = "l2", round_to: int | None = 8, grad_data=None):
    """Prune in place; returns (macs_before, macs_after). `ratio`: share of channels removed per
    prunable layer; `target_macs`: keep this fraction of the MACs (pruned in small steps)."""
    from edgemed.models import count_macs
    from edgemed.models.layers import LayerScale

    tp = _tp()
    if (ratio is None) == (target_macs is None):
        raise EdgemedError("give exactly one of --ratio or --target-macs")
    if ratio is not None and not 0 < ratio < 1:
        raise EdgemedError(f"--ratio must be between 0 and 1 (share of channels to remove), got {ratio}")
    if target_macs is not None and not 0 < target_macs < 1:
        raise EdgemedError(f"--target-macs must be between 0 and 1 (share of MACs to keep), got {target_macs}")
    if importance not in IMPORTANCE:
        raise EdgemedError(f"unknown --importance {importance!r}: use {', '.join(IMPORTANCE)}")
    shape = tuple(example.shape)
    base = count_macs(model, shape)
    classifier = getattr(model, "classifier", None)
    ignored = [classifier] if classifier is not None else []
    if not ignored:  # a user model: keep whatever produces the logits
        linears = [m for m in model.modules() if type(m).__name__ == "Linear"]
        ignored = linears[-1:]
    unwrapped = [(m.weight, 0) for m in model.modules() if isinstance(m, LayerScale)]
    steps = 1 if ratio is not None else 40
    pruner = tp.pruner.MetaPruner(
        model, example, importance=_importance(tp, importance),
        pruning_ratio=ratio if ratio is not None else 0.95, iterative_steps=steps,
        ignored_layers=ignored, unwrapped_parameters=unwrapped, round_to=round_to)
    model.eval()
    for _ in range(steps):
        if importance == "taylor":
            _taylor_gradients(model, *grad_data)
        pruner.step()
        if target_macs is not None and count_macs(model, shape) <= target_macs * base:
            break
    model.zero_grad(set_to_none=True)
    after = count_macs(model, shape)
    if target_macs is not None and after > target_macs * base:
        console.print(f"[yellow]warning: reached {after / base:.2f} of the MACs, above the target {target_macs}")
    return base, after


def prune(checkpoint: str | Path, *, out: str | Path, ratio: float | None = None,
          target_macs: float | None = None, importance: str = "l2", round_to: int | None = 8,
          finetune_epochs: int = 0, distill: bool = False, lr: float = 5e-4, batch_size: int = 128,
          data_dir: str | None = None, threads: int | None = None, limit_train: int | None = None,
          limit_eval: int | None = None, resume: bool = True, force: bool = False,
          progress: bool = True) -> PruneResult:
    """Prune a checkpoint, optionally fine-tune (with distillation from the unpruned model), and
    save it. The result holds a before/after record of params, MACs, measured PyTorch latency
    and validation accuracy. `resume`: fine-tuning keeps its per-epoch state in `OUT.train-state`, so
    a rerun after an interruption continues it (see `edgemed.train.train`).

    Example: `prune("m.safetensors", out="m_pruned.safetensors", target_macs=0.5, finetune_epochs=5, distill=True)`.
    """
    import torch

    from edgemed.bench.system import host_info
    from edgemed.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from edgemed.data.datasets import prepare_split
    from edgemed.metrics import classification_metrics, softmax
    from edgemed.models import count_macs, count_params
    from edgemed.onnx_source import is_onnx_source, refuse_torch_only
    from edgemed.train.loop import TIE_BREAKS, FitConfig, fit, predict_logits, train_state_path

    if is_onnx_source(checkpoint):
        raise refuse_torch_only("pruning")
    out = check_output(out, force)
    if finetune_epochs < 0:
        raise EdgemedError("--finetune-epochs cannot be negative")
    if distill and not finetune_epochs:
        raise EdgemedError("--distill needs --finetune-epochs N (distillation happens while fine-tuning)")
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ckpt, model = load_checkpoint(checkpoint)
    teacher = copy.deepcopy(model).eval()
    spec = ckpt.preprocess
    ds = ckpt.open_dataset(data_dir)
    x_val_u8, y_val = prepare_split(ds, "val", spec, limit_eval)
    x_val = spec.normalize(x_val_u8)
    need_train = finetune_epochs > 0 or importance == "taylor"
    if need_train:
        x_tr_u8, y_train = prepare_split(ds, "train", spec, limit_train)
        x_train = spec.normalize(x_tr_u8)
    example = torch.from_numpy(x_val[:1])
    params_before = count_params(model)
    base_macs, _ = None, None
    base_macs, after_macs = prune_model(model, example, ratio=ratio, target_macs=target_macs,
                                        importance=importance, round_to=round_to,
                                        grad_data=(x_train, y_train) if importance == "taylor" else None)
    torch.export.export(model, (example,))  # the pruned graph must still export
    val_before = classification_metrics(y_val, softmax(predict_logits(teacher, x_val)), ckpt.class_names, n_boot=0)
    val_pruned = classification_metrics(y_val, softmax(predict_logits(model, x_val)), ckpt.class_names, n_boot=0)
    history, tuned_in = [], None
    if finetune_epochs:
        cfg = FitConfig(epochs=finetune_epochs, batch_size=batch_size, lr=lr, warmup_epochs=0.2,
                        patience=0, feature_smoothing=float(ckpt.training.get("feature_smoothing") or 0.0),
                        augment=ckpt.training.get("augment", "light"),
                        # a value read from the file: only a known one is taken
                        tie_break=ckpt.training.get("tie_break") if ckpt.training.get("tie_break") in TIE_BREAKS else "first")
        identity = {"parent": ckpt.sha256, "data": ds.sha256, "ratio": ratio, "target_macs": target_macs, "importance": importance,
                    "round_to": round_to, "limits": [limit_train, limit_eval]}
        _, history, _, tuned_in = fit(model, torch.from_numpy(x_train), y_train, x_val, y_val, ckpt.class_names, cfg,
                            teacher=teacher if distill else None, progress=progress, label="fine-tune",
                            state_file=train_state_path(out) if resume else None, identity=identity)
    model.eval()
    val_after = classification_metrics(y_val, softmax(predict_logits(model, x_val)), ckpt.class_names)
    latency = torch_latency_ms({"before": teacher, "after": model}, example, threads)
    before = {"params": params_before, "macs": base_macs, "torch_latency_ms": latency["before"],
              "val_accuracy": val_before["accuracy"]["value"], "val_auc": val_before["auc"]["value"]}
    after = {"params": count_params(model), "macs": count_macs(model, tuple(example.shape)),
             "torch_latency_ms": latency["after"], "val_accuracy": val_after["accuracy"]["value"],
             "val_auc": val_after["auc"]["value"],
             "val_accuracy_before_finetune": val_pruned["accuracy"]["value"]}
    settings = {"ratio": ratio, "target_macs": target_macs, "importance": importance, "round_to": round_to,
                "finetune_epochs": finetune_epochs, "distill": distill, "lr": lr, "threads": threads,
                "latency": "PyTorch eager, batch 1, median of 60 interleaved runs"}
    metrics = {"val": val_after}
    if "test" in ds.split_names:
        x_te_u8, y_te = prepare_split(ds, "test", spec, limit_eval)
        metrics["test"] = classification_metrics(y_te, softmax(predict_logits(model, spec.normalize(x_te_u8))), ckpt.class_names)
    pruned = Checkpoint(
        path=out, model_name=ckpt.model_name, model_kwargs=ckpt.model_kwargs, num_classes=ckpt.num_classes,
        in_channels=ckpt.in_channels, image_size=ckpt.image_size, preprocess=spec,
        class_names=ckpt.class_names, task=ckpt.task, dataset=ckpt.dataset, metrics=metrics,
        training={**ckpt.training, "finetune_history": history,
                  **({"finetune_host": host_info(),  # the parent's precision fields are its training's
                      "finetune_precision": "bf16-autocast" if tuned_in["bf16"] else "fp32",
                      **({"finetune_precision_probe": tuned_in["probe"]} if tuned_in["probe"] else {})}
                     if finetune_epochs else {})},
        versions=ckpt.versions,
        lineage=ckpt.lineage + [{"op": "prune", "parent": ckpt.path.name, "parent_sha256": ckpt.sha256,
                                 **settings, "before": before, "after": after}])
    save_checkpoint(out, model, pruned, force=force)
    if finetune_epochs:
        train_state_path(out).unlink(missing_ok=True)
    return PruneResult(out, before, after, settings)
