"""`edgemed train` and `edgemed evaluate`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgemed.cli.common import metrics_tables, out, parse_json_option, print_json


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        model: str = typer.Argument(..., help="Zoo name (see `edgemed models`) or path/to/file.py:factory."),
        dataset: str = typer.Option(..., "--dataset", "-d", help="Catalog name, .npz path, or folder:PATH."),
        epochs: int = typer.Option(30, help="Maximum epochs."),
        batch_size: int = typer.Option(128, help="Images per step."),
        lr: float = typer.Option(1e-3, help="Peak AdamW learning rate (cosine schedule)."),
        weight_decay: float = typer.Option(0.05),
        image_size: int = typer.Option(None, help="Input size (default: the data set's)."),
        seed: int = typer.Option(0),
        out_path: Path = typer.Option(None, "--out", "-o", help="Checkpoint file (.safetensors)."),
        data_dir: str = typer.Option(None, "--data-dir"),
        class_weights: bool = typer.Option(False, help="Weight the loss by inverse class frequency."),
        augment: str = typer.Option("light", help="none | light | strong"),
        patience: int = typer.Option(10, help="Early stop after this many epochs without gain (0: off)."),
        monitor: str = typer.Option("accuracy", help="Validation metric for the best checkpoint."),
        tie_break: str = typer.Option("first", help="Among epochs equal on --monitor keep the first, or the one with the lowest validation loss (loss: better on small validation sets, where many epochs tie)."),
        precision: str = typer.Option("auto", help="auto | fp32 | bf16 (autocast; auto times a few training steps in both where the CPU has native bf16 and keeps bf16 only if ≥ 1.1× faster)."),
        feature_smoothing: float = typer.Option(None, help="λ of the feature-smoothing loss (default 0.1 for convnext_med* without --mixup/--cutmix, else 0)."),
        label_smoothing: float = typer.Option(0.0),
        warmup_epochs: float = typer.Option(1.0, help="Epochs of linear learning-rate warm-up before the cosine."),
        ema: float = typer.Option(0.0, help="Validate and save a moving average of the weights with this decay per step, e.g. 0.999 (0: off)."),
        train_crop: int = typer.Option(0, help="Train on random crops of this side of the --image-size images; validate and save at --image-size (0: whole images)."),
        mixup: float = typer.Option(0.0, help="MixUp α: blend each training image with another of its batch at a Beta(α, α) share, the loss shared between their labels, e.g. 0.2 (0: off)."),
        cutmix: float = typer.Option(0.0, help="CutMix α: paste a box of another image of the batch, e.g. 1.0 (0: off; with --mixup, one of the two per batch)."),
        model_kwargs: str = typer.Option(None, "--model-kwargs", help='JSON constructor overrides, e.g. \'{"drop_path": 0.2}\'.'),
        threads: int = typer.Option(None, help="Torch threads (default: all cores)."),
        limit_train: int = typer.Option(None, help="Use a stratified subset of this many training images."),
        limit_eval: int = typer.Option(None, help="Use a stratified subset of this many val/test images."),
        init: Path = typer.Option(None, "--init", help="Start from this checkpoint's weights (same model and channels; other classes get a new head; may change --image-size)."),
        pretrained: str = typer.Option(None, "--pretrained", help="Start from the weights edgemed ships for MODEL on this data set (see `edgemed models`); --dataset may be another one."),
        teacher: Path = typer.Option(None, "--teacher", help="Distil from this checkpoint (same classes; any model and input size, e.g. a large model into an edge-sized one)."),
        distill_alpha: float = typer.Option(None, help="With --teacher: weight of its softened outputs in the loss, the labels getting the rest (default 0.7)."),
        distill_temperature: float = typer.Option(None, help="With --teacher: softmax temperature of the distillation term (default 4)."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Keep the training state in OUT.train-state each epoch; rerunning the same command after an interruption continues from the last finished epoch."),
        force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
    ):
        """Train a model; save the best-on-validation checkpoint and print its test metrics."""
        from edgemed.train import train as train_api

        out_path = out_path or Path("checkpoints") / f"{model.replace(':', '_').replace('/', '_')}_{Path(dataset).stem}.safetensors"
        result = train_api(
            model, dataset, out=out_path, epochs=epochs, batch_size=batch_size, lr=lr,
            weight_decay=weight_decay, image_size=image_size, seed=seed, data_dir=data_dir,
            class_weights=class_weights, augment=augment, patience=patience, monitor=monitor, tie_break=tie_break,
            precision=precision, feature_smoothing=feature_smoothing, label_smoothing=label_smoothing, ema=ema,
            warmup_epochs=warmup_epochs, train_crop=train_crop,
            model_kwargs=parse_json_option(model_kwargs, "--model-kwargs"), threads=threads,
            limit_train=limit_train, limit_eval=limit_eval, init=init, resume=resume, force=force,
            pretrained=pretrained, teacher=teacher, distill_alpha=distill_alpha,
            distill_temperature=distill_temperature, mixup=mixup, cutmix=cutmix,
        )
        split = "test" if "test" in result.metrics else "val"
        for t in metrics_tables(result.metrics[split], f"{split} metrics of {result.checkpoint}"):
            out.print(t)

    @app.command()
    def evaluate(
        checkpoint: Path = typer.Argument(..., help="Checkpoint file (.safetensors)."),
        split: str = typer.Option("test", help="train | val | test"),
        dataset: str = typer.Option(None, "--dataset", "-d", help="Evaluate on another data set with the same classes."),
        data_dir: str = typer.Option(None, "--data-dir"),
        n_boot: int = typer.Option(1000, help="Bootstrap resamples for the 95 % CIs (0: none)."),
        limit: int = typer.Option(None, help="Stratified subset of this many images."),
        json_out: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
    ):
        """Accuracy, balanced accuracy, AUC, per-class sensitivity/specificity and confusion matrix."""
        from edgemed.train import evaluate as evaluate_api

        m = evaluate_api(checkpoint, split=split, dataset=dataset, data_dir=data_dir, n_boot=n_boot, limit=limit)
        if json_out:
            return print_json(m)
        for t in metrics_tables(m, f"{m['dataset']} {split} — {checkpoint}"):
            out.print(t)
