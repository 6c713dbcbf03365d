"""Every committed benchmark page is its script's rendering of the committed JSON: a hand-edited
.md, or a renderer that drifted from the numbers it was given, fails here.
Fix: `python -m benchmarks.render NAME` (and check `git diff benchmarks/results`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.common import RESULTS
from benchmarks.render import PAGES, render

COMMITTED = [n for n in PAGES if (RESULTS / f"{n}.json").exists()]


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_page_is_the_rendered_json(name):
    assert render(name) == (RESULTS / f"{name}.md").read_text(encoding="utf-8"), \
        f"benchmarks/results/{name}.md is not the rendering of {name}.json: python -m benchmarks.render {name}"


def test_benchmark_modules_import_without_torch():
    """Pages render anywhere: a benchmark module's top level starts no work and needs no torch
    (its heavy imports are inside the functions that measure)."""
    code = ("import importlib, sys; from benchmarks.render import PAGES\n"
            "for m in PAGES.values(): importlib.import_module(m)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=RESULTS.parent.parent)
    assert out.stdout.strip() == "False"


def test_every_committed_page_has_a_renderer():
    pages = {p.stem for p in RESULTS.glob("*.md")}
    assert pages <= set(PAGES), f"pages without a renderer in benchmarks/render.py: {sorted(pages - set(PAGES))}"


def test_seed_training_commands_are_edgemed_train_commands():
    import shlex

    import typer.main

    from benchmarks.pretrained import SHIPPED
    from benchmarks.train_seeds import RUNS, train_command, train_commands
    from edgemed.cli import app

    # the shipped weights record these commands: each must run as written
    train = typer.main.get_command(app).commands["train"]
    single = [train_command(dict(key=f"{m}-{d}", model=m, dataset=d, **s))
              for m, d, s in SHIPPED if isinstance(s, dict)]  # weights benchmarks.pretrained trains itself
    assert single
    for commands in [*(train_commands(c["key"]) for c in RUNS), single]:
        for command in commands:
            words = shlex.split(command)
            assert words[:2] == ["edgemed", "train"]
            ctx = train.make_context("train", words[2:])  # parses every option and value as the CLI would
            assert ctx.params["dataset"] and ctx.params["out_path"].name.endswith(".safetensors")
