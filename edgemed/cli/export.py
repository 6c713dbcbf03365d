"""`edgemed export`, `edgemed bundle inspect|verify` and `edgemed predict`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

import edgemed.formats as formats_table
from edgemed.cli.common import out, print_json

bundle_app = typer.Typer(no_args_is_help=True, help="Deployment bundles: inspect, verify, and the model card.")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def artifacts_table(bundle) -> Table:
    t = Table(title=f"artifacts in {bundle.root}")
    for col in ("artifact", "size", "input", "max |Δlogit|", "top-1 agree", "sha256"):
        t.add_column(col, justify="right" if col in ("size", "max |Δlogit|", "top-1 agree") else "left",
                     no_wrap=col == "artifact")
    for a in bundle.artifacts:
        p = a.parity or {}
        t.add_row(a.id + (" ★" if a.id == bundle.recommended else ""), _size(a.size),
                  a.input_layout + (f" b{a.static_batch}" if a.static_batch else ""),
                  f"{p['max_abs_diff']:.1e}" if p else "ref" if a.format == "torch" else "–",
                  f"{p['top1_agreement']:.3f}/{p['n']}" if p else "–", a.files[0]["sha256"][:8])
    return t


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (.safetensors)."),
        formats: str = typer.Option(",".join(formats_table.DEFAULT_FORMATS), "--formats", help=f"Comma list: {formats_table.listing()}."),
        precision: str = typer.Option("fp32", "--precision", help="Comma list: fp32, fp16."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Bundle folder (default bundles/<checkpoint>)."),
        data_dir: str = typer.Option(None, "--data-dir"),
        parity_images: int = typer.Option(128, help="Validation images for the parity check (0: skip)."),
        static_batch: bool = typer.Option(False, "--static-batch", help="Fix batch 1 in ONNX/OpenVINO (TFLite is always batch 1)."),
        tflite_layout: str = typer.Option("NCHW", help="TFLite input layout: NCHW or NHWC (channel-last I/O)."),
        strict: bool = typer.Option(False, help="Fail if any format fails."),
        force: bool = typer.Option(False, "--force", help="Replace an existing bundle."),
    ):
        """Export a checkpoint to ONNX / OpenVINO / TFLite / ExecuTorch with a parity check each; write a bundle."""
        from edgemed.export.bundle import load_bundle
        from edgemed.export.exporter import export as export_api

        result = export_api(checkpoint, formats, precision, out_dir, force=force, data_dir=data_dir,
                            parity_images=parity_images, static_batch=static_batch,
                            tflite_layout=tflite_layout.upper(), strict=strict)
        out.print(artifacts_table(load_bundle(result.bundle)))
        for f in result.failed:
            out.print(f"[red]failed[/] {f['format']} {f['precision']}: {f['error']}")
        out.print(f"bundle written to {result.bundle}")

    @bundle_app.command()
    def inspect(bundle: Path = typer.Argument(..., help="Bundle folder."),
                json_out: bool = typer.Option(False, "--json", help="Print the manifest.")):
        """Print a bundle's manifest as tables (hashes are verified first)."""
        from edgemed.export.bundle import load_bundle

        b = load_bundle(bundle)
        if json_out:
            return print_json(b.manifest)
        m = b.manifest
        spec = b.preprocess
        out.print(f"[bold]{b.root}[/]  schema {m['schema_version']}, edgemed {m['edgemed_version']}, created {m.get('created', '?')}")
        model = m.get("model", {})
        out.print(f"model {model.get('name')} — classes: {', '.join(b.class_names)}")
        out.print(f"input {m['input']['name']} {m['input']['shape']} {m['input']['dtype']} {m['input']['layout']}; "
                  f"preprocess {spec.size[0]}×{spec.size[1]}×{spec.channels}, mean {list(spec.mean)}, std {list(spec.std)}, "
                  f"{spec.resize}/{spec.interpolation}")
        prov = m["provenance"]
        out.print(f"from checkpoint {prov.get('checkpoint', {}).get('file')} (sha256 {prov.get('checkpoint', {}).get('sha256', '')[:12]}…), "
                  f"data {prov.get('dataset', {}).get('name')} (sha256 {str(prov.get('dataset', {}).get('sha256'))[:12]}…)")
        out.print(artifacts_table(b))
        for f in m.get("failed", []):
            out.print(f"[red]failed at export[/] {f['format']} {f['precision']}: {f['error']}")

    @bundle_app.command()
    def verify(bundle: Path = typer.Argument(..., help="Bundle folder.")):
        """Check every file's size and sha256 against the manifest."""
        from edgemed.errors import BundleError
        from edgemed.export.bundle import load_bundle, verify_bundle

        b = load_bundle(bundle, verify=False)
        problems = verify_bundle(b)
        n_files = sum(len(a.files) for a in b.artifacts)
        if problems:
            for p in problems:
                out.print(f"[red]FAIL[/] {p}")
            raise BundleError(f"{len(problems)} of {n_files} files in {bundle} failed verification: the bundle was "
                              "altered or damaged; export it again (`edgemed export CHECKPOINT --out BUNDLE --force`)")
        out.print(f"[green]ok[/] {n_files} files in {len(b.artifacts)} artifacts match their sha256 (manifest {b.sha256[:12]}…)")

    @bundle_app.command()
    def card(bundle: Path = typer.Argument(..., help="Bundle folder."),
             card_file: Path = typer.Option(..., "--card", help="YAML with the owner's fields: intended_use, "
                                            "intended_users, out_of_scope, limitations, split_method, authors, contact, ..."),
             force: bool = typer.Option(False, "--force", help="Replace an owner's card the bundle already has.")):
        """Add intended use, limitations and the like to a bundle's model card (MODEL_CARD.md,
        configs/metadata.json in MONAI's bundle format)."""
        from edgemed.card import CARD_MD
        from edgemed.card import card as card_api

        card_api(bundle, card_file, force=force)
        out.print(f"model card written to {bundle / CARD_MD} (+ configs/metadata.json); the manifest changed, "
                  "so the bundle's sha256 did too", markup=False, soft_wrap=True)

    app.add_typer(bundle_app, name="bundle")

    @app.command()
    def predict(
        bundle: Path = typer.Argument(..., help="Bundle folder."),
        images: list[Path] = typer.Argument(..., help="Image files or folders (PNG, JPEG, DICOM)."),
        artifact: str = typer.Option(None, "--artifact", help="Artifact id (see `edgemed bundle inspect`)."),
        fmt: str = typer.Option(None, "--format", help=" | ".join(formats_table.FORMATS) + "."),
        top_k: int = typer.Option(1, "--top-k"),
        threads: int = typer.Option(None),
        device: str = typer.Option("cpu"),
        window: str = typer.Option(None, "--window", help="DICOM display window CENTER,WIDTH in modality units "
                                   "(e.g. 40,400 for CT soft tissue; default: each file's own window)."),
        json_out: bool = typer.Option(False, "--json"),
    ):
        """Classify images with a bundle (its PreprocessSpec applied exactly)."""
        from edgemed.errors import EdgemedError
        from edgemed.predict import predict as predict_api

        try:
            win = tuple(float(v) for v in window.split(",")) if window else None
        except ValueError:
            win = ()
        if win is not None and len(win) != 2:
            raise EdgemedError(f"--window takes CENTER,WIDTH, e.g. 40,400; got {window!r}")
        chosen, results = predict_api(bundle, images, artifact=artifact, fmt=fmt, top_k=top_k,
                                      threads=threads, device=device, window=win)
        if json_out:
            print_json({"bundle": str(bundle), "artifact": chosen.id, "format": chosen.format,
                        "precision": chosen.precision, "predictions": [r.to_dict() for r in results]})
        else:
            t = Table(title=f"{chosen.id} ({chosen.format}, {chosen.precision}) from {bundle}")
            for col in ("file", "class", "probability") + (("top-k",) if top_k > 1 else ()):
                t.add_column(col)
            for r in results:
                if r.ok:
                    extra = ("; ".join(f"{c} {p:.3f}" for c, p in r.top),) if top_k > 1 else ()
                    t.add_row(r.file, r.top[0][0], f"{r.top[0][1]:.4f}", *extra)
                else:
                    t.add_row(r.file, "[red]error", r.error, *(("",) if top_k > 1 else ()))
            out.print(t)
        bad = [r for r in results if not r.ok]
        if bad and len(bad) == len(results):
            raise EdgemedError(f"no image could be read ({bad[0].error})")
        if bad:
            raise typer.Exit(3)  # some images failed: the rest were classified
