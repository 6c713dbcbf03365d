"""`edgemed quantize`: INT8 artifacts (plus FP32 references) for every format with INT8 routes
(edgemed/formats.py) in one bundle, with accuracy control against a bound on the validation split
(never test), a per-layer sensitivity report, and the fastest artifact within the bound marked
as recommended (with a note where the CI of its drop is not within the bound)."""

from __future__ import annotations

import importlib
import os
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemed.bounds import check_max_drop, meets_bound
from edgemed.compress.accuracy_control import (
    PRESETS,
    AccuracyTarget,
    revert_limit,
    revert_until_within,
)
from edgemed.compress.int8 import Int8Job, own_accuracy_control, route_layers, routes_of, run_route
from edgemed.errors import EdgemedError, ExportError
from edgemed.export.base import describe_failure
from edgemed.fileio import atomic_dir, check_output, quiet_native
from edgemed.formats import FORMATS as TABLE
from edgemed.formats import QUANTIZABLE, QUANTIZE_DEFAULT
from edgemed.progress import progress_bar

FORMATS = QUANTIZE_DEFAULT
CONTROL_METRICS = ("accuracy", "auc", "sensitivity", "balanced_accuracy")
SLOWER = 1.05  # an INT8 build is called slower than its FP32 past this ratio of short indicative timings


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
    note: str | None = None  # on the recommendation (recommend); says BUNDLE where the manifest's copy travels
    # validation logits of each INT8 row's artifact, and of the FP32 model under "reference":
    # optimize scores every candidate's drop against one reference with them (not in the manifest)
    val_logits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def local_note(self) -> str | None:
        """The note with this bundle's path in place of BUNDLE: what the terminal and --json show."""
        return fill_bundle(self.note, self.bundle)


def parse_routes(routes: dict | str | None, formats: list[str]) -> dict[str, str]:
    """`{"onnx": "pt2e"}` or "onnx=pt2e,tflite=conv_fc" → a route for every format (the table's
    first route where none is given)."""
    if isinstance(routes, str):
        pairs = [r.split("=", 1) for r in routes.split(",") if r.strip()]
        if any(len(p) != 2 for p in pairs):
            raise EdgemedError(f"--routes must look like onnx=pt2e,tflite=conv_fc; got {routes!r}")
        routes = {k.strip(): v.strip() for k, v in pairs}
    routes = dict(routes or {})
    for fmt, route in routes.items():
        if fmt not in QUANTIZABLE:
            raise EdgemedError(f"--routes names unknown format {fmt!r}: use {', '.join(QUANTIZABLE)}")
        if route not in routes_of(fmt):
            raise EdgemedError(f"unknown {fmt} route {route!r}: use {', '.join(routes_of(fmt))}")
    extra = [f for f in routes if f not in formats]
    if extra:
        raise EdgemedError(f"routes given for formats not being quantized: {', '.join(extra)}")
    return {fmt: routes.get(fmt, routes_of(fmt)[0]) for fmt in formats}


def auto_model_type(model_name: str) -> str:
    """NNCF's transformer model type for LayerNorm/GELU-heavy ConvNeXt blocks (NNCF's advice);
    CNNs with BatchNorm use the default. On convnext_med_28 both gave the same accuracy and speed
    (benchmarks/quantize_routes.py)."""
    return "transformer" if model_name.startswith("convnext_med") else "cnn"


_HELD: dict | None = None  # per process, once `hold_inputs()` has been called (optimize's workers)
_KEEP = {"weights": 4, "calibration": 1, "validation": 1}  # variants alternate; arrays can be large at 224²


def hold_inputs() -> None:
    """From now on this process reads each checkpoint's weights, calibration set and validation
    split once, however many candidates it quantizes (an optimize worker). Off elsewhere, so a
    one-shot quantize or a notebook holds nothing after it returns."""
    global _HELD
    if _HELD is None:
        _HELD = {}


def _held(kind: str, key, make):
    """`make()`, or what it gave for `key` before in this process while inputs are held."""
    if _HELD is None:
        return make()
    entries = _HELD.setdefault(kind, {})
    if key not in entries:
        while len(entries) >= _KEEP[kind]:
            entries.pop(next(iter(entries)))  # the oldest first, before building the new one
        entries[key] = make()
    return entries[key]


def _file_key(path) -> tuple:
    """A file named by its place and its current size and time: a rewritten file is read again."""
    p = Path(path).resolve()
    st = p.stat()
    return str(p), st.st_size, st.st_mtime_ns


def _model(checkpoint):
    """(checkpoint, a fresh model): the weights may be held, the model is built every time (the
    trust gate of a user factory runs every time, and routes may change the model they get)."""
    from edgemed.checkpoint import build_model, read_checkpoint, read_weights

    ckpt = read_checkpoint(checkpoint)
    tensors = _held("weights", _file_key(ckpt.path), lambda: read_weights(ckpt))
    return ckpt, build_model(ckpt, tensors)


def _calibration(calib, ckpt, data_dir, limit):
    """The calibration set; a manifest or array file may be held (a folder of images is read
    every time: its files can change without the folder's size or time changing)."""
    import json

    from edgemed.compress.calibration import load_calibration

    def load():
        return load_calibration(calib, ckpt, data_dir=data_dir, limit=limit)

    if Path(calib).suffix not in (".json", ".npy") or not Path(calib).is_file():
        return load()
    # the model's data set and preprocessing are in the key: the manifest's checks against the
    # model (same data set, same data file) held for the model that first loaded it
    key = (_file_key(calib), json.dumps(ckpt.dataset, sort_keys=True, default=str),
           json.dumps(ckpt.preprocess.to_dict(), sort_keys=True), data_dir, limit)
    return _held("calibration", key, load)


def _validation(ckpt, data_dir, limit):
    """The validation split, preprocessed; held per data file (by its sha256), preprocessing and
    limit while inputs are held."""
    import json

    from edgemed.data.datasets import prepare_split

    ds = ckpt.open_dataset(data_dir)

    def prepare():
        x_u8, y = prepare_split(ds, "val", ckpt.preprocess, limit)
        return ckpt.preprocess.normalize(x_u8), y

    return _held("validation", (ds.sha256, json.dumps(ckpt.preprocess.to_dict(), sort_keys=True), limit), prepare)


def _int8(fmt, route, model, example, calib, tmp: Path, fp32_file: Path, opts: dict, keep_float: list[str],
          accuracy: AccuracyTarget | None = None):
    """Quantize one format through its route (edgemed/compress/int8.py); returns (files, details)."""
    r = run_route(Int8Job(fmt, route, model, example, calib, tmp, fp32_file, list(keep_float), accuracy, **opts))
    return r.files, r.details


def _score(artifact, x, accuracy: AccuracyTarget, threads) -> tuple[float, np.ndarray]:
    from edgemed.runtime import open_session

    with quiet_native():
        s = open_session(artifact, threads=threads)
    logits = s.run(x)
    s.close()
    return accuracy.score(logits), logits


def _latency(artifacts: list, x1: np.ndarray, threads, seconds: float = 1.5) -> dict[str, float]:
    """Indicative batch-1 p50 of each artifact (interleaved), to pick the recommended one."""
    from edgemed.bench.latency import median_ms, time_artifacts

    return median_ms(time_artifacts({a.id: a for a in artifacts}, x1, threads=threads, warmup=5,
                                    duration=seconds / max(1, len(artifacts)), min_iterations=20))


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

    from edgemed.compress.scope import (
        layer_sensitivity,
        quantizable_layers,
        resolve,
        suggest_ignore,
    )
    from edgemed.export.exporter import check_parity, parse_list, remove_unreferenced, start_bundle
    from edgemed.export.parity import compare, within_tolerance
    from edgemed.onnx_source import is_onnx_source, onnx_formats, quantize_onnx_source

    check_max_drop(max_drop)
    formats = parse_list(formats, QUANTIZABLE, "format")
    if hasattr(checkpoint, "state_dict") and hasattr(checkpoint, "forward"):  # an nn.Module in memory
        from edgemed.onnx_source import from_module

        if classes is None or dataset is None:
            raise EdgemedError("an in-memory model needs classes=[...] and dataset=NAME|PATH (its validation "
                               "and calibration data) besides preprocess=PreprocessSpec(...)")
        checkpoint = from_module(checkpoint, preprocess=preprocess, classes=classes, dataset=dataset,
                                 data_dir=data_dir)
    if is_onnx_source(checkpoint):  # an ONNX file or an imported ONNX bundle: no PyTorch model
        if base_bundle is not None:
            raise EdgemedError("--base-bundle adds an `edgemed export` bundle of a PyTorch checkpoint; an ONNX source "
                               "already carries its ONNX model: leave it out")
        if ignore or sensitivity:
            raise EdgemedError("--ignore and --sensitivity name PyTorch layers, which an ONNX source does not have: "
                               "leave them out (NNCF's accuracy control picks float layers itself)")
        onnx_kept = onnx_formats(formats, QUANTIZE_DEFAULT)
        return quantize_onnx_source(checkpoint, calib=calib, formats=onnx_kept, out=out,
                                    max_drop=max_drop, metric=metric, preset=preset,
                                    routes=parse_routes(routes, onnx_kept) if routes else None,
                                    val_limit=val_limit, calib_limit=calib_limit, data_dir=data_dir, threads=threads,
                                    force=force)
    from edgemed.metrics import check_evaluable
    from edgemed.runtime import check_threads
    from edgemed.train.loop import predict_logits

    if metric not in CONTROL_METRICS:
        raise EdgemedError(f"unknown --metric {metric!r}: use {', '.join(CONTROL_METRICS)}")
    if preset not in PRESETS:
        raise EdgemedError(f"unknown --preset {preset!r}: use {', '.join(PRESETS)}")
    if model_type not in ("auto", "cnn", "transformer"):
        raise EdgemedError(f"unknown --model-type {model_type!r}: use auto, cnn or transformer")
    chosen_routes = parse_routes(routes, formats)
    check_threads(threads)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    from edgemed.models import deploy_form

    ckpt, model = _model(checkpoint)
    model = deploy_form(model)  # what the exporters export: layer names are this form's
    out = Path(out) if out else Path("bundles") / f"{Path(checkpoint).stem}_int8"
    check_output(out, force)  # exists without --force, or cannot be written: said before any work
    base = None
    if base_bundle is not None:
        from edgemed.export.bundle import load_bundle

        base = load_bundle(base_bundle)
        if base.manifest["provenance"].get("checkpoint", {}).get("sha256") != ckpt.sha256:
            raise EdgemedError(f"{base_bundle} was exported from another checkpoint than {checkpoint}")
    cal = _calibration(calib, ckpt, data_dir, calib_limit)
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
    rows, val_logits = [], {}
    with atomic_dir(out, force) as tmp, progress_bar(progress) as bar:
        if sensitivity:
            layers = quantizable_layers(model)
            task = bar.add_task("sensitivity (one layer at a time)", total=len(layers), info="")
            n = sensitivity_images(x_val)
            ranking = layer_sensitivity(model, cal.x[:n], x_val[:n], layers, progress=lambda: bar.advance(task))
        writer = start_bundle(tmp, ckpt, {"quantize": settings}, model, example)
        if base is not None:
            for a in base.artifacts:
                if a.id != "torch-fp32":
                    writer.copy_from(base, a)
        task = bar.add_task("quantize", total=len(formats), info="")
        quantizable = set(quantizable_layers(model))
        learned_float: list[str] = []  # layers NNCF's accuracy control reverted: tried first elsewhere
        for fmt in formats:
            route = chosen_routes[fmt]
            bar.update(task, description=f"{fmt}: FP32 reference")
            exporter = importlib.import_module(TABLE[fmt].exporter)
            reused, fp32_ok = None, False
            t_fp32 = time.perf_counter()
            try:
                reused = writer.get(f"{fmt}-fp32")
                if reused is not None:  # from the base bundle: same checkpoint, already parity-checked
                    from edgemed.export.base import ExportedFiles

                    a32, fp32_ok = reused, True
                    fp32 = ExportedFiles([tmp / f["path"] for f in a32.files], a32.input_layout,
                                         a32.static_batch, a32.details)
                else:
                    with quiet_native():
                        fp32 = exporter.export(model, example, tmp, "fp32")
                    a32 = writer.add(f"{fmt}-fp32", fmt, "fp32", fp32.files, input_layout=fp32.input_layout,
                                     static_batch=fp32.static_batch, details=fp32.details)
                    p32 = check_parity(writer, a32, x_val[:128], ref_logits[:128], threads)
                    a32 = writer.add(f"{fmt}-fp32", fmt, "fp32", fp32.files, input_layout=fp32.input_layout,
                                     static_batch=fp32.static_batch, parity=p32, details=fp32.details)
                    fp32_ok = within_tolerance(p32, "fp32")[0]
                bar.update(task, description=f"{fmt}: INT8 ({route})")
                t0 = time.perf_counter()
                fp32_seconds = round(t0 - t_fp32, 1)
                if max_drop is not None and own_accuracy_control(fmt, route):
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
                    if max_drop is not None and not meets_bound(100 * drop, max_drop):
                        bar.update(task, description=f"{fmt}: accuracy control")
                        files, details, score, logits, more, ranking = _control(
                            fmt, route, model, example, cal, tmp, fp32.files[0], opts, keep, target, writer,
                            fp32, ranking, threads, x_val, (files, details, score, logits), learned_float)
                        tried += more
                        drop = target.reference - score
                reverted = details.get("reverted_layers") or [n for n in details.get("ignored_layers", []) if n not in keep]
                met = None if max_drop is None else meets_bound(100 * drop, max_drop)
                if own_accuracy_control(fmt, route) and met:
                    learned_float = [n for n in reverted if n in quantizable]
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
                    writer.remove(f"{fmt}-int8")
                a8 = writer.add(f"{fmt}-{precision}", fmt, precision, files, input_layout=fp32.input_layout,
                                static_batch=fp32.static_batch, parity=parity, details=details)
                val_logits[a8.id] = logits
                rows.append({"artifact": a8.id, "format": fmt, "route": route, "metric": score,
                             "drop_points": 100 * drop, **validation_change(target, ref_logits, logits),
                             "bound_met": met, "reverted_layers": reverted,
                             "parity": parity, "size": a8.size, "fp32_size": a32.size,
                             "fp32_seconds": fp32_seconds, "int8_seconds": details["quantize_seconds"]})
                bar.console.log(f"{a8.id}: val {metric} {score:.4f} (FP32 {target.reference:.4f}, drop "
                                f"{100 * drop:+.2f} pt)" + ("" if met is None else "  bound met" if met else "  [red]BOUND NOT MET"))
            except EdgemedError:
                raise
            except Exception as e:
                message = describe_failure(f"{fmt} INT8 ({route})", e)
                # an FP32 reference that exported and passed parity stays: only the INT8 failed
                writer.remove(*({f"{fmt}-int8", f"{fmt}-mixed"} | (set() if fp32_ok else {f"{fmt}-fp32"})))
                writer.fail(fmt, "int8", message)
                bar.console.log(f"[red]{message}")
            bar.advance(task)
        if not rows:
            raise ExportError("no format was quantized: " + "; ".join(f["error"] for f in writer.failures))
        recommended, note = recommend(rows, writer, x_val[:1], threads, max_drop, len(y_val))
        suggestion = suggest_ignore(ranking) if ranking else []
        writer.set("quantization", {**settings, "results": rows, "recommended": recommended, "note": note,
                                    "sensitivity": ranking[:20] if ranking else None,
                                    "suggested_ignore": suggestion})
        remove_unreferenced(tmp, writer)
        writer.write()
    return QuantizeResult(out, rows, recommended, {"metric": metric, "value": target.reference},
                          ranking, suggestion, note, {**val_logits, "reference": ref_logits})


def validation_change(target: AccuracyTarget, ref_logits: np.ndarray, logits: np.ndarray) -> dict:
    """The row fields that say how sure the validation drop is: its paired-bootstrap 95 % CI in
    points (same resamples for FP32 and INT8) and the images whose predicted class changed."""
    return drop_change(target.y, target.metric, ref_logits, logits)


def drop_change(y: np.ndarray, metric: str, ref_logits: np.ndarray, logits: np.ndarray) -> dict:
    """`drop_ci_points` and `flips` of `logits` against `ref_logits` on the same images (quantize's
    rows, and optimize's points against its one reference)."""
    from edgemed.metrics import paired_difference, softmax

    # fewer resamples on large splits, where the CI is narrow anyway: an AUC resample of 10,000
    # images costs ~20 ms, and optimize scores every candidate
    n_boot = max(200, min(1000, 2_000_000 // max(1, len(y))))
    d = paired_difference(y, softmax(ref_logits), softmax(logits), metric, n_boot=n_boot)
    ci = d["ci"] and [0.0 - 100 * d["ci"][1], 0.0 - 100 * d["ci"][0]]  # a drop is the difference negated
    return {"drop_ci_points": ci, "flips": d["flips"]}


def fill_bundle(note: str | None, bundle: Path) -> str | None:
    """A note as the terminal shows it: BUNDLE (what the manifest's copy says, as it travels)
    replaced by the bundle's path, quoted so a command in it runs as printed."""
    return note and note.replace("BUNDLE", shlex.quote(str(bundle)))


def uncertain_bound_note(name: str, row: dict, max_drop: float, n: int, alternative: str) -> str:
    """The note on a recommendation whose drop meets the bound but whose drop CI does not (quantize
    and optimize): `alternative` names a build whose CI stays within it, or is empty."""
    return (f"{name} meets the {max_drop:g} pt bound on {n} validation images (drop {row['drop_points']:+.2f} "
            f"pt, {row['flips']} image(s) changed class), but the 95 % CI of its drop reaches "
            f"{row['drop_ci_points'][1]:+.2f} pt{alternative}: measure the drop on held-out images with "
            "`edgemed bench BUNDLE --split test` before deploying.")


def ci_within(row: dict, max_drop: float) -> bool:
    """Whether the upper end of the row's drop CI meets the bound (False where there is no CI)."""
    ci = row.get("drop_ci_points")
    return bool(ci) and meets_bound(ci[1], max_drop)


def recommend(rows: list[dict], writer, x1: np.ndarray, threads, max_drop: float | None,
              n: int) -> tuple[str, str | None]:
    """The recommended artifact, marked in the bundle: the fastest within the bound (indicative
    batch-1 p50, timed beside each format's FP32 reference and written into the rows), else the
    one with the smallest drop; and a note (or None) where its drop meets the bound on the
    validation images but the 95 % CI of the drop does not, or where it is slower than its FP32.

    The note, not the choice, carries the uncertainty: the user asked for speed within a bound,
    and on a small split any changed image puts the CI past it (one image of 248 is 0.40 pt), but
    they should know, and which build's CI does stay within it (seed B on Intel AMX: OpenVINO,
    recommended at +0.40 pt, lost 0.60 pt on test; LiteRT, with no changed image, lost none)."""
    candidates = [r for r in rows if r["bound_met"] is not False]
    if not candidates:
        best = min(rows, key=lambda r: r["drop_points"])["artifact"]
        writer.recommend(best)
        return best, None
    fp32 = {r["artifact"]: f"{r['format']}-fp32" for r in candidates}
    lat = _latency(writer.artifacts({r["artifact"] for r in candidates} | set(fp32.values())), x1, threads)
    for r in rows:
        r["p50_ms_indicative"] = lat.get(r["artifact"])
        r["fp32_p50_ms_indicative"] = lat.get(f"{r['format']}-fp32") if r["artifact"] in fp32 else None
    candidates.sort(key=lambda r: lat[r["artifact"]])
    best = candidates[0]
    writer.recommend(best["artifact"])
    notes = []
    if max_drop is not None and best.get("drop_ci_points") and not ci_within(best, max_drop):
        firm = [r for r in candidates if ci_within(r, max_drop)]
        other = (f"; {firm[0]['artifact']}'s stays within it ({lat[firm[0]['artifact']]:.2f} vs "
                 f"{lat[best['artifact']]:.2f} ms; `edgemed predict BUNDLE IMAGES --artifact {firm[0]['artifact']}`)"
                 ) if firm else ""
        # BUNDLE, not this bundle's path: the note goes into the manifest and card, which travel
        notes.append(uncertain_bound_note(best["artifact"], best, max_drop, n, other))
    ref = best["fp32_p50_ms_indicative"]
    if ref is not None and ref * SLOWER < lat[best["artifact"]]:  # INT8 kernels can lose to FP32 ones (depth-wise convs)
        notes.append(f"{best['artifact']} is the fastest INT8 build here but slower than {fp32[best['artifact']]} "
                     f"({lat[best['artifact']]:.2f} vs {ref:.2f} ms): for speed, deploy the FP32 build.")
    return best["artifact"], " ".join(notes) or None


def _control(fmt, route, model, example, cal, tmp, fp32_file, opts, keep, target, writer, fp32,
             ranking, threads, x_val, first, learned: list[str] | None = None):
    """Bring the drop within the bound: the route's own accuracy control where it has one (NNCF);
    otherwise the shared search (accuracy_control.revert_until_within) over builds of this route.
    Returns (files, details, score, logits, attempts, ranking)."""
    from edgemed.compress.scope import layer_sensitivity

    def build(float_layers, accuracy=None):
        with quiet_native():
            files, details = _int8(fmt, route, model, example, cal.x, tmp, fp32_file, opts, float_layers, accuracy)
        a = writer.add(f"{fmt}-int8", fmt, "int8", files, input_layout=fp32.input_layout,
                       static_batch=fp32.static_batch, details=details)
        score, logits = _score(a, x_val, target, threads)
        return files, details, score, logits

    if own_accuracy_control(fmt, route):
        files, details, score, logits = build(keep, target)
        attempt = {"float_layers": details.get("reverted_layers", []), "metric": score,
                   "drop": target.reference - score, "by": "nncf.quantize_with_accuracy_control"}
        return files, details, score, logits, [attempt], ranking

    def ranked():
        nonlocal ranking
        if ranking is None:
            n = sensitivity_images(x_val)
            ranking = layer_sensitivity(model, cal.x[:n], x_val[:n])
        quantized = set(route_layers(fmt, route, model))
        return [r["layer"] for r in ranking if r["layer"] in quantized], revert_limit(len(quantized))

    def scored(float_layers):
        files, details, score, logits = build(float_layers)
        return score, (files, details, logits)

    found = revert_until_within(scored, keep=list(keep), first=(first[2], (first[0], first[1], first[3])),
                                reference=target.reference, max_drop=target.max_drop, ranked=ranked,
                                learned=learned)
    files, details, logits = found.result
    details = {**details, "reverted_layers": [layer for layer in found.float_layers if layer not in keep]}
    return files, details, found.score, logits, found.attempts, ranking

