"""`edgemed demo`: the embedded recipe (train → prune → export → quantize → bench → report on
PneumoniaMNIST), ending with the summary table and the path of report.html."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from edgemed.pipeline.runner import RunResult, run_recipe


def demo_recipe() -> Path:
    return Path(str(resources.files("edgemed") / "recipes" / "demo.yaml"))


def demo(run_dir: str | Path = "runs/demo", *, data_dir: str | None = None, force: bool = False,
         progress: bool = True) -> RunResult:
    """Run (or resume) the demo pipeline into `run_dir`."""
    return run_recipe(demo_recipe(), run_dir, data_dir=data_dir, force=force, progress=progress)
