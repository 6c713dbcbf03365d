"""`edgemed bench`: latency, throughput, memory and accuracy of a bundle's artifacts, measured the
way MLPerf / benchmark_app do (warm-up excluded, fixed duration or count, percentiles), with
artifacts interleaved in one process and the machine recorded. Works without torch."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgemed.bench.latency import MIN_QUERIES, LatencyStats, stability, time_sessions
from edgemed.bench.load import load_between, snapshot
from edgemed.bench.system import system_info
from edgemed.errors import EdgemedError, RuntimeUnavailable
from edgemed.export.bundle import Artifact, Bundle, load_bundle
from edgemed.fileio import atomic_write_json, check_output, quiet_native
from edgemed.progress import console, progress_bar
from edgemed.report.schema import SCHEMA, SCHEMA_VERSION

DEFAULT_LARGE_BATCH = 16


@dataclass
class Target:
    """One measured configuration: an artifact on a runtime."""

    artifact: Artifact
    runtime: str

    @property
    def name(self) -> str:
        from edgemed.runtime import runtimes_for

        default = runtimes_for(self.artifact.format)[0]
        return self.artifact.id if self.runtime == default else f"{self.artifact.id}@{self.runtime}"


def torch_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # an import hook that refuses torch (a locked-down device image)
        return False


def plan_targets(bundle: Bundle, artifacts: list[str] | None, runtimes: list[str] | None,
                 device: str, skipped: list[dict] | None = None) -> list[Target]:
    """Which (artifact, runtime) pairs to measure. Without --runtime each artifact runs on its
    format's default runtime; with it, on each named runtime that can take its format.
    Without --artifacts, an artifact whose runtime (or device) this machine lacks is left out and
    listed in `skipped` with the reason (a Raspberry Pi with the runtime-only install benches what
    it can run); it is an error only when nothing can run, or when --artifacts named it."""
    from edgemed.formats import install_hint as missing_runtime_hint
    from edgemed.runtime import available_devices, runtimes_for

    chosen = bundle.select(ids=artifacts) if artifacts else list(bundle.artifacts)
    if not artifacts and not torch_available():
        chosen = [a for a in chosen if a.format != "torch"]
    targets = []
    for a in chosen:
        options = runtimes_for(a.format)
        wanted = [r for r in (runtimes or options[:1]) if r in options]
        if artifacts and runtimes and not wanted:
            raise EdgemedError(f"none of the runtimes {', '.join(runtimes)} can run {a.id} ({a.format}): add one of "
                               f"{', '.join(options)} to --runtime, or leave {a.id} out of --artifacts")
        targets += [Target(a, r) for r in wanted]
    if not targets:
        raise EdgemedError("nothing to measure: no artifact matches the chosen runtimes; pick runtimes that run "
                           "the bundle's formats (see `edgemed bundle inspect BUNDLE`) or leave --runtime out")
    usable, problems = [], []
    for t in targets:
        devices = available_devices(t.runtime)
        if not devices:
            problems.append(RuntimeUnavailable(f"runtime {t.runtime} is not installed here (needed for {t.artifact.id}): "
                                               f"{missing_runtime_hint(t.runtime)}, or leave it out with --artifacts"))
        elif device.lower() not in devices and not (device.lower() == "gpu" and "cuda" in devices):
            problems.append(RuntimeUnavailable(f"device {device!r} is not available to {t.runtime} here: "
                                               f"available devices are {', '.join(devices)}"))
        else:
            usable.append(t)
            continue
        if artifacts or skipped is None:  # asked for by name: say why it cannot run
            raise problems[-1]
        skipped.append({"artifact": t.artifact.id, "runtime": t.runtime, "reason": str(problems[-1])[:1000]})
    if not usable:
        raise problems[0]
    return usable


def pick_baseline(targets: list[Target], baseline: str | None) -> Target:
    if baseline:
        for t in targets:
            if baseline in (t.name, t.artifact.id):
                return t
        raise EdgemedError(f"baseline {baseline!r} is not among the measured artifacts: {', '.join(t.name for t in targets)}")
    for t in targets:
        if t.artifact.format == "torch":
            return t  # PyTorch FP32 eager where torch is present
    for t in targets:
        if t.artifact.precision == "fp32":
            return t
    return targets[0]


def probe(bundle: Bundle, target: Target, device: str, threads: int | None, batch: int,
          iterations: int = 20) -> dict:
    """Load time, first inference and peak RSS, measured cold in a fresh subprocess."""
    cmd = [sys.executable, "-m", "edgemed.bench.probe", str(bundle.root), target.artifact.id, target.runtime,
           device, str(threads or 0), str(batch), str(iterations)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["probe failed"])[-1][:300]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def pre_post_ms(session, spec, images: list[np.ndarray], raw_output: np.ndarray) -> tuple[float, float]:
    """Per-image preprocessing (convert/resize, normalise, layout/quantize) and postprocessing
    (dequantize, softmax) times, measured on real images apart from the model call."""
    from edgemed.metrics import softmax

    t = time.perf_counter()
    for img in images:
        session.prepare(spec.normalize(spec.fit(img[None])))
    pre = (time.perf_counter() - t) / max(1, len(images)) * 1e3
    t = time.perf_counter()
    reps = 50
    for _ in range(reps):
        softmax(session.finish(raw_output))
    post = (time.perf_counter() - t) / reps * 1e3
    return pre, post


def bench(bundle_path: str | Path, *, artifacts: list[str] | None = None, runtimes: list[str] | None = None,
          device: str = "cpu", threads: int | None = None, batch: int = 1, large_batch: int | None = DEFAULT_LARGE_BATCH,
          duration: float | None = None, iterations: int | None = None, warmup: int = 10,
          dataset: str | None = None, split: str = "test", accuracy: bool = True, limit: int | None = None,
          data_dir: str | None = None, baseline: str | None = None, memory: bool = True,
          n_boot: int = 1000, out: str | Path | None = None, force: bool = False,
          progress: bool = True, threshold: float | None = None,
          target_sensitivity: float | None = None, peak: bool = True, gallery_images: bool = True) -> dict:
    """Measure a bundle's artifacts; returns (and with `out`, writes) a results object that
    follows the versioned schema in edgemed/report/results.schema.json.

    Example: `bench("bundle/", threads=2, duration=10, out="results.json")`.
    """
    from edgemed.metrics import softmax  # noqa: F401  (import cost outside the timed loops)
    from edgemed.runtime import check_threads, open_session

    if out is not None:
        check_output(out, force)
    if batch < 1:
        raise EdgemedError(f"--batch must be ≥ 1, got {batch}")
    check_threads(threads)
    if threshold is not None and target_sensitivity is not None:
        raise EdgemedError("give --threshold or --target-sensitivity, not both: each fixes the operating point")
    if threshold is not None and not 0 < threshold < 1:
        raise EdgemedError(f"--threshold is a probability of the positive class, in (0, 1); got {threshold}")
    if target_sensitivity is not None and not 0 < target_sensitivity <= 1:
        raise EdgemedError(f"--target-sensitivity must be in (0, 1], got {target_sensitivity}")
    if iterations is not None and iterations < 1:
        raise EdgemedError(f"--iterations must be ≥ 1, got {iterations}")
    if warmup < 0:
        raise EdgemedError(f"--warmup must be ≥ 0, got {warmup}")
    if limit is not None and limit < 1:
        raise EdgemedError(f"--limit must be ≥ 1 image, got {limit}")
    if duration is None and iterations is None:
        duration = 10.0
    if duration is not None and duration <= 0:
        raise EdgemedError(f"--duration must be > 0 seconds, got {duration}")
    if Path(bundle_path).suffix.lower() == ".onnx":  # a bare ONNX file: imported into a temporary bundle
        from edgemed.onnx_source import open_source

        bundle_path = open_source(bundle_path).bundle.root
    bundle = load_bundle(bundle_path)
    if (threshold is not None or target_sensitivity is not None) and len(bundle.class_names) != 2:
        raise EdgemedError(f"--threshold and --target-sensitivity set the positive class's operating point of a "
                           f"two-class model; this bundle has {len(bundle.class_names)} classes: leave them out")
    skipped: list[dict] = []
    targets = plan_targets(bundle, artifacts, runtimes, device, skipped)
    for s in skipped:
        console.print(f"[yellow]skipped {s['artifact']}: {s['reason']}", soft_wrap=True)
    for t in targets:
        sb = t.artifact.static_batch
        if sb is not None and batch != sb:
            raise EdgemedError(f"{t.artifact.id} has a static batch of {sb}: it cannot take --batch {batch} "
                               f"(bench it with --batch {sb}, or leave it out with --artifacts)")
    base = pick_baseline(targets, baseline)
    spec = bundle.preprocess
    sessions = {}
    with quiet_native():
        for t in targets:
            sessions[t.name] = open_session(t.artifact, device=device, threads=threads, runtime=t.runtime)
    labels = fitted = split_info = None
    positions: list[int] = []  # each evaluated image's index in the whole split (--limit takes a subset)
    if accuracy:
        from edgemed.bench.accuracy import load_split, open_dataset

        try:
            ds = open_dataset(bundle, dataset, data_dir)
        except EdgemedError:
            if dataset:  # asked for explicitly: a missing data set is an error
                raise
            ds = None
            console.print("[yellow]warning: the bundle's data set is not available here; accuracy skipped "
                          "(pass --dataset and --data-dir to measure it)")
        if ds is not None:  # a split the data set lacks is always an error
            fitted, labels, split_info = load_split(bundle, ds, split, limit=limit, positions=positions)
    rng = np.random.default_rng(0)
    sample = fitted[rng.integers(0, len(fitted), batch)] if fitted is not None else \
        np.full((batch, *spec.size, spec.channels), 128, np.uint8)
    x = spec.normalize(sample)
    rows = {}
    with progress_bar(progress) as bar:
        # by calls with --iterations; by seconds with --duration (a count with no total shows "616/?")
        total = iterations if iterations is not None else round(duration * len(sessions))
        task = bar.add_task(f"latency ({len(targets)} interleaved, batch {batch})", total=total,
                            info="" if iterations is not None else "s measured")
        t_start = time.perf_counter()

        def on_round(r):
            done = r if iterations is not None else min(total, round(time.perf_counter() - t_start))
            bar.update(task, completed=done)

        before = snapshot()
        # MLPerf's habit: a duration and a minimum count of timed calls per row, whichever is later
        samples = time_sessions(sessions, x, warmup=warmup, iterations=iterations, duration=duration,
                                min_iterations=MIN_QUERIES, on_round=on_round)
        load = load_between(before, snapshot())
        large = {}
        if large_batch and large_batch > batch:
            dyn = {n: s for n, s in sessions.items() if s.static_batch is None}
            if dyn:
                xl = spec.normalize(np.resize(sample, (large_batch, *sample.shape[1:])))
                task_l = bar.add_task(f"throughput at batch {large_batch}", total=None, info="")
                large = time_sessions(dyn, xl, warmup=2, iterations=None,
                                    duration=max(1.0, (duration or 1.0) / 4), min_iterations=5,
                                    on_round=lambda r: bar.update(task_l, completed=r, info=f"round {r}"))
        for t in targets:
            s = sessions[t.name]
            lat = LatencyStats.from_seconds(samples[t.name])
            raw = s.infer(s.prepare(x))
            pre, post = pre_post_ms(s, spec, list(sample[: min(8, len(sample))]), raw)
            row = {"artifact": t.artifact.id, "name": t.name, "format": t.artifact.format,
                   "precision": t.artifact.precision, "runtime": t.runtime, "device": device,
                   "threads": threads, "batch": batch, "size_bytes": t.artifact.size,
                   "latency_ms": lat.to_dict(), "stability": stability(lat.to_dict(), load),
                   "latency_samples_ms": _downsample(samples[t.name]),
                   "throughput_ips": {"batch": batch, "value": batch * 1e3 / lat.p50}}
            if t.name in large:
                ll = LatencyStats.from_seconds(large[t.name])
                row["throughput_large_batch_ips"] = {"batch": large_batch, "value": large_batch * 1e3 / ll.p50,
                                                     "latency_ms_p50": ll.p50}
            else:
                row["throughput_large_batch_ips"] = {"batch": large_batch, "value": None,
                                                     "note": f"static batch {s.static_batch}" if s.static_batch else "not measured"}
            row["preprocess_ms_per_image"] = pre
            row["postprocess_ms"] = post
            rows[t.name] = row
        peaks = None
        if peak:  # once per run, after the rows: the device's dense FP32/INT8 GMAC/s per runtime
            from edgemed.bench.peak import measure_peaks, probed

            runtimes = probed({t.runtime for t in targets})
            task_p = bar.add_task(f"device peak ({', '.join(sorted(runtimes)) or 'no probe for these runtimes'})",
                                  total=1, info="")
            peaks = measure_peaks(runtimes, device, threads)
            bar.advance(task_p)
        from edgemed.bench.peak import compute_share

        macs = (bundle.manifest.get("model") or {}).get("macs_per_image")
        macs = macs if type(macs) is int and 0 < macs < 10**15 else None  # read from the manifest: bounded
        for t in targets:
            rows[t.name]["compute"] = compute_share(rows[t.name], macs, peaks)
        if memory:
            task_m = bar.add_task("cold start + memory (subprocess each)", total=len(targets), info="")
            for t in targets:
                rows[t.name]["cold"] = probe(bundle, t, device, threads, batch)
                bar.advance(task_m)
        if labels is not None:
            from edgemed.bench.accuracy import accuracy_report, artifact_probs, outputs, thumbnails

            task_a = bar.add_task(f"accuracy on {split_info['name']} {split} (n={len(labels)})", total=len(targets), info="")
            probs = {}
            for t in targets:
                probs[t.name] = artifact_probs(sessions[t.name], spec, fitted)
                bar.advance(task_a)
            ref = next((t for t in targets if t.artifact.format == "torch"), None) or \
                next((t for t in targets if t.artifact.precision == "fp32"), None)
            if target_sensitivity is not None and ref is not None:
                from edgemed.metrics import threshold_for_sensitivity

                threshold = threshold_for_sensitivity(labels, probs[ref.name], target_sensitivity)
            operating_point = {"rule": "target_sensitivity" if target_sensitivity is not None else
                               "threshold" if threshold is not None else "most probable class",
                               "threshold": threshold, "target_sensitivity": target_sensitivity,
                               "fixed_on": ref.name if ref else None,
                               "positive_class": bundle.class_names[1] if threshold is not None else None}
            for t in targets:
                is_ref = ref is not None and t.name == ref.name
                rows[t.name]["accuracy"] = accuracy_report(
                    labels, probs[t.name], bundle.class_names,
                    None if (ref is None or is_ref) else probs[ref.name], ref.name if ref else None, n_boot,
                    threshold=threshold)
            cases = [c for r in rows.values() for c in (r["accuracy"].get("flips") or {}).get("cases", [])]
            gallery = thumbnails(fitted, [c["index"] for c in cases], positions=positions) if gallery_images else {}
            for c in cases:  # an index a reviewer can find in the data set, not in the subset
                c["index"] = positions[c["index"]]
            per_image = outputs(labels, probs, positions)
    for s in sessions.values():
        s.close()
    base_row = rows[base.name]
    for row in rows.values():
        row["ratio_to_baseline"] = {
            "baseline": base.name,
            "speedup_p50": base_row["latency_ms"]["p50"] / row["latency_ms"]["p50"],
            "size": row["size_bytes"] / base_row["size_bytes"],
        }
    result = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "edgemed_version": _version(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bundle": {"path": str(Path(bundle_path).resolve()), "sha256": bundle.sha256,
                   "model": bundle.manifest.get("model", {}).get("name"),
                   "class_names": bundle.class_names,
                   "dataset": bundle.manifest.get("provenance", {}).get("dataset"),
                   "recommended": bundle.recommended,
                   # what never made it into the bundle (failed to export or parity), for the status table
                   "failed": [{k: str(f.get(k, ""))[:1000] for k in ("format", "precision", "error")}
                              for f in bundle.manifest.get("failed", [])[:200]]},
        "system": system_info(),
        "settings": {"device": device, "threads": threads, "batch": batch, "large_batch": large_batch,
                     "warmup": warmup, "duration_s": duration, "iterations": iterations, "min_iterations": MIN_QUERIES,
                     "interleaved": True, "split": split_info, "n_boot": n_boot,
                     "operating_point": operating_point if labels is not None else None,
                     "rss_note": "peak RSS of a fresh process that loads and runs one artifact"},
        "load": load,  # the machine while the rows were timed: other processes, steal, frequency
        "peak": peaks,  # the device's dense FP32/INT8 GMAC/s per runtime (rows' compute.share_of_peak)
        "baseline": base.name,
        "rows": [rows[t.name] for t in targets],
        "skipped": skipped,  # artifacts this machine could not run, with why
    }
    counts = {}
    if labels is not None:  # images per class of the measured split and of the training split
        counts[split] = np.bincount(labels, minlength=len(bundle.class_names)).tolist()
        with contextlib.suppress(EdgemedError):  # a data set without a train split
            counts.setdefault("train", ds.class_counts("train"))
    from edgemed.card import model_card

    result["bundle"]["card"] = model_card(bundle.manifest, split_counts=counts)
    if labels is not None:
        result["thumbnails"] = gallery  # the flipped cases' images, for the report's gallery
        result["outputs"] = per_image  # per-image labels and probabilities (null when too large)
    if out is not None:
        atomic_write_json(out, result)
    return result


def _downsample(seconds: list[float], keep: int = 500) -> list[float]:
    """Up to `keep` evenly spaced samples (ms, in measurement order) for distribution plots."""
    idx = np.linspace(0, len(seconds) - 1, min(keep, len(seconds))).round().astype(int)
    return [round(seconds[i] * 1e3, 5) for i in idx]


def _version() -> str:
    from edgemed import __version__

    return __version__
