"""`edgemed optimize`: search pruning level × INT8 preset / float layers × format × runtime ×
threads for the fastest deployment that keeps an accuracy bound, on this machine.

Design for scale-out: every candidate is a `CandidateSpec` (plain, picklable) evaluated by the
top-level function `evaluate_candidate`, which reads and writes only files under the work folder
and returns a plain dict. Candidates run in local worker processes, or as tasks on a Ray cluster
with the work folder on shared storage (`executor="ray"`, edgemed/pipeline/executors.py), without
changing the search; each candidate records the host it ran on. A worker reads the weights, the
calibration set and the validation split once, however many candidates it builds (quantize's
`hold_inputs`). Latency is measured afterwards, in one process, all candidates interleaved, so
parallel builds never disturb the timings.
"""

from __future__ import annotations

import concurrent.futures as futures
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgemed.bounds import check_max_drop, meets_bound
from edgemed.errors import EdgemedError
from edgemed.fileio import atomic_dir, atomic_write_json, check_output
from edgemed.formats import QUANTIZABLE, QUANTIZE_DEFAULT
from edgemed.pipeline.executors import where, worker_error, worker_pool
from edgemed.progress import progress_bar

PRUNE_LEVELS = (None, 0.6, 0.4)  # share of MACs kept; None = unpruned
PRESETS = ("performance", "mixed")
FORMATS = QUANTIZE_DEFAULT
THREADS = (1, 2)


@dataclass(frozen=True)
class CandidateSpec:
    """One unit of work: build the INT8 (and FP32 reference) artifact of one variant, score it
    on the validation split. Plain fields only, so it crosses process (or cluster) boundaries."""

    checkpoint: str
    prune: float | None
    fmt: str
    preset: str
    ignore: tuple[str, ...]
    work: str
    calib: str
    metric: str
    data_dir: str | None = None
    val_limit: int | None = None
    threads: int = 1
    variant: str = ""  # a user's pruned checkpoint: named by it rather than by the search's level

    @property
    def name(self) -> str:
        p = self.variant or ("full" if self.prune is None else f"macs{int(self.prune * 100)}")
        ig = f"-float{len(self.ignore)}" if self.ignore else ""
        return f"{p}-{self.fmt}-{self.preset}{ig}"


def evaluate_candidate(spec: CandidateSpec) -> dict:
    """Quantize one variant into its own bundle (FP32 + INT8 of one format); return its
    validation metric per artifact. Runs in a worker process (or a Ray task)."""
    import torch

    from edgemed.compress.quantize import hold_inputs, quantize

    hold_inputs()  # this process builds candidate after candidate of the same model and data
    torch.set_num_threads(spec.threads)
    t0 = time.perf_counter()
    out = Path(spec.work) / "candidates" / spec.name
    try:
        r = quantize(spec.checkpoint, calib=spec.calib, formats=[spec.fmt], out=out, preset=spec.preset,
                     ignore=list(spec.ignore) or None, metric=spec.metric, data_dir=spec.data_dir,
                     threads=spec.threads, val_limit=spec.val_limit, force=True, progress=False)
    except EdgemedError as e:
        return {"spec": asdict(spec), "name": spec.name, "ok": False, "error": str(e), **where(),
                "seconds": time.perf_counter() - t0}
    row = r.rows[0]
    return {"spec": asdict(spec), "name": spec.name, "ok": True, "bundle": str(out), **where(),
            "int8_artifact": row["artifact"], "fp32_artifact": f"{spec.fmt}-fp32",
            "metric_int8": row["metric"], "reference": r.reference["value"],
            # popped before the summary is written: optimize scores each drop against its own reference
            "val_logits": {"int8": r.val_logits[row["artifact"]], "fp32": r.val_logits["reference"]},
            "seconds": time.perf_counter() - t0}


@dataclass
class OptimizeResult:
    out: Path
    reference: dict
    points: list[dict]
    pareto: list[dict]
    recommended: dict | None
    bound_met: bool
    notes: list[str] = field(default_factory=list)
    note: str | None = None  # on the recommendation: its drop CI past the bound; says BUNDLE, as the manifest's

    def local_note(self) -> str | None:
        """The note with the recommended bundle's path in place of BUNDLE: what the terminal shows."""
        from edgemed.compress.quantize import fill_bundle

        return fill_bundle(self.note, self.out / "recommended")


def estimate_candidate_seconds(ckpt, calib_n: int, val_n: int) -> float:
    """A rough lower bound for one candidate: converter overhead plus calibration and validation
    passes at ~20 GMAC/s (measured order of magnitude on 2 cores)."""
    from edgemed.models import count_macs

    model = ckpt.architecture()  # gated: a factory the checkpoint names runs only if the user chose it
    macs = count_macs(model, (1, ckpt.in_channels, ckpt.image_size, ckpt.image_size))
    return 20.0 + (calib_n + 2 * val_n) * macs / 20e9


def _prune_variant(checkpoint: str, level: float, work: Path, data_dir, finetune_epochs: int, threads: int) -> str:
    from edgemed.compress.prune import prune

    out = work / "pruned" / f"macs{int(level * 100)}.safetensors"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        prune(checkpoint, out=out, target_macs=level, finetune_epochs=finetune_epochs, distill=finetune_epochs > 0,
              data_dir=data_dir, threads=threads, progress=False)
    return str(out)


def given_variants(checkpoint: str | Path, ckpt, pruned) -> list[tuple[float, str, str]]:
    """(share of MACs kept, path, name) of users' pruned checkpoints, each checked to descend from
    `checkpoint` by an `edgemed prune` step (its lineage)."""
    from edgemed.checkpoint import read_checkpoint

    out = []
    for path in pruned or []:
        child = read_checkpoint(path)
        steps = [s for s in child.lineage if isinstance(s, dict) and s.get("op") == "prune"]
        if not any(s.get("parent_sha256") == ckpt.sha256 for s in steps):
            raise EdgemedError(f"{path} was not pruned from {checkpoint} (no `edgemed prune` step from it in its "
                               f"lineage): pass checkpoints made by `edgemed prune {checkpoint}`")
        first = next(s for s in steps if s.get("parent_sha256") == ckpt.sha256)
        try:
            kept = float(steps[-1]["after"]["macs"]) / float(first["before"]["macs"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            raise EdgemedError(f"{path}: its prune record has no MAC counts: prune it again with "
                               f"`edgemed prune {checkpoint}`") from None
        name = f"given{len(out) + 1}-macs{round(100 * kept)}"
        out.append((kept, str(path), name))
    return out


def _priority(spec: CandidateSpec) -> int:
    """Breadth first across variants: plain INT8 of every variant, then other presets, then
    float-layer variants, so a tight budget still sees each variant once."""
    return 2 if spec.ignore else 0 if spec.preset == PRESETS[0] else 1


def _measure(points: list[dict], spec_x: np.ndarray, rounds: int, progress) -> None:
    """Batch-1 latency of every (artifact, runtime, threads) point, interleaved per thread count."""
    from edgemed.bench.latency import time_artifacts
    from edgemed.export.bundle import load_bundle

    for i, threads in enumerate(sorted({p["threads"] for p in points})):
        group = [p for p in points if p["threads"] == threads]
        targets = {p["id"]: (load_bundle(p["bundle"], verify=False).artifact(p["artifact"]), p["runtime"]) for p in group}
        samples = time_artifacts(targets, spec_x, threads=threads, warmup=5, iterations=rounds,
                                 on_round=lambda n, done=i * rounds: progress(done + n))
        for p in group:
            v = samples[p["id"]]
            p["p50_ms"] = statistics.median(v) * 1e3
            p["p90_ms"] = float(np.percentile(v, 90)) * 1e3


def pareto_points(points: list[dict]) -> list[dict]:
    """The points on the latency–metric front (edgemed/bounds.py's rule, shared with report)."""
    from edgemed.bounds import pareto_front

    flags = pareto_front([(p["p50_ms"], p["metric"]) for p in points])
    return sorted((p for p, on in zip(points, flags) if on), key=lambda p: (p["p50_ms"], -p["metric"]))


def optimize(checkpoint: str | Path, *, max_drop: float = 0.5, metric: str = "accuracy", target: str = "cpu",
             budget_minutes: float = 30.0, out: str | Path | None = None, calib: str | Path | None = None,
             workers: int | None = None, formats=FORMATS, prune_levels=PRUNE_LEVELS, presets=PRESETS,
             threads=THREADS, finetune_epochs: int = 2, rounds: int = 100, val_limit: int | None = None,
             data_dir: str | None = None, pruned=(), force: bool = False, progress: bool = True,
             executor: str = "local", ray_address: str | None = None) -> OptimizeResult:
    """Search deployments of a checkpoint; write the Pareto front and the recommended bundle.

    `pruned`: checkpoints already made by `edgemed prune` from this one (with a fine-tuning
    schedule the search's budget could not afford), searched as variants next to the search's own
    pruning levels.

    `executor="ray"` builds candidates as Ray tasks (`ray_address`: a running cluster; without it a
    private local instance with `workers` CPUs); the work folder, checkpoint and calibration set
    must then be on storage every node sees at the same path. Timing stays on this machine.

    Example: `optimize("m.safetensors", max_drop=0.5, metric="auc", budget_minutes=20, out="opt/")`.
    """
    from edgemed.checkpoint import read_checkpoint
    from edgemed.compress.calibration import build_calibration
    from edgemed.compress.quantize import (
        CONTROL_METRICS,
        _calibration,
        _model,
        _validation,
        drop_change,
        fill_bundle,
    )
    from edgemed.compress.scope import layer_sensitivity, suggest_ignore
    from edgemed.export.exporter import parse_list
    from edgemed.pipeline.executors import check_executor
    from edgemed.runtime import RUNTIMES, available_devices, runtimes_for

    check_max_drop(max_drop)
    check_executor(executor, workers, ray_address)  # Ray installed and its cluster reachable: before any work
    if metric not in CONTROL_METRICS:
        raise EdgemedError(f"unknown --metric {metric!r}: use {', '.join(CONTROL_METRICS)}")
    if target != "cpu":
        offered = sorted({d for r in RUNTIMES for d in available_devices(r)})
        if target not in offered:
            raise EdgemedError(f"target {target!r} is not available here: available are {', '.join(offered)}")
    formats = parse_list(formats, QUANTIZABLE, "format")
    from edgemed.onnx_source import _logits, is_onnx_source, onnx_formats, open_source

    onnx = is_onnx_source(checkpoint)
    if onnx:  # no PyTorch model: INT8 presets × formats × runtimes × threads, no pruning, no sensitivity
        if pruned:
            raise EdgemedError("--pruned variants are PyTorch checkpoints; an ONNX source has none: leave it out")
        ckpt = open_source(checkpoint)
        checkpoint, formats, prune_levels, given = ckpt.bundle.root, onnx_formats(formats, QUANTIZE_DEFAULT), (), []
    else:
        ckpt = read_checkpoint(checkpoint)
        given = given_variants(checkpoint, ckpt, pruned)
    out = Path(out) if out else Path("optimize") / Path(checkpoint).stem
    check_output(out, force)  # exists without --force, or cannot be written: said before any work
    if calib is None:
        committed = Path("calibration") / f"{ckpt.dataset['name']}.json"
        calib = committed if committed.exists() else None
    x_val, y_val = _validation(ckpt, data_dir, val_limit)
    from edgemed.metrics import check_evaluable

    check_evaluable(y_val, metric, ckpt.class_names)
    estimate = 20.0 if onnx else estimate_candidate_seconds(ckpt, 300, len(y_val))
    if budget_minutes * 60 < 1.5 * estimate:
        raise EdgemedError(f"--budget-minutes {budget_minutes:g} is too small to evaluate one candidate of this model "
                           f"(≈ {estimate / 60:.1f} min each): give at least {max(1, round(1.5 * estimate / 60 + 0.5))}")
    workers = workers or max(1, min(2, (os.cpu_count() or 1)))
    deadline = time.monotonic() + budget_minutes * 60
    measure_reserve = 0.15 * budget_minutes * 60
    notes = []
    with atomic_dir(out, force) as tmp, progress_bar(progress) as bar:
        work = (tmp / "work").resolve()  # absolute: tasks may run in other processes or on other nodes
        work.mkdir()
        if calib is None:
            calib = build_calibration(ckpt.dataset["name"], size=300, data_dir=data_dir, out=work / "calibration.json")
        if onnx:
            model, ranking, suggested = None, [], ()
            ref_logits = _logits(ckpt.path, x_val, ckpt.num_classes)
        else:
            from edgemed.models import deploy_form
            from edgemed.train.loop import predict_logits

            _, model = _model(checkpoint)
            model = deploy_form(model)  # layer names as `quantize` sees them
            ref_logits = predict_logits(model, x_val)
            # sensitivity once, on the unpruned model: it proposes the float-layer variant to try
            cal = _calibration(calib, ckpt, data_dir, None)
            task = bar.add_task("sensitivity", total=None, info="")
            # one quantized copy per layer: keep it to a few images on large models (minutes otherwise)
            n_sens = 64 if estimate < 120 else 16
            ranking = layer_sensitivity(model, cal.x[:n_sens], x_val[:n_sens])
            bar.update(task, completed=1, total=1)
            # a float-layer variant is always tried: on few images the ranking may show no flips
            # (convnext_med 224², 16 images) while full INT8 still misses the bound on validation
            suggested = tuple(suggest_ignore(ranking, top=2)) or tuple(r["layer"] for r in ranking[:2])
        ref = _reference_of(ref_logits, y_val, ckpt, metric)
        variants: list[tuple[float | None, str]] = [(None, str(checkpoint))]
        specs = []

        def specs_for(level, path, variant=""):
            out_specs = []
            # absolute paths: a task may run in another folder or on another node of the cluster
            path, cal, data = str(Path(path).resolve()), str(Path(calib).resolve()), \
                str(Path(data_dir).resolve()) if data_dir else None
            per_worker = max(1, (os.cpu_count() or 1) // workers)
            for fmt in formats:
                # an ONNX source's ONNX INT8 is onnxruntime's route, which has no presets
                for preset in presets[:1] if onnx and fmt == "onnx" else presets:
                    out_specs.append(CandidateSpec(path, level, fmt, preset, (), str(work), cal, metric,
                                                   data, val_limit, per_worker, variant))
                # pruning keeps module names, so a given pruned model gets the float variant too
                if suggested and (level is None or variant):
                    out_specs.append(CandidateSpec(path, level, fmt, "performance", suggested, str(work), cal,
                                                   metric, data, val_limit, per_worker, variant))
            return out_specs

        specs += specs_for(None, str(checkpoint))
        for kept, path, name in given:
            variants.append((kept, path))
            specs += specs_for(kept, path, name)
        specs.sort(key=_priority)
        results: list[dict] = []
        logits: dict[str, dict | None] = {}
        task = bar.add_task("candidates", total=None, info="")
        with worker_pool(executor, workers, ray_address) as pool:
            pending = {}
            queue = list(specs)
            levels = [lv for lv in prune_levels if lv is not None]
            avg = estimate
            while queue or pending or levels:
                while queue and len(pending) < workers:
                    # the first candidate always runs: a search that passed the budget check
                    # must leave a model, even when the sensitivity pass ate into the budget
                    if (results or pending) and time.monotonic() + avg > deadline - measure_reserve:
                        notes.append(f"time budget reached: {len(queue)} queued candidates not evaluated")
                        queue.clear()
                        break
                    spec = queue.pop(0)
                    pending[pool.submit(evaluate_candidate, spec, cpus=spec.threads)] = spec
                if not pending and levels and time.monotonic() + 3 * avg < deadline - measure_reserve:
                    level = levels.pop(0)
                    bar.update(task, info=f"pruning to {level:.0%} of the MACs")
                    path = _prune_variant(str(checkpoint), level, work, data_dir, finetune_epochs, os.cpu_count() or 1)
                    variants.append((level, path))
                    queue += specs_for(level, path)
                    continue
                if not pending:
                    if levels:
                        notes.append(f"time budget reached: pruning levels {levels} not tried")
                    break
                done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                for f in done:
                    spec = pending.pop(f)
                    try:
                        r = f.result()
                    except Exception as e:  # a worker that died (memory, a crash): its own line, not its traceback
                        raise EdgemedError(f"candidate {spec.name} failed on a worker: {worker_error(e)}") from None
                    logits[r["name"]] = r.pop("val_logits", None)
                    results.append(r)
                    ok = [x["seconds"] for x in results if x["ok"]]
                    avg = statistics.mean(ok) if ok else avg
                    bar.update(task, completed=len(results), info=f"{r['name']}: " +
                               (f"{metric} {r['metric_int8']:.4f}" if r["ok"] else "failed"))
        # points: each artifact on each runtime it can run on, at each thread count
        points = _points(results, runtimes_for, threads)
        if not points:
            errors = "; ".join(f"{r['name']}: {r.get('error')}" for r in results) or "none was evaluated"
            raise EdgemedError(f"no candidate produced a model ({errors}): fix the first error, or leave the "
                               "failing format out of --formats")
        total = rounds * len(set(p["threads"] for p in points))
        mtask = bar.add_task("latency (interleaved)", total=total, info="")
        _measure(points, x_val[:1], rounds, lambda n: bar.update(mtask, completed=n))
        if onnx:  # the reference is the FP32 ONNX on onnxruntime, timed with the others
            torch_lat = {p["threads"]: p["p50_ms"] for p in points
                         if p["artifact"] == "onnx-fp32" and p["runtime"] == "onnxruntime"}
        else:
            torch_lat = _torch_latency(model, x_val[:1], threads, rounds)
        changes: dict[tuple, dict] = {}
        for p in points:
            p["speedup_vs_torch_fp32"] = torch_lat[p["threads"]] / p["p50_ms"]
            p["drop_points"] = 100 * (ref["value"] - p["metric"])
            p["meets_bound"] = meets_bound(p["drop_points"], max_drop)
            # how sure that drop is: against the one reference, so pruning's share counts too
            key = (p["candidate"], p["precision"])  # one bootstrap per artifact, not per runtime × threads
            if key not in changes and logits.get(p["candidate"]):  # (a worker of another version sends none)
                changes[key] = drop_change(y_val, metric, ref_logits, logits[p["candidate"]][p["precision"]])
            p.update(changes.get(key, {}))
        front = pareto_points(points)
        ok = [p for p in points if p["meets_bound"]]
        best = min(ok, key=lambda p: p["p50_ms"]) if ok else max(points, key=lambda p: (p["metric"], -p["p50_ms"]))
        note = recommendation_note(ok, best, max_drop, len(y_val), tmp.resolve())
        _write_recommended(tmp / "recommended", best, ok != [], "onnx-fp32" if onnx else "torch-fp32", note)
        # the folder is renamed into place when done: record candidate paths relative to it
        for item in [*results, *points]:
            if item.get("bundle"):
                item["bundle"] = os.path.relpath(item["bundle"], tmp.resolve())
        summary = {"checkpoint": str(checkpoint), "metric": metric, "max_drop_points": max_drop, "target": target,
                   "budget_minutes": budget_minutes, "reference": ref, "torch_fp32_ms": torch_lat,
                   "candidates": results, "points": points, "pareto": [p["id"] for p in front],
                   "recommended": best, "bound_met": bool(ok), "sensitivity": ranking[:10],
                   "note": fill_bundle(note, out / "recommended"),
                   "suggested_float_layers": list(suggested), "notes": notes, "workers": workers,
                   "given_pruned": [{"path": p, "name": n, "macs_kept": k} for k, p, n in given],
                   "latency_rounds": rounds,
                   "reference_runtime": "the FP32 ONNX on onnxruntime" if onnx else "PyTorch FP32 eager"}
        atomic_write_json(tmp / "optimize.json", summary)
        _plot(tmp / "pareto.png", points, front, best, ref, metric, max_drop)
        (tmp / "summary.md").write_text(_markdown(summary))
    # candidate bundles stay under work/ for inspection; the recommended one is copied out
    return OptimizeResult(out, ref, points, [p for p in points if p["id"] in {q["id"] for q in front}],
                          best, bool(ok), notes, note)


def _reference_of(logits, y_val, ckpt, metric) -> dict:
    from edgemed.metrics import classification_metrics, metric_value, softmax

    m = classification_metrics(y_val, softmax(logits), ckpt.class_names, n_boot=0)
    return {"metric": metric, "value": metric_value(m, metric), "split": "val", "n": int(len(y_val))}


def _points(results, runtimes_for, threads) -> list[dict]:
    points = []
    seen_fp32 = set()
    for r in results:
        if not r["ok"]:
            continue
        spec = r["spec"]
        entries = [(r["int8_artifact"], r["metric_int8"], "int8")]
        fp32_key = (spec["checkpoint"], spec["fmt"])
        if fp32_key not in seen_fp32:  # one FP32 point per variant and format
            seen_fp32.add(fp32_key)
            entries.append((r["fp32_artifact"], None, "fp32"))
        for artifact, value, precision in entries:
            for runtime in runtimes_for(spec["fmt"]):
                for t in threads:
                    points.append({
                        "id": f"{r['name']}:{artifact}@{runtime}/t{t}", "candidate": r["name"], "bundle": r["bundle"],
                        "artifact": artifact, "precision": precision, "format": spec["fmt"], "runtime": runtime,
                        "threads": t, "prune": spec["prune"], "preset": spec["preset"] if precision != "fp32" else None,
                        "float_layers": spec["ignore"] if precision != "fp32" else [],
                        # FP32 exports match their PyTorch model to ~1e-6 (parity is checked at
                        # export), so they score as the checkpoint they came from
                        "metric": value if value is not None else r["reference"]})
    return points


def _torch_latency(model, x1, threads, rounds) -> dict[int, float]:
    from edgemed.compress.prune import torch_latency_ms

    out = {}
    import torch

    for t in threads:
        out[t] = torch_latency_ms({"m": model}, torch.from_numpy(x1), t, rounds=rounds)["m"]
    return out


def recommendation_note(within: list[dict], best: dict, max_drop: float, n: int, root: Path) -> str | None:
    """quantize's note for optimize's choice (the rule stays the fastest point within the bound):
    where the best point's drop CI reaches past the bound, the fastest point whose CI does not."""
    from edgemed.compress.quantize import ci_within, uncertain_bound_note

    if not within or not best.get("drop_ci_points") or ci_within(best, max_drop):
        return None
    firm = min((p for p in within if ci_within(p, max_drop)), key=lambda p: p["p50_ms"], default=None)
    other = (f"; {_label(firm)}'s stays within it ({firm['p50_ms']:.2f} vs {best['p50_ms']:.2f} ms; "
             f"its bundle is {os.path.relpath(firm['bundle'], root)} in the optimize folder)") if firm else ""
    return uncertain_bound_note(_label(best), best, max_drop, n, other)


def _label(point: dict) -> str:
    return f"{point['candidate']}:{point['artifact']} on {point['runtime']} ({point['threads']} thread(s))"


def _write_recommended(folder: Path, point: dict, met: bool, reference: str = "torch-fp32",
                       note: str | None = None) -> None:
    """A bundle with the recommended artifact and the FP32 reference, marked recommended; its
    quantization note is optimize's (the candidate's own quantize saw only its own builds)."""
    from edgemed.export.bundle import BundleWriter, load_bundle

    folder.mkdir(parents=True)
    writer = BundleWriter.subset(load_bundle(point["bundle"]), folder, {point["artifact"], reference})
    if isinstance(writer.manifest.get("quantization"), dict):
        writer.set("quantization", {**writer.manifest["quantization"], "note": note})
    writer.recommend(point["artifact"], runtime=point["runtime"], threads=point["threads"], device="cpu",
                     bound_met=met, label=None if met else "BOUND NOT MET: best model found",
                     validation_metric=point["metric"], p50_ms=point["p50_ms"])
    writer.write()
    load_bundle(folder)  # verify


def _plot(path: Path, points, front, best, ref, metric, max_drop) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for prec, marker in (("fp32", "o"), ("int8", "^")):
        sel = [p for p in points if p["precision"] == prec]
        ax.scatter([p["p50_ms"] for p in sel], [p["metric"] for p in sel], marker=marker, alpha=0.6, label=prec)
    ax.plot([p["p50_ms"] for p in front], [p["metric"] for p in front], "k--", lw=1, label="Pareto front")
    ax.axhline(ref["value"] - max_drop / 100, color="red", lw=0.8, label=f"bound (−{max_drop} pt)")
    ax.scatter([best["p50_ms"]], [best["metric"]], s=160, facecolors="none", edgecolors="green", label="recommended")
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 latency p50 (ms, log scale)")
    ax.set_ylabel(f"validation {metric}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _ci(point: dict) -> str:
    ci = point.get("drop_ci_points")
    return f"[{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "–"


def _markdown(s: dict) -> str:
    ref = s["reference"]
    best = s["recommended"]
    lines = [f"# edgemed optimize: {s['checkpoint']}", "",
             f"Bound: validation {s['metric']} drop ≤ {s['max_drop_points']} pt vs "
             f"{s.get('reference_runtime', 'PyTorch FP32 eager').replace(' on onnxruntime', '').replace(' eager', '')} "
             f"({ref['value']:.4f}, n={ref['n']}). Budget {s['budget_minutes']} min, {s['workers']} workers.", "",
             f"**Recommended**: `{best['artifact']}` of `{best['candidate']}` on {best['runtime']} with {best['threads']} "
             f"thread(s): p50 {best['p50_ms']:.3f} ms ({best['speedup_vs_torch_fp32']:.1f}× "
             f"{s.get('reference_runtime', 'PyTorch FP32 eager')}), "
             f"{s['metric']} {best['metric']:.4f} (drop {best['drop_points']:+.2f} pt)"
             + ("" if s["bound_met"] else " — **BOUND NOT MET: best model found**"), "",
             *([f"**Note**: {s['note']}", ""] if s.get("note") else []),
             "| point | precision | runtime | threads | p50 ms | speed-up vs FP32 reference | metric | drop pt | drop 95% CI "
             "| changed | bound | Pareto |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|"]
    front = set(s["pareto"])
    for p in sorted(s["points"], key=lambda q: q["p50_ms"]):
        lines.append(f"| {p['candidate']}:{p['artifact']} | {p['precision']} | {p['runtime']} | {p['threads']} | "
                     f"{p['p50_ms']:.3f} | {p['speedup_vs_torch_fp32']:.1f}× | {p['metric']:.4f} | "
                     f"{p['drop_points']:+.2f} | {_ci(p)} | {p.get('flips', '–')} | {'yes' if p['meets_bound'] else 'no'} | "
                     f"{'★' if p['id'] in front else ''} |")
    if s["notes"]:
        lines += ["", "Notes: " + "; ".join(s["notes"])]
    lines += ["", "Latency: batch 1, median of interleaved rounds in one process after all candidates were built. "
              "Metrics on the validation split (never test)."]
    return "\n".join(lines) + "\n"


__all__ = ["CandidateSpec", "OptimizeResult", "evaluate_candidate", "optimize", "pareto_points", "recommendation_note"]
