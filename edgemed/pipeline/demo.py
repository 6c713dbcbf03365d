"""`edgemed demo`: an embedded recipe on PneumoniaMNIST, from the shipped mednext_small weights
(prune → export → quantize → bench → report), or with `train=True` trained first; it ends with
the summary table and the path of report.html."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgemed.pipeline.runner import RunResult, run_recipe


def demo_recipe(train: bool = False) -> Path:
    return Path(str(resources.files("edgemed") / "recipes" / ("demo_train.yaml" if train else "demo.yaml")))


def demo(run_dir: str | Path = "runs/demo", *, data_dir: str | None = None, force: bool = False,
         progress: bool = True, train: bool = False) -> RunResult:
    """Run (or resume) the demo pipeline into `run_dir`; `train` trains the model first instead of
    starting from the shipped weights."""
    return run_recipe(demo_recipe(train), run_dir, data_dir=data_dir, force=force, progress=progress)
