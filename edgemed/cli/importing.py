"""`edgemed import`: your own trained classifier in, an edgemed checkpoint out."""

from __future__ import annotations

from pathlib import Path

import typer

from edgemed.cli.common import out, parse_json_option


def _floats(value: str | None, option: str) -> list[float] | None:
    from edgemed.errors import EdgemedError

    if value is None:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise EdgemedError(f"{option} takes numbers, one or one per channel: e.g. 0.5 or 0.485,0.456,0.406") from None


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        model: str = typer.Argument(..., help="Zoo name, path/to/file.py:factory or package.module:factory "
                                             "(e.g. monai.networks.nets:DenseNet121), or an FP32 model.onnx."),
        weights: Path = typer.Option(None, "--weights", "-w", help=".safetensors, or .pt/.pth/.ckpt/.bin read with "
                                     "torch.load(weights_only=True): a state dict, bare or nested (not for .onnx)."),
        out_path: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write (.safetensors), or for an "
                                      "ONNX file the bundle folder."),
        classes: str = typer.Option(None, "--classes", help="Class names in output order, comma-separated."),
        input_size: int = typer.Option(None, "--input-size", help="Square input size the model was trained at."),
        channels: int = typer.Option(None, "--channels", help="Input channels: 1 (grey) or 3 (RGB)."),
        mean: str = typer.Option(None, "--mean", help="Normalisation mean: one value or one per channel (default 0)."),
        std: str = typer.Option(None, "--std", help="Normalisation std: one value or one per channel (default 1)."),
        resize: str = typer.Option(None, "--resize", help="stretch (default) | center_crop."),
        interpolation: str = typer.Option(None, "--interpolation", help="bilinear (default) | bicubic | nearest | lanczos."),
        task: str = typer.Option(None, "--task", help="binary | multiclass (default: from the class count)."),
        dataset: str = typer.Option(None, "--dataset", "-d", help="The data set it was trained on (name, .npz or "
                                    "folder:PATH): what quantize, prune and parity checks use."),
        data_dir: str = typer.Option(None, "--data-dir"),
        model_kwargs: str = typer.Option(None, "--model-kwargs", help='JSON constructor arguments, e.g. \'{"spatial_dims": 2}\'.'),
        metadata: Path = typer.Option(None, "--metadata", help="YAML/JSON with the same keys, or a MONAI bundle's "
                                      "configs/metadata.json; flags win."),
        weights_key: str = typer.Option(None, "--weights-key", help="Entry of the saved dict that holds the weights "
                                        "(default: bare, state_dict, model_state_dict, model, ...)."),
        allow_missing: list[str] = typer.Option(None, "--allow-missing", help="Glob of model keys the file may lack "
                                                "(e.g. 'classifier.*' for a new head). Repeatable."),
        ignore_unexpected: list[str] = typer.Option(None, "--ignore-unexpected", help="Glob of file entries that are "
                                                    "not model weights (e.g. 'model.criterion.*'). Repeatable."),
        force: bool = typer.Option(False, "--force", help="Replace an existing --out."),
    ):
        """Check a model trained elsewhere (builds, weights fit, runs, exports) and write it as a checkpoint."""
        from edgemed.importer import import_model

        r = import_model(model, weights=weights, out=out_path,
                         classes=[c.strip() for c in classes.split(",")] if classes else None,
                         input_size=input_size, channels=channels, mean=_floats(mean, "--mean"),
                         std=_floats(std, "--std"), resize=resize, interpolation=interpolation, task=task,
                         dataset=dataset, data_dir=data_dir, model_kwargs=parse_json_option(model_kwargs, "--model-kwargs") or None,
                         metadata=metadata, weights_key=weights_key, allow_missing=allow_missing or (),
                         ignore_unexpected=ignore_unexpected or (), force=force)
        if r.layout["kind"] == "onnx":
            out.print(f"checked {model} by running it; bundle written to {r.checkpoint}", soft_wrap=True)
            return
        where = f"under {r.layout['nested_under']!r}" if r.layout["nested_under"] else "bare"
        strip = f", prefix {r.layout['prefix_stripped']!r} stripped" if r.layout["prefix_stripped"] else ""
        out.print(f"imported {r.loaded} tensors from {weights} ({r.layout['kind']}, {where}{strip})"
                  + (f"; allowed missing: {', '.join(r.allowed_missing)}" if r.allowed_missing else ""), soft_wrap=True)
        if r.torch_export != "ok":
            out.print(f"[yellow]warning: torch.export {r.torch_export}: ONNX, OpenVINO and TFLite export need it",
                      soft_wrap=True)
        out.print(f"wrote {r.checkpoint}", soft_wrap=True)
