"""`edgemed evaluate`: metrics of a checkpoint on a data split, with bootstrap CIs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from edgemed.checkpoint import load_checkpoint
from edgemed.data.catalog import CATALOG
from edgemed.data.datasets import load_dataset, prepare_split
from edgemed.errors import DataError
from edgemed.metrics import classification_metrics, softmax
from edgemed.train.loop import predict_logits


def evaluate(checkpoint: str | Path, split: str = "test", dataset: str | None = None,
             data_dir: str | None = None, n_boot: int = 1000, limit: int | None = None,
             threads: int | None = None) -> dict:
    """Accuracy, balanced accuracy, AUC, per-class sensitivity/specificity and the confusion
    matrix of a checkpoint on `split`, each with n and a bootstrap 95 % CI.

    Example: `evaluate("pneu.safetensors", split="test")["auc"]["value"]`.
    """
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    ckpt, model = load_checkpoint(checkpoint)
    # catalog sets are found through the data directory (the checkpoint may come from another
    # machine); folders and ad-hoc .npz files through the path recorded at training
    name = dataset or ckpt.dataset["name"]
    if dataset is None and name not in CATALOG:
        name = ckpt.dataset.get("source", name)
    ds = load_dataset(name, data_dir)
    if ckpt.dataset.get("sha256") and ds.sha256 != ckpt.dataset["sha256"]:
        warnings.warn(f"{ds.source} differs from the data the checkpoint was trained on "
                      f"(sha256 {ds.sha256[:12]} vs {ckpt.dataset['sha256'][:12]})", stacklevel=2)
    if ds.num_classes != ckpt.num_classes:
        raise DataError(f"{ds.name} has {ds.num_classes} classes but the checkpoint predicts {ckpt.num_classes}: "
                        "give a --dataset with the same classes, or leave --dataset out")
    x_u8, y = prepare_split(ds, split, ckpt.preprocess, limit)
    logits = predict_logits(model, ckpt.preprocess.normalize(x_u8))
    out = classification_metrics(y, softmax(logits), ckpt.class_names, n_boot=n_boot)
    out["split"] = split
    out["dataset"] = ds.name
    out["checkpoint"] = str(checkpoint)
    return out
