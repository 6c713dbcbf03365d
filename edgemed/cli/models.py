"""`edgemed models`: the zoo with params and MACs at each model's default input size."""

from __future__ import annotations

import typer
from rich.table import Table

from edgemed.cli.common import out, print_json
from edgemed.errors import EdgemedError


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(all_: bool = typer.Option(False, "--all", help="Include the tiny test variants."),
               channels: int = typer.Option(3, help="Input channels for the counts."),
               json_out: bool = typer.Option(False, "--json")):
        """List registered models: name, params, MACs at the default input size."""
        from edgemed.models import count_macs, count_params, create_model, list_models
        from edgemed.models.pretrained import available

        if channels not in (1, 3):  # what checkpoints and data sets hold (grey or RGB)
            raise EdgemedError(f"--channels must be 1 (grey) or 3 (RGB); got {channels}")
        shipped = available()
        rows = []
        for e in list_models(all_):
            m = create_model(e.name, 2, channels, e.default_image_size)
            s = e.default_image_size
            rows.append({"name": e.name, "params": count_params(m),
                         "macs": count_macs(m, (1, channels, s, s)), "input": s,
                         "pretrained": shipped.get(e.name, []), "description": e.description})
        if json_out:
            return print_json(rows)
        t = Table(title=f"models (2 classes, {channels} channels)")
        for col in ("name", "params", "GMACs", "input", "pretrained", "description"):
            t.add_column(col, justify="right" if col in ("params", "GMACs", "input") else "left")
        for r in rows:
            t.add_row(r["name"], f"{r['params'] / 1e6:.2f} M", f"{r['macs'] / 1e9:.3f}",
                      f"{r['input']}×{r['input']}", ", ".join(r["pretrained"]) or "–", r["description"])
        out.print(t)
