"""`edgemed run`, `edgemed demo` and `edgemed optimize`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

import edgemed.formats as formats_table
from edgemed.cli.common import out


def print_run(result) -> None:
    from rich.table import Table

    from edgemed.cli.bench import results_table

    t = Table(title=f"stages of {result.run_dir}")
    for c in ("stage", "status", "time", "output"):
        t.add_column(c)
    for s in result.stages:
        shown = next(iter(s.outputs.values()), "")
        t.add_row(s.stage, s.status, f"{s.seconds:.0f} s" if s.seconds else "–",
                  ", ".join(shown) if isinstance(shown, list) else str(shown))
    out.print(t)
    for path in result.output("bench", "results") or []:
        out.print(results_table(json.loads(Path(path).read_text())))
    html = result.output("report", "report")
    if html:
        out.print(f"report: {Path(html).resolve()}")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(recipes: list[Path] = typer.Argument(..., help="Recipe YAML file(s) (see benchmarks/recipes/)."),
            run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default runs/<recipe name>); with "
                                         "several recipes or --executor ray: the folder that holds a <recipe name> "
                                         "folder per recipe (default runs/)."),
            data_dir: str = typer.Option(None, "--data-dir"),
            check: bool = typer.Option(False, "--check", help="Validate the recipe and its inputs; run nothing."),
            force: bool = typer.Option(False, "--force", help="Redo every stage, even unchanged ones."),
            executor: str = typer.Option("local", "--executor", help="local: recipes one after another here | "
                                         "ray: build stages as Ray tasks, then bench and report here."),
            ray_address: str = typer.Option(None, "--ray-address", help="A running Ray cluster; default: a "
                                            "private Ray instance on this machine."),
            workers: int = typer.Option(None, "--workers", help="Recipes built at once with --executor ray "
                                        "(default: all of them).")):
        """Run recipes' stages; unchanged finished stages are reused (resume after Ctrl-C)."""
        from edgemed.pipeline.executors import check_executor
        from edgemed.pipeline.runner import ensure_ready, run_recipe
        from edgemed.pipeline.sweep import run_sweep

        check_executor(executor, workers, ray_address)
        if check:
            for recipe in recipes:
                r = ensure_ready(recipe)
                out.print(f"{recipe}: valid; stages {', '.join(r.stage_order)}; targets {', '.join(r.targets)}")
            return
        if len(recipes) == 1 and executor == "local":
            print_run(run_recipe(recipes[0], run_dir, data_dir=data_dir, force=force))
            return
        for done in run_sweep(recipes, root=run_dir, executor=executor, address=ray_address, workers=workers,
                              data_dir=data_dir, force=force):
            out.print(f"[bold]{done.recipe}[/]: built on {done.host}" + (f" (Ray node {done.node[:12]})" if done.node else ""))
            print_run(done.result)

    @app.command()
    def demo(run_dir: Path = typer.Option(None, "--run-dir", help="Default runs/demo (runs/demo-train with --train)."),
             data_dir: str = typer.Option(None, "--data-dir"),
             train: bool = typer.Option(False, "--train", help="Train the model first (about 8 min more) instead "
                                        "of starting from the shipped weights."),
             force: bool = typer.Option(False, "--force", help="Redo every stage.")):
        """Shipped mednext_small → prune → export → quantize → bench → report on PneumoniaMNIST (--train: train first)."""
        from edgemed.pipeline.demo import demo as demo_api

        run_dir = run_dir or Path("runs/demo-train" if train else "runs/demo")
        print_run(demo_api(run_dir, data_dir=data_dir, force=force, train=train))

    @app.command()
    def optimize(
        checkpoint: Path = typer.Argument(..., help="Trained checkpoint."),
        max_drop: float = typer.Option(0.5, "--max-drop", help="Allowed validation drop of --metric, in points."),
        metric: str = typer.Option("accuracy", help="accuracy | auc | sensitivity | balanced_accuracy."),
        target: str = typer.Option("cpu", help="Device to optimize for (must be present here)."),
        budget_minutes: float = typer.Option(30.0, "--budget-minutes"),
        out_path: Path = typer.Option(None, "--out", "-o", help="Output folder (default optimize/<checkpoint>)."),
        calib: Path = typer.Option(None, "--calib", help="Calibration manifest (default calibration/<data set>.json)."),
        workers: int = typer.Option(None, help="Parallel candidate builds (default: cores, at most 2)."),
        formats: str = typer.Option(",".join(formats_table.QUANTIZE_DEFAULT), "--formats",
                                    help=f"Comma list: {formats_table.listing(formats_table.QUANTIZABLE)}."),
        finetune_epochs: int = typer.Option(2, help="Distilled fine-tuning epochs per pruning level."),
        rounds: int = typer.Option(100, help="Interleaved latency rounds per point."),
        val_limit: int = typer.Option(None, help="Stratified subset of validation images."),
        pruned: list[Path] = typer.Option(None, "--pruned", help="A checkpoint made by `edgemed prune` from CHECKPOINT, "
                                          "searched as a variant (repeatable)."),
        data_dir: str = typer.Option(None, "--data-dir"),
        force: bool = typer.Option(False, "--force"),
        executor: str = typer.Option("local", "--executor", help="Where candidates are built: local (worker "
                                     "processes) | ray (Ray tasks; timing stays here)."),
        ray_address: str = typer.Option(None, "--ray-address", help="A running Ray cluster (`ray start --head` "
                                        "prints it); default: a private Ray instance on this machine."),
    ):
        """Search pruning × INT8 preset/float layers × format × runtime × threads within a bound."""
        from edgemed.pipeline.optimize import optimize as optimize_api

        r = optimize_api(checkpoint, max_drop=max_drop, metric=metric, target=target, budget_minutes=budget_minutes,
                         out=out_path, calib=calib, workers=workers, formats=[f for f in formats.split(",") if f],
                         finetune_epochs=finetune_epochs, rounds=rounds, val_limit=val_limit, data_dir=data_dir,
                         pruned=pruned or (), force=force, executor=executor, ray_address=ray_address)
        out.print((r.out / "summary.md").read_text())
        best = r.recommended
        label = "" if r.bound_met else "  [red]BOUND NOT MET: best model found"
        out.print(f"recommended: {best['artifact']} on {best['runtime']} ({best['threads']} threads) → "
                  f"{r.out / 'recommended'}{label}")
        if r.note:
            out.print("note: " + r.local_note(), style="yellow", markup=False)
        out.print(f"Pareto plot: {r.out / 'pareto.png'}")
