"""`edgemed run RECIPE.yaml`: the stages of a recipe, each writing to its own folder of the run
folder with a `stage.json` recorded only when it finished. A rerun skips every stage whose inputs
(options, upstream outputs, data, edgemed version) hash the same, so an interrupted run resumes
after its last finished stage and an edited recipe redoes only what changed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgemed.errors import EdgemedError, RuntimeUnavailable
from edgemed.fileio import atomic_write_json, check_writable, read_json, sha256_file, sha256_json
from edgemed.pipeline.recipe import Recipe, RecipeError, load_recipe
from edgemed.progress import console

STAGE_FILE = "stage.json"


@dataclass
class StageOutcome:
    stage: str
    status: str  # "done" | "skipped (cached)"
    outputs: dict
    seconds: float = 0.0


@dataclass
class RunResult:
    run_dir: Path
    stages: list[StageOutcome] = field(default_factory=list)

    def output(self, stage: str, key: str):
        for s in self.stages:
            if s.stage == stage:
                return s.outputs.get(key)
        return None


def _file_hash(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        return sha256_file(p / "edgemed.json") if (p / "edgemed.json").exists() else sha256_json(sorted(map(str, p.rglob("*"))))
    return sha256_file(p)


def _output_hash(value) -> str | list | None:
    """Content hash of an upstream output (a path, or a list of paths); None if it is gone."""
    if isinstance(value, list):
        return [_output_hash(v) for v in value]
    return _file_hash(value) if Path(value).exists() else None


def check_targets(recipe: Recipe) -> None:
    """Every target must be available here before any work starts."""
    from edgemed.runtime import RUNTIMES, available_devices

    offered = {r: available_devices(r) for r in RUNTIMES}
    for target in recipe.targets:
        aliases = {"gpu": ("gpu", "cuda"), "cuda": ("cuda", "gpu")}.get(target, (target,))
        if not any(a in devs for devs in offered.values() for a in aliases):
            here = sorted({d for devs in offered.values() for d in devs})
            raise RuntimeUnavailable(f"target {target!r} is not available on this machine: available are {', '.join(here)}; "
                                     "remove it from the recipe's targets, or run on a machine that has it")


def check_inputs(recipe: Recipe, root: Path) -> None:
    """Inputs named by the recipe must exist before any work starts."""
    base = recipe.path.parent
    for key in ("checkpoint", "weights", "onnx"):
        if key in recipe.model and not (base / recipe.model[key]).exists():
            raise RecipeError(f"{recipe.path}: model.{key} {recipe.model[key]!r} does not exist: fix the path "
                              "(relative to the recipe's folder)")
    if "factory" in recipe.model:
        from edgemed.trust import require_trusted

        target = recipe.model["factory"].rpartition(":")[0]
        if target.endswith(".py") and not (base / target).exists():
            raise RecipeError(f"{recipe.path}: model.factory file {target!r} does not exist: fix the path "
                              "(relative to the recipe's folder)")
        require_trusted(factory_spec(recipe), recipe.path)  # a recipe from elsewhere names code
    calib = recipe.stages.get("quantize", {}).get("calib")
    if calib and not (base / calib).exists() and not Path(calib).exists():
        raise RecipeError(f"{recipe.path}: stages.quantize.calib {calib!r} does not exist: fix the path, or "
                          "build it with `edgemed calibration build DATASET`")


def factory_spec(recipe: Recipe) -> str:
    """The recipe's user factory with its file path relative to the recipe's folder."""
    target, _, attr = recipe.model["factory"].rpartition(":")
    return (_resolve(recipe, target) if target.endswith(".py") else target) + ":" + attr


def _resolve(recipe: Recipe, value: str) -> str:
    """Paths in a recipe are relative to the recipe's folder (absolute ones stay)."""
    p = Path(value)
    if p.is_absolute():
        return str(p)
    near = recipe.path.parent / p
    return str(near) if near.exists() or not p.exists() else str(p)


def run_recipe(path: str | Path, run_dir: str | Path | None = None, *, data_dir: str | None = None,
               force: bool = False, progress: bool = True, stop_before: str | None = None) -> RunResult:
    """Run (or resume) a recipe. `force` redoes every stage. `stop_before`: run only the stages
    before this one (a sweep builds elsewhere and times here: edgemed/pipeline/sweep.py).

    Example: `run_recipe("benchmarks/recipes/mednext_small-pneumoniamnist.yaml")`.
    """
    from edgemed.data.datasets import load_dataset

    recipe = load_recipe(path)
    root = Path(run_dir) if run_dir else Path("runs") / recipe.name
    check_inputs(recipe, root)
    check_targets(recipe)
    data_dir = data_dir or recipe.data_dir
    dataset = load_dataset(recipe.dataset, data_dir)  # fails here, before work, if the data is missing
    check_writable(root / "stage.json", option="--run-dir")  # a file there, or a place that cannot be written
    root.mkdir(parents=True, exist_ok=True)
    from edgemed import __version__

    result = RunResult(root)
    upstream: dict[str, str] = {}  # what each later stage consumes: checkpoint, bundles, results
    if "checkpoint" in recipe.model:
        upstream["checkpoint"] = _resolve(recipe, recipe.model["checkpoint"])
    for stage in recipe.stage_order:
        if stage == stop_before:
            break
        options = recipe.stages.get(stage, {})
        folder = root / stage
        inputs = {"stage": stage, "options": options, "edgemed": __version__, "data": dataset.sha256,
                  "bound": recipe.accuracy_bound, "targets": recipe.targets,
                  "upstream": {k: _output_hash(v) for k, v in upstream.items()}}
        if stage in ("train", "import"):
            inputs["model"] = recipe.model
        if stage == "import":  # the weights' content, not only their name
            inputs["source"] = _file_hash(_resolve(recipe, recipe.model.get("weights") or recipe.model["onnx"]))
        key = sha256_json(inputs)
        record = folder / STAGE_FILE
        done = _finished(record) if not force else None
        if done is not None and done.get("input_hash") == key and all(Path(p).exists() for p in _paths(done["outputs"])):
            console.log(f"[green]{stage}[/]: inputs unchanged, reusing {folder}")
            upstream.update(done["outputs"])
            result.stages.append(StageOutcome(stage, "skipped (cached)", done["outputs"]))
            continue
        console.rule(f"[bold]{stage}")
        t0 = time.perf_counter()
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if record.exists():
            record.unlink()  # the stage is being redone: it is unfinished until recorded again
        outputs = STAGE_RUNNERS[stage](recipe, dict(options), folder, upstream, data_dir, progress)
        seconds = time.perf_counter() - t0
        atomic_write_json(record, {"stage": stage, "input_hash": key, "inputs": inputs, "outputs": outputs,
                                   "started": started, "seconds": round(seconds, 1), "status": "done"})
        upstream.update(outputs)
        result.stages.append(StageOutcome(stage, "done", outputs, seconds))
    return result


def _finished(record: Path) -> dict | None:
    """A stage's record of a finished run, or None when there is none or it is damaged (the stage
    is then redone): outputs must be paths or lists of paths."""
    if not record.exists():
        return None
    try:
        done = read_json(record, "stage record", 1 << 20)
    except EdgemedError:
        return None
    outputs = done.get("outputs") if isinstance(done, dict) else None
    ok = isinstance(outputs, dict) and all(
        isinstance(v, str) or isinstance(v, list) and all(isinstance(x, str) for x in v) for v in outputs.values())
    return done if ok else None


def _paths(outputs: dict) -> list[str]:
    out = []
    for v in outputs.values():
        out += v if isinstance(v, list) else [v]
    return out


# ---- stages: each returns {name: path} of what it produced --------------------------------

def _import(recipe, opts, folder, upstream, data_dir, progress):
    """model.weights (zoo or factory) or model.onnx → a checkpoint or an ONNX bundle; classes and
    channels from the recipe's data set, input size from the model entry or the data set."""
    from edgemed.data.datasets import load_dataset
    from edgemed.importer import import_model

    m = recipe.model
    ds = load_dataset(recipe.dataset, data_dir)
    onnx = "onnx" in m
    source = _resolve(recipe, m["onnx"]) if onnx else (m.get("zoo") or factory_spec(recipe))
    out = folder / ("bundle" if onnx else "model.safetensors")
    import_model(source, out=out, weights=None if onnx else _resolve(recipe, m["weights"]), classes=ds.class_names,
                 input_size=m.get("input_size") or (None if onnx else ds.image_size[0]), channels=ds.channels,
                 mean=_as_list(m.get("mean")), std=_as_list(m.get("std")), dataset=recipe.dataset, data_dir=data_dir,
                 model_kwargs=m.get("kwargs"), weights_key=m.get("weights_key"),
                 allow_missing=m.get("allow_missing", ()), ignore_unexpected=m.get("ignore_unexpected", ()),
                 force=True, record_trust=False)
    return {"checkpoint": str(out)}


def _as_list(value):
    return None if value is None else value if isinstance(value, list) else [value]


def _train(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.train import train

    model = recipe.model.get("zoo") or factory_spec(recipe)
    out = folder / "model.safetensors"
    threads = opts.pop("threads", recipe.threads)
    # a factory from a recipe was checked against the trust list (or --trust-code); it is not added
    train(model, recipe.dataset, out=out, data_dir=data_dir, model_kwargs=recipe.model.get("kwargs"),
          threads=threads, force=True, progress=progress, record_trust=False, **opts)
    return {"checkpoint": str(out)}


def _prune(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.compress.prune import prune

    out = folder / "model.safetensors"
    prune(upstream["checkpoint"], out=out, data_dir=data_dir, threads=recipe.threads, force=True,
          progress=progress, **opts)
    return {"checkpoint": str(out)}


def _export(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.export.exporter import export
    from edgemed.formats import DEFAULT_FORMATS

    out = folder / "bundle"
    # a recipe's export options are the API's (and the CLI's) names: passed as they are
    export(upstream["checkpoint"], opts.pop("formats", list(DEFAULT_FORMATS)), opts.pop("precision", ["fp32", "fp16"]),
           out, force=True, data_dir=data_dir, threads=recipe.threads, progress=progress, **opts)
    return {"export_bundle": str(out)}


def _quantize(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.compress.calibration import build_calibration
    from edgemed.compress.quantize import quantize

    calib = opts.pop("calib", None)
    if calib:
        calib = _resolve(recipe, calib)
    else:
        from edgemed.data.datasets import load_dataset

        name = load_dataset(recipe.dataset, data_dir).name
        committed = Path("calibration") / f"{name}.json"
        calib = str(committed) if committed.exists() else str(
            build_calibration(recipe.dataset, size=300, data_dir=data_dir, out=folder / "calibration.json", force=True))
    out = folder / "bundle"
    opts.setdefault("max_drop", recipe.accuracy_bound["max_drop"])
    opts.setdefault("metric", recipe.accuracy_bound["metric"])
    r = quantize(upstream["checkpoint"], calib=calib, out=out, data_dir=data_dir, threads=recipe.threads,
                 base_bundle=upstream.get("export_bundle"), force=True, progress=progress, **opts)
    if r.note:  # also in the bundle's manifest and model card
        console.print("note: " + r.local_note(), style="yellow", markup=False)
    return {"bundle": str(out)}


def _bench(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.bench.harness import bench

    bundle = upstream.get("bundle") or upstream["export_bundle"]
    threads_list = opts.pop("threads", recipe.threads or 2)
    threads_list = threads_list if isinstance(threads_list, list) else [threads_list]
    memory = opts.pop("memory", True)
    results = []
    for target in recipe.targets:
        for threads in threads_list:
            out = folder / f"results-{target}-t{threads}.json"
            bench(bundle, device=target, threads=threads, data_dir=data_dir, memory=memory, out=out, force=True,
                  progress=progress, **opts)
            results.append(str(out))
    return {"results": results}


def _report(recipe, opts, folder, upstream, data_dir, progress):
    from edgemed.report.build import report

    out = folder / "report"
    opts.setdefault("max_drop", recipe.accuracy_bound["max_drop"])
    opts.setdefault("metric", recipe.accuracy_bound["metric"] if recipe.accuracy_bound["metric"] in ("accuracy", "auc") else "accuracy")
    report(upstream["results"], out, force=True, **opts)
    return {"report": str(out / "report.html")}


STAGE_RUNNERS = {"import": _import, "train": _train, "prune": _prune, "export": _export, "quantize": _quantize,
                 "bench": _bench, "report": _report}


def ensure_ready(recipe_path: str | Path) -> Recipe:
    """Validate a recipe and its inputs without running anything (`edgemed run --check`)."""
    recipe = load_recipe(recipe_path)
    check_inputs(recipe, Path("."))
    check_targets(recipe)
    return recipe


__all__ = ["RunResult", "StageOutcome", "ensure_ready", "run_recipe", "EdgemedError"]
