"""`edgemed data list | info NAME | verify [NAME...]`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from rich.table import Table

from edgemed.cli.common import out, print_json
from edgemed.errors import DataError

app = typer.Typer(no_args_is_help=True, help="Data sets: list, inspect and verify.")

DataDir = typer.Option(None, "--data-dir", help="Folder with the .npz files (else $EDGEMED_DATA_DIR, else the user cache).")


def _local_path(name: str, data_dir) -> Path | None:
    from edgemed.data.datasets import search_dirs

    for d in search_dirs(data_dir):
        if (d / f"{name}.npz").is_file():
            return d / f"{name}.npz"
    return None


@app.command("list")
def list_(data_dir: str = DataDir, json_out: bool = typer.Option(False, "--json")):
    """Data sets edgemed knows by name, and where each is found here."""
    from edgemed.data.catalog import CATALOG

    rows = []
    for info in CATALOG.values():
        path = _local_path(info.name, data_dir)
        rows.append({"name": info.name, "task": info.task, "classes": len(info.class_names),
                     "channels": info.channels, "size": info.image_size,
                     "samples": info.n_samples, "license": info.license,
                     "location": str(path) if path else ("download on first use" if info.url else "missing")})
    if json_out:
        return print_json(rows)
    t = Table(title="data sets")
    for col in ("name", "task", "classes", "image", "train/val/test", "location"):
        t.add_column(col)
    for r in rows:
        s = r["samples"]
        t.add_row(r["name"], r["task"], str(r["classes"]), f"{r['size']}×{r['size']}×{r['channels']}",
                  f"{s.get('train', '?')}/{s.get('val', '?')}/{s.get('test', '?')}", r["location"])
    out.print(t)


def _describe(name: str, data_dir) -> dict:
    from edgemed.data.catalog import CATALOG
    from edgemed.data.datasets import load_dataset

    ds = load_dataset(name, data_dir)
    info = CATALOG.get(ds.name)
    splits = {}
    for s in ds.split_names:
        images, labels = ds.split(s)
        shape = list(images.shape) if hasattr(images, "shape") else [len(images), "varies"]
        splits[s] = {"shape": shape, "class_counts": ds.class_counts(s)}
    d = {"name": ds.name, "task": ds.task, "classes": ds.class_names, "source": ds.source,
         "sha256": ds.sha256, "splits": splits, "note": ds.note}
    if info is not None and info.md5 and Path(ds.source).is_file():
        md5 = hashlib.md5(Path(ds.source).read_bytes()).hexdigest()
        d["md5"] = md5
        d["official_md5"] = info.md5
        d["md5_matches_official"] = md5 == info.md5
    if info is not None:
        d["expected_samples"] = info.n_samples
    return d


@app.command()
def info(name: str = typer.Argument(..., help="Catalog name, .npz path or image folder."),
         data_dir: str = DataDir, json_out: bool = typer.Option(False, "--json")):
    """Shapes, class counts per split and the sha256 of one data set."""
    d = _describe(name, data_dir)
    if json_out:
        return print_json(d)
    out.print(f"[bold]{d['name']}[/] ({d['task']}, {len(d['classes'])} classes) — {d['source']}")
    out.print(f"sha256 {d['sha256']}")
    if "md5" in d:
        state = "matches the official file" if d["md5_matches_official"] else \
            f"differs from the official {d['official_md5']} (re-saved copy; contents checked below)"
        out.print(f"md5 {d['md5']} {state}")
    if d["note"]:
        out.print(d["note"])
    t = Table()
    t.add_column("split")
    t.add_column("images")
    for c in d["classes"]:
        t.add_column(c[:18])
    for s, v in d["splits"].items():
        t.add_row(s, "×".join(str(x) for x in v["shape"]), *[str(c) for c in v["class_counts"]])
    out.print(t)


@app.command()
def verify(names: list[str] = typer.Argument(None, help="Data sets (default: every catalog set found locally)."),
           data_dir: str = DataDir):
    """Load every split, check shapes, labels and sample counts against the catalog; print sha256."""
    from edgemed.data.catalog import CATALOG

    targets = names or [n for n in CATALOG if _local_path(n, data_dir)]
    if not targets:
        raise DataError("no data sets found: set EDGEMED_DATA_DIR or pass --data-dir")
    problems = []
    t = Table(title="verify")
    for col in ("data set", "status", "sha256", "detail"):
        t.add_column(col)
    for name in targets:
        try:
            d = _describe(name, data_dir)
        except DataError as e:
            problems.append(name)
            t.add_row(name, "[red]FAIL", "", str(e))
            continue
        detail = []
        expected = d.get("expected_samples", {})
        for s, v in d["splits"].items():
            if s in expected and v["shape"][0] != expected[s]:
                detail.append(f"{s}: {v['shape'][0]} images, catalog says {expected[s]}")
        if d.get("md5_matches_official") is False:
            detail.append("md5 differs from official (warning)")
        status = "[red]FAIL" if any("catalog says" in x for x in detail) else "[green]ok"
        if status != "[green]ok":
            problems.append(name)
        t.add_row(name, status, d["sha256"][:16] + "…", "; ".join(detail) or "shapes and counts ok")
    out.print(t)
    if problems:
        raise DataError(f"verification failed for {', '.join(problems)}: see the table above; "
                        "re-download or replace those files")
