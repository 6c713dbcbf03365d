"""`edgemed quantize`: INT8 artifacts (plus FP32 references) for OpenVINO, ONNX and TFLite in one
bundle, with accuracy control against a bound on the validation split (never test), a per-layer
sensitivity report, and the fastest artifact within the bound marked as recommended."""

from __future__ import annotations

import importlib
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemed.compress.nncf_quant import PRESETS, AccuracyTarget
from edgemed.errors import EdgemedError, ExportError
from edgemed.export.base import describe_failure
from edgemed.fileio import atomic_dir, check_output, quiet_native
from edgemed.progress import progress_bar

FORMATS = ("openvino", "onnx", "tflite")
CONTROL_METRICS = ("accuracy", "auc", "sensitivity", "balanced_accuracy")
# format → routes; the first is the default (ONNX: `ort`, measured fastest on onnxruntime and as
# accurate in benchmarks/quantize_routes.py)
ROUTES = {"openvino": ("nncf",), "onnx": ("ort", "nncf", "pt2e"), "tflite": None}
MAX_REVERT_FRACTION = 0.25  # our accuracy-control loop keeps at most this share of layers float


def sensitivity_images(x: np.ndarray) -> int:
    """Images for the one-layer-at-a-time sensitivity pass: one quantized forward per layer, so at
    224² (ConvNeXt-Tiny: ~60 layers) 128 images took 10 minutes on 2 cores; 24 rank as well."""
    return 128 if x.shape[-1] * x.shape[-2] <= 64 * 64 else 24


@dataclass
class QuantizeResult:
    bundle: Path
    rows: list[dict]
    recommended: str | None
    reference: dict
    sensitivity: list[dict] | None = None
    suggested_ignore: list[str] = field(default_factory=list)


def tflite_routes() -> tuple[str, ...]:
    from edgemed.compress import tflite_int8

    return tuple(tflite_int8.ROUTES)


def parse_routes(routes: dict | str | None, formats: list[str]) -> dict[str, str]:
    """`{"onnx": "pt2e"}` or "onnx=pt2e,tflite=aeq" → a route for every format."""
    if isinstance(routes, str):
        pairs = [r.split("=", 1) for r in routes.split(",") if r.strip()]
        if any(len(p) != 2 for p in pairs):
            raise EdgemedError(f"--routes must look like onnx=pt2e,tflite=aeq; got {routes!r}")
        routes = {k.strip(): v.strip() for k, v in pairs}
    routes = dict(routes or {})

    def options(fmt: str) -> tuple[str, ...]:
        return ROUTES[fmt] if ROUTES[fmt] is not None else tflite_routes()

    for fmt, route in routes.items():
        if fmt not in ROUTES:
            raise EdgemedError(f"--routes names unknown format {fmt!r}: use {', '.join(ROUTES)}")
        if route not in options(fmt):
            raise EdgemedError(f"unknown {fmt} route {route!r}: use {', '.join(options(fmt))}")
    extra = [f for f in routes if f not in formats]
    if extra:
        raise EdgemedError(f"routes given for formats not being quantized: {', '.join(extra)}")
    return {fmt: routes.get(fmt, options(fmt)[0]) for fmt in formats}


def auto_model_type(model_name: str) -> str:
    """NNCF's transformer model type for LayerNorm/GELU-heavy ConvNeXt blocks (NNCF's advice);
    CNNs with BatchNorm use the default. On convnext_med_28 both gave the same accuracy and speed
    (benchmarks/quantize_routes.py)."""
    return "transformer" if model_name.startswith("convnext_med") else "cnn"


def _validation(ckpt, data_dir, limit):
    from edgemed.data.datasets import prepare_split

    ds = ckpt.open_dataset(data_dir)
    x_u8, y = prepare_split(ds, "val", ckpt.preprocess, limit)
    return ckpt.preprocess.normalize(x_u8), y


def _int8(fmt, route, model, example, calib, tmp: Path, fp32_file: Path, opts: dict, keep_float: list[str],
          accuracy: AccuracyTarget | None = None):
    """Quantize one format; returns (files, details)."""
    from edgemed.compress import nncf_quant, pt2e
    from edgemed.compress.scope import conv_bn_pairs

    if fmt == "openvino":
        r = nncf_quant.quantize_openvino(model, example, calib, tmp, ignore_layers=keep_float, accuracy=accuracy,
                                         fp32_ir=fp32_file if fp32_file.suffix == ".xml" else None, **opts)
        return r.files, r.details
    if fmt == "onnx" and route == "nncf":
        r = nncf_quant.quantize_onnx(fp32_file, calib, tmp / "model_int8.onnx", ignore_layers=keep_float,
                                     accuracy=accuracy, fused=conv_bn_pairs(model, example), **opts)
        return r.files, r.details
    if fmt == "onnx" and route == "ort":
        from edgemed.compress import ort_quant

        # the bundle's staging folder holds the ranges for this FP32 file; unreferenced, so not kept
        return [tmp / "model_int8.onnx"], ort_quant.quantize_onnx(fp32_file, calib, tmp / "model_int8.onnx", keep_float,
                                                                  conv_bn_pairs(model, example),
                                                                  ranges_cache=tmp / "ort_ranges.json")
    if fmt == "onnx":
        return [tmp / "model_int8.onnx"], pt2e.export_onnx(model, calib, tmp / "model_int8.onnx", keep_float)
    from edgemed.compress import tflite_int8

    path = tmp / "model_int8.tflite"
    details = tflite_int8.quantize_tflite(model, calib, path, route=route, keep_float=keep_float or None,
                                          fp32_path=fp32_file)
    return [path], {"route": route, **details, "ignored_layers": list(keep_float),
                    "calibration_images": int(len(calib))}


def _score(artifact, x, accuracy: AccuracyTarget, threads) -> tuple[float, np.ndarray]:
    from edgemed.runtime import open_session

    with quiet_native():
        s = open_session(artifact, threads=threads)
    logits = s.run(x)
    s.close()
    return accuracy.score(logits), logits


def _latency(artifacts: list, x1: np.ndarray, threads, seconds: float = 1.5) -> dict[str, float]:
    """Indicative batch-1 p50 of each artifact (interleaved), to pick the recommended one."""
    from edgemed.bench.latency import interleaved
    from edgemed.runtime import open_session

    with quiet_native():
        sessions = {a.id: open_session(a, threads=threads) for a in artifacts}
    calls = {k: (lambda s=s, p=s.prepare(x1): s.infer(p)) for k, s in sessions.items()}
    samples = interleaved(calls, warmup=5, duration=seconds / max(1, len(calls)), min_iterations=20)
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}


def quantize(checkpoint, *, calib: str | Path, formats=FORMATS, out: str | Path | None = None,
             preset: str = "performance", ignore: list[str] | None = None, max_drop: float | None = None,
             metric: str = "accuracy", routes=None, model_type: str = "auto", sensitivity: bool = False,
             data_dir: str | None = None, threads: int | None = None, calib_limit: int | None = None,
             val_limit: int | None = None, base_bundle: str | Path | None = None, force: bool = False,
             progress: bool = True, preprocess=None, classes: list[str] | None = None,
             dataset: str | None = None) -> QuantizeResult:
    """INT8-quantize a checkpoint for each format into a bundle (with FP32 references).

    With `max_drop` (points of `metric` on the validation split), layers are reverted to float
    until the drop is within the bound (NNCF's accuracy control for OpenVINO/ONNX-NNCF, our
    sensitivity-ranked loop otherwise); if it cannot be met the best model is kept, labelled.
    With `base_bundle` (an export bundle of the same checkpoint), its artifacts (FP32, FP16) are
    carried into the new bundle and its FP32 files are reused instead of exporting again.

    `checkpoint` may also be an ONNX file or bundle (`edgemed import model.onnx`: ONNX and OpenVINO
    INT8 against the ONNX reference), or an `nn.Module` in memory with `preprocess`, `classes` and
    `dataset` (exported to ONNX in a temporary folder, then the same).

    Example: `quantize("m.safetensors", calib="calibration/bloodmnist.json", max_drop=0.5, out="b/")`;
    in a notebook: `quantize(net, preprocess=PreprocessSpec((28, 28), 1, (0.5,), (0.5,)),
    classes=["normal", "pneumonia"], dataset="pneumoniamnist", calib="calibration/pneumoniamnist.json")`.
    """
    import torch

    from edgemed.checkpoint import load_checkpoint
    from edgemed.compress.calibration import load_calibration
    from edgemed.compress.scope import (
        layer_sensitivity,
        quantizable_layers,
        resolve,
        suggest_ignore,
    )
    from edgemed.export.exporter import FORMATS as EXPORTERS
    from edgemed.export.exporter import check_parity, parse_list, remove_unreferenced, start_bundle
    from edgemed.export.parity import compare, within_tolerance
    from edgemed.onnx_source import is_onnx_source, onnx_formats, quantize_onnx_source

    formats = parse_list(formats, FORMATS, "format")
    if hasattr(checkpoint, "state_dict") and hasattr(checkpoint, "forward"):  # an nn.Module in memory
        from edgemed.onnx_source import from_module

        if classes is None or dataset is None:
            raise EdgemedError("an in-memory model needs classes=[...] and dataset=NAME|PATH (its validation "
                               "and calibration data) besides preprocess=PreprocessSpec(...)")
        checkpoint = from_module(checkpoint, preprocess=preprocess, classes=classes, dataset=dataset,
                                 data_dir=data_dir)
    if is_onnx_source(checkpoint):  # an ONNX file or an imported ONNX bundle: no PyTorch model
        if ignore or sensitivity:
            raise EdgemedError("--ignore and --sensitivity name PyTorch layers, which an ONNX source does not have: "
                               "leave them out (NNCF's accuracy control picks float layers itself)")
        return quantize_onnx_source(checkpoint, calib=calib, formats=onnx_formats(formats, FORMATS), out=out,
                                    max_drop=max_drop, metric=metric, preset=preset,
                                    routes=parse_routes(routes, [f for f in formats if f != "tflite"]) if routes else None,
                                    val_limit=val_limit, calib_limit=calib_limit, data_dir=data_dir, threads=threads,
                                    force=force)
    from edgemed.metrics import check_evaluable
    from edgemed.runtime import check_threads
    from edgemed.train.loop import predict_logits

    if metric not in CONTROL_METRICS:
        raise EdgemedError(f"unknown --metric {metric!r}: use {', '.join(CONTROL_METRICS)}")
    if max_drop is not None and max_drop < 0:
        raise EdgemedError(f"--max-drop must be ≥ 0 (points of {metric}), got {max_drop}")
    if preset not in PRESETS:
        raise EdgemedError(f"unknown --preset {preset!r}: use {', '.join(PRESETS)}")
    if model_type not in ("auto", "cnn", "transformer"):
        raise EdgemedError(f"unknown --model-type {model_type!r}: use auto, cnn or transformer")
    chosen_routes = parse_routes(routes, formats)
    check_threads(threads)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    from edgemed.models import deploy_form

    ckpt, model = load_checkpoint(checkpoint)
    model = deploy_form(model)  # what the exporters export: layer names are this form's
    out = Path(out) if out else Path("bundles") / f"{Path(checkpoint).stem}_int8"
    check_output(out, force)  # exists without --force, or cannot be written: said before any work
    base = None
    if base_bundle is not None:
        from edgemed.export.bundle import load_bundle

        base = load_bundle(base_bundle)
        if base.manifest["provenance"].get("checkpoint", {}).get("sha256") != ckpt.sha256:
            raise EdgemedError(f"{base_bundle} was exported from another checkpoint than {checkpoint}")
    cal = load_calibration(calib, ckpt, data_dir=data_dir, limit=calib_limit)
    x_val, y_val = _validation(ckpt, data_dir, val_limit)
    check_evaluable(y_val, metric, ckpt.class_names)
    ref_logits = predict_logits(model, x_val)
    target = AccuracyTarget(x_val, y_val, metric, (max_drop if max_drop is not None else 1e9) / 100.0,
                            ckpt.class_names)
    target.reference = target.score(ref_logits)
    keep = resolve(model, ignore)
    mt = auto_model_type(ckpt.model_name) if model_type == "auto" else model_type
    opts = {"preset": preset, "model_type": mt}
    example = torch.from_numpy(x_val[:1])
    ranking = None
    settings = {"calibration": cal.info, "preset": preset, "model_type": mt, "routes": chosen_routes,
                "ignore": keep, "metric": metric, "max_drop_points": max_drop, "validation_images": int(len(y_val)),
                "reference_metric": target.reference, "threads": threads}
    rows = []
    with atomic_dir(out, force) as tmp, progress_bar(progress) as bar:
        if sensitivity:
            layers = quantizable_layers(model)
            task = bar.add_task("sensitivity (one layer at a time)", total=len(layers), info="")
            n = sensitivity_images(x_val)
            ranking = layer_sensitivity(model, cal.x[:n], x_val[:n], layers, progress=lambda: bar.advance(task))
        writer = start_bundle(tmp, ckpt, {"quantize": settings})
        if base is not None:
            import shutil

            for a in base.artifacts:
                if a.id == "torch-fp32":
                    continue
                for f in a.files:
                    (tmp / f["path"]).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(base.root / f["path"], tmp / f["path"])
                writer.manifest["artifacts"].append({**a.to_dict()})
        task = bar.add_task("quantize", total=len(formats), info="")
        quantizable = set(quantizable_layers(model))
        learned_float: list[str] = []  # layers NNCF's accuracy control reverted: tried first elsewhere
        for fmt in formats:
            route = chosen_routes[fmt]
            bar.update(task, description=f"{fmt}: FP32 reference")
            exporter = importlib.import_module(EXPORTERS[fmt])
            reused = None
            t_fp32 = time.perf_counter()
            try:
                reused = next((a for a in writer.manifest["artifacts"] if a["id"] == f"{fmt}-fp32"), None)
                if reused is not None:  # from the base bundle: same checkpoint, already parity-checked
                    from edgemed.export.base import ExportedFiles
                    from edgemed.export.bundle import Artifact

                    a32 = Artifact.from_dict(reused, tmp)
                    fp32 = ExportedFiles([tmp / f["path"] for f in reused["files"]], a32.input_layout,
                                         a32.static_batch, a32.details)
                else:
                    with quiet_native():
                        fp32 = exporter.export(model, example, tmp, "fp32",
                                               **({} if fmt == "tflite" else {"dynamic_batch": True}))
                    a32 = writer.add(f"{fmt}-fp32", fmt, "fp32", fp32.files, input_layout=fp32.input_layout,
                                     static_batch=fp32.static_batch, details=fp32.details)
                    p32 = check_parity(writer, a32, x_val[:128], ref_logits[:128], threads)
                    a32 = writer.add(f"{fmt}-fp32", fmt, "fp32", fp32.files, input_layout=fp32.input_layout,
                                     static_batch=fp32.static_batch, parity=p32, details=fp32.details)
                bar.update(task, description=f"{fmt}: INT8 ({route})")
                t0 = time.perf_counter()
                fp32_seconds = round(t0 - t_fp32, 1)
                if max_drop is not None and route == "nncf":
                    # NNCF's accuracy control quantizes by itself and keeps plain INT8 when that
                    # is within the bound: a separate plain pass first would be done twice
                    bar.update(task, description=f"{fmt}: INT8 with accuracy control")
                    files, details, score, logits, tried, ranking = _control(
                        fmt, route, model, example, cal, tmp, fp32.files[0], opts, keep, target, writer,
                        fp32, ranking, threads, x_val, None)
                    drop = target.reference - score
                else:
                    with quiet_native():
                        files, details = _int8(fmt, route, model, example, cal.x, tmp, fp32.files[0], opts, keep)
                    a8 = writer.add(f"{fmt}-int8", fmt, "int8", files, input_layout=fp32.input_layout,
                                    static_batch=fp32.static_batch, details=details)
                    score, logits = _score(a8, x_val, target, threads)
                    drop = target.reference - score
                    tried = [{"float_layers": list(keep), "metric": score, "drop": drop}]
                    if max_drop is not None and drop > target.max_drop:
                        bar.update(task, description=f"{fmt}: accuracy control")
                        files, details, score, logits, more, ranking = _control(
                            fmt, route, model, example, cal, tmp, fp32.files[0], opts, keep, target, writer,
                            fp32, ranking, threads, x_val, (files, details, score, logits), learned_float)
                        tried += more
                        drop = target.reference - score
                reverted = details.get("reverted_layers") or [n for n in details.get("ignored_layers", []) if n not in keep]
                if route == "nncf" and max_drop is not None and drop <= target.max_drop + 1e-12:
                    learned_float = [n for n in reverted if n in quantizable]
                met = None if max_drop is None else bool(drop <= target.max_drop + 1e-12)
                parity = compare(ref_logits, logits)
                ok, why = within_tolerance(parity, "int8")
                if not ok:
                    raise ExportError(f"{fmt} INT8 ({route}) is broken: {why}")
                details.update({"val_metric": score, "val_drop_points": 100 * drop, "bound_met": met,
                                "reverted_layers": reverted, "attempts": tried,
                                "quantize_seconds": round(time.perf_counter() - t0, 1),
                                "label": "BOUND NOT MET: best model found" if met is False else None})
                precision = "mixed" if (reverted or keep) else "int8"
                if precision == "mixed":
                    writer.manifest["artifacts"] = [a for a in writer.manifest["artifacts"] if a["id"] != f"{fmt}-int8"]
                a8 = writer.add(f"{fmt}-{precision}", fmt, precision, files, input_layout=fp32.input_layout,
                                static_batch=fp32.static_batch, parity=parity, details=details)
                rows.append({"artifact": a8.id, "format": fmt, "route": route, "metric": score,
                             "drop_points": 100 * drop, "bound_met": met, "reverted_layers": reverted,
                             "parity": parity, "size": a8.size, "fp32_size": a32.size,
                             "fp32_seconds": fp32_seconds, "int8_seconds": details["quantize_seconds"]})
                bar.console.log(f"{a8.id}: val {metric} {score:.4f} (FP32 {target.reference:.4f}, drop "
                                f"{100 * drop:+.2f} pt)" + ("" if met is None else "  bound met" if met else "  [red]BOUND NOT MET"))
            except EdgemedError:
                raise
            except Exception as e:
                message = describe_failure(f"{fmt} INT8 ({route})", e)
                created = {f"{fmt}-int8", f"{fmt}-mixed"} | (set() if reused else {f"{fmt}-fp32"})
                writer.manifest["artifacts"] = [a for a in writer.manifest["artifacts"] if a["id"] not in created]
                writer.fail(fmt, "int8", message)
                bar.console.log(f"[red]{message}")
            bar.advance(task)
        if not rows:
            raise ExportError("no format was quantized: " + "; ".join(f["error"] for f in writer.manifest["failed"]))
        candidates = [r for r in rows if r["bound_met"] is not False]
        recommended = None
        if candidates:
            from edgemed.export.bundle import Artifact

            arts = [Artifact.from_dict(a, tmp) for a in writer.manifest["artifacts"]
                    if a["id"] in {r["artifact"] for r in candidates}]
            lat = _latency(arts, x_val[:1], threads)
            for r in rows:
                r["p50_ms_indicative"] = lat.get(r["artifact"])
            recommended = min(lat, key=lat.get)
        else:
            recommended = min(rows, key=lambda r: r["drop_points"])["artifact"]
        suggestion = suggest_ignore(ranking) if ranking else []
        writer.set("recommended", recommended)
        writer.set("quantization", {**settings, "results": rows, "recommended": recommended,
                                    "sensitivity": ranking[:20] if ranking else None,
                                    "suggested_ignore": suggestion})
        remove_unreferenced(tmp, writer)
        writer.write()
    return QuantizeResult(out, rows, recommended, {"metric": metric, "value": target.reference},
                          ranking, suggestion)


def _control(fmt, route, model, example, cal, tmp, fp32_file, opts, keep, target, writer, fp32,
             ranking, threads, x_val, first, learned: list[str] | None = None):
    """Bring the drop within the bound: NNCF's accuracy control for the NNCF routes; otherwise
    first the layers NNCF's accuracy control reverted for another format (`learned`), then the
    most sensitive layers in float, 1, 2, 4, … at a time, keeping the best model.
    Returns (files, details, score, logits, attempts, ranking)."""
    from edgemed.compress.scope import layer_sensitivity, quantizable_layers

    def build(float_layers, accuracy=None):
        with quiet_native():
            files, details = _int8(fmt, route, model, example, cal.x, tmp, fp32_file, opts, float_layers, accuracy)
        a = writer.add(f"{fmt}-int8", fmt, "int8", files, input_layout=fp32.input_layout,
                       static_batch=fp32.static_batch, details=details)
        score, logits = _score(a, x_val, target, threads)
        return files, details, score, logits

    if route == "nncf":
        files, details, score, logits = build(keep, target)
        attempt = {"float_layers": details.get("reverted_layers", []), "metric": score,
                   "drop": target.reference - score, "by": "nncf.quantize_with_accuracy_control"}
        return files, details, score, logits, [attempt], ranking
    attempts = []
    best_layers, best = list(keep), first
    on_disk = list(keep)  # which float layers the INT8 file written last has
    learned = [layer for layer in learned or [] if layer not in keep]
    if learned:  # one build instead of a sensitivity pass and several builds, when it suffices
        result, on_disk = build(keep + learned), keep + learned
        attempts.append({"float_layers": keep + learned, "metric": result[2], "drop": target.reference - result[2],
                         "by": "layers NNCF's accuracy control reverted for another format"})
        if result[2] > best[2]:
            best, best_layers = result, keep + learned
        if target.reference - result[2] <= target.max_drop:
            files, details, score, logits = result
            details = {**details, "reverted_layers": learned}
            return files, details, score, logits, attempts, ranking
    if ranking is None:
        n = sensitivity_images(x_val)
        ranking = layer_sensitivity(model, cal.x[:n], x_val[:n])
    quantized = quantizable_layers(model)
    if fmt == "tflite":  # TFLite routes leave some layer types float anyway: rank only the others
        from edgemed.compress.tflite_int8 import quantizable_layers as route_layers

        quantized = route_layers(model, route)
    order = [r["layer"] for r in ranking if r["layer"] not in keep and r["layer"] in set(quantized)]
    limit = min(len(order), max(1, int(MAX_REVERT_FRACTION * len(quantized))))
    k = 1
    while k <= limit:
        last_layers = keep + order[:k]
        result, on_disk = build(last_layers), last_layers
        attempts.append({"float_layers": last_layers, "metric": result[2], "drop": target.reference - result[2],
                         "by": "sensitivity-ranked revert"})
        if result[2] > best[2]:
            best, best_layers = result, last_layers
        if target.reference - result[2] <= target.max_drop:
            break
        k *= 2
    if on_disk != best_layers:  # later attempts overwrote the file: rebuild the best one
        best = build(best_layers)
    files, details, score, logits = best
    details = {**details, "reverted_layers": [layer for layer in best_layers if layer not in keep]}
    return files, details, score, logits, attempts, ranking
