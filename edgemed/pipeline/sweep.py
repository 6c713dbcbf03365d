"""`edgemed run a.yaml b.yaml ...`: many recipes, built where the executor says, timed here.

With `executor="ray"` each recipe's build stages (everything before `bench`: train, import, prune,
export, quantize) run as one Ray task, on any node; every task records its host. The timing stages
(bench, report) then run on this machine, one recipe at a time, so no two timings overlap and
the numbers are the target's. The stage cache makes the hand-over free: this machine finds the
build stages finished (same inputs, outputs present on the shared path) and reuses them.
"""

from __future__ import annotations

import concurrent.futures as futures
from dataclasses import dataclass
from pathlib import Path

from edgemed.errors import EdgemedError
from edgemed.fileio import check_writable
from edgemed.pipeline.executors import where, worker_error, worker_pool
from edgemed.pipeline.runner import RunResult, run_recipe

TIMING_STAGES = ("bench", "report")  # measured on the machine that runs the sweep


@dataclass
class SweepOutcome:
    recipe: str
    host: str  # where the build stages ran
    node: str | None  # the Ray node they ran on (None: here)
    result: RunResult  # every stage, as this machine's final pass saw it


def build_stages(recipe: str, run_dir: str, data_dir: str | None, force: bool) -> dict:
    """A recipe's stages before the first timing stage, in a worker (a Ray task). Plain values
    in and out, so it crosses process and node boundaries."""
    from edgemed.pipeline.recipe import load_recipe

    stop = next((s for s in load_recipe(recipe).stage_order if s in TIMING_STAGES), None)
    result = run_recipe(recipe, run_dir, data_dir=data_dir, force=force, progress=False, stop_before=stop)
    return {"recipe": recipe, **where(), "stages": [(s.stage, s.status, s.seconds) for s in result.stages]}


def run_sweep(recipes: list[str | Path], *, root: str | Path | None = None, executor: str = "local",
              address: str | None = None, workers: int | None = None, data_dir: str | None = None,
              force: bool = False) -> list[SweepOutcome]:
    """Run several recipes into `root`/<name> (default ./runs/<name>). Local: one after
    another, whole, here. Ray: build stages as tasks (at most `workers` at once), then the timing
    stages here. A recipe is checked before any work starts.

    Example: `run_sweep(["a.yaml", "b.yaml"], executor="ray", address="auto")`.
    """
    from edgemed.pipeline.executors import check_executor
    from edgemed.pipeline.runner import ensure_ready

    check_executor(executor, workers, address)
    if not recipes:
        raise EdgemedError("no recipe given: name one or more recipe files")
    loaded = [ensure_ready(r) for r in recipes]  # every recipe valid before any work
    names = [r.name for r in loaded]
    if len(set(names)) < len(names):
        raise EdgemedError(f"two recipes share the name {next(n for n in names if names.count(n) > 1)!r}: their "
                           "runs would overwrite each other; rename one (the `name:` key)")
    base = (Path(root) if root else Path("runs")).resolve()  # absolute: the tasks may run elsewhere
    jobs = [(str(Path(r).resolve()), str(base / n)) for r, n in zip(recipes, names)]
    for _, run_dir in jobs:  # every run folder writable before any task starts
        check_writable(Path(run_dir) / "stage.json", option="--run-dir")
    data = str(Path(data_dir).resolve()) if data_dir else None
    hosts: dict[str, dict] = {}
    if executor != "local":
        with worker_pool(executor, workers or len(jobs), address) as pool:
            pending = {pool.submit(build_stages, recipe, run_dir, data, force): recipe for recipe, run_dir in jobs}
            for f in futures.as_completed(pending):
                try:
                    built = f.result()
                except Exception as e:
                    raise EdgemedError(f"{Path(pending[f]).name}: its build failed on a worker: {worker_error(e)}") from None
                hosts[built["recipe"]] = built
        force = False  # the build stages were just (re)done: reuse them below
    out = []
    for recipe, run_dir in jobs:
        result = run_recipe(recipe, run_dir, data_dir=data, force=force)
        built = hosts.get(recipe) or where()
        out.append(SweepOutcome(recipe, built["host"], built.get("node"), result))
    return out
