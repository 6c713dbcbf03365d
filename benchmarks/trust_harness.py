"""Can the harness be trusted? Two checks, committed with their numbers:

1. edgemed's latency vs OpenVINO's own `benchmark_app` on the same IR, same threads, latency
   hint, FP32 inference precision: p50 within 10 %. The two are separate processes, so whole
   runs alternate A B A B … and the medians of the runs' p50s are compared.
2. The harness's own per-call overhead on a tiny model at 28×28 (goal ≤ 2 % of the model time):
   the same session timed by the harness loop and by a bare loop (no per-call clock), alternated.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.trust_harness [--bundle B] [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, WORK, page, save_results
from edgemed.report.tables import Table


def benchmark_app_p50(xml: Path, threads: int, seconds: float) -> float:
    """OpenVINO's benchmark_app on the IR with the harness's CPU settings: latency hint, the
    thread count and FP32 inference precision (given through -load_config: benchmark_app's CLI
    only takes -nthreads with -hint none), sync API, batch 1."""
    import json
    import tempfile

    from edgemed.export.bundle import load_bundle

    exe = shutil.which("benchmark_app") or str(Path(sys.executable).parent / "benchmark_app")
    spec = load_bundle(xml.parent.parent, verify=False).preprocess
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "cpu.json"
        config.write_text(json.dumps({"CPU": {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads),
                                              "INFERENCE_PRECISION_HINT": "f32"}}))
        # the IR has a dynamic batch: fix it to 1 as the harness does
        cmd = [exe, "-m", str(xml), "-d", "CPU", "-api", "sync", "-t", str(max(1, round(seconds))),
               "-load_config", str(config), "-shape", f"[1,{spec.channels},{spec.size[0]},{spec.size[1]}]"]
        r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"benchmark_app failed ({' '.join(cmd)}):\n{(r.stdout + r.stderr)[-2000:]}")
    m = re.search(r"Median:\s+([\d.]+)\s*(ms|us)", r.stdout)  # it switches to µs below 1 ms
    if not m:
        raise RuntimeError("benchmark_app printed no median:\n" + r.stdout[-2000:])
    return float(m.group(1)) / (1000.0 if m.group(2) == "us" else 1.0)


def harness_p50(bundle: Path, artifact: str, threads: int, seconds: float) -> float:
    from edgemed.bench.harness import bench

    r = bench(bundle, artifacts=[artifact], threads=threads, duration=seconds, accuracy=False, memory=False,
              large_batch=None, progress=False)
    return r["rows"][0]["latency_ms"]["p50"]


def overhead(bundle: Path, artifact: str, threads: int = 1, calls: int = 3000, rounds: int = 7) -> dict:
    """Harness loop vs bare loop on the same session, alternated `rounds` times."""
    import numpy as np

    from edgemed.bench.latency import interleaved
    from edgemed.export import load_bundle
    from edgemed.runtime import open_session

    b = load_bundle(bundle)
    s = open_session(b.artifact(artifact), threads=threads)
    x = s.prepare(np.zeros(b.preprocess.input_shape, np.float32))
    for _ in range(200):
        s.infer(x)
    bare, harness = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            s.infer(x)
        bare.append((time.perf_counter() - t) / calls)
        t = time.perf_counter()
        interleaved({"a": lambda: s.infer(x)}, warmup=0, iterations=calls)
        harness.append((time.perf_counter() - t) / calls)
    b_med, h_med = statistics.median(bare), statistics.median(harness)
    return {"artifact": artifact, "threads": threads, "calls_per_round": calls, "rounds": rounds,
            "bare_us_per_call": b_med * 1e6, "harness_us_per_call": h_med * 1e6,
            "overhead_us_per_call": (h_med - b_med) * 1e6, "overhead_pct": 100 * (h_med - b_med) / b_med}


def cross_runtime(bundle: Path, threads: int = 2, iterations: int = 300, repeats: int = 3) -> dict:
    """Each FP32 artifact timed alone, then all of them strictly A B A B, then in settled turns
    (the harness default); the three modes alternate `repeats` times, medians of their p50s."""
    import numpy as np

    from edgemed.bench.latency import interleaved
    from edgemed.export import load_bundle
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    b = load_bundle(bundle)
    ids = [a.id for a in b.artifacts if a.precision == "fp32"]
    with quiet_native():
        sessions = {i: open_session(b.artifact(i), threads=threads) for i in ids}
    x = np.zeros(b.preprocess.input_shape, np.float32)
    calls = {i: (lambda s=s, p=s.prepare(x): s.infer(p)) for i, s in sessions.items()}
    runs = {"alone": {i: [] for i in ids}, "strict": {i: [] for i in ids}, "turns": {i: [] for i in ids}}
    for _ in range(repeats):
        for i in ids:
            runs["alone"][i].append(statistics.median(interleaved({i: calls[i]}, warmup=20, iterations=iterations)[i]))
        for mode, turn in (("strict", 0.0), ("turns", 0.05)):
            r = interleaved(calls, warmup=20, iterations=iterations, turn_seconds=turn)
            for i in ids:
                runs[mode][i].append(statistics.median(r[i]))
    med = {m: {i: 1e3 * statistics.median(v) for i, v in d.items()} for m, d in runs.items()}
    return {"bundle": str(bundle), "threads": threads, "iterations": iterations, "repeats": repeats,
            "p50_ms": med, "ratio_to_alone": {m: {i: med[m][i] / med["alone"][i] for i in ids} for m in ("strict", "turns")}}


def markdown(payload: dict) -> str:
    comparisons, over, cross = payload["benchmark_app"], payload["overhead"], payload["cross_runtime"]
    vs_app = [[f"{Path(c['bundle']).name}/{c['artifact']}", str(c["threads"]), f"{c['edgemed_median_of_p50']:.3f} ms",
               f"{c['benchmark_app_median_of_medians']:.3f} ms", f"{c['difference_pct']:+.1f} %",
               "yes" if c["within_10pct"] else "NO"] for c in comparisons]
    overhead_rows = [[o["artifact"], f"{o['bare_us_per_call']:.1f}", f"{o['harness_us_per_call']:.1f}",
                      f"{o['overhead_us_per_call']:+.2f}", f"{o['overhead_pct']:+.2f} %",
                      "yes" if o["overhead_pct"] <= 2 else "NO"] for o in over]
    p50, ratio = cross["p50_ms"], cross["ratio_to_alone"]
    modes = [[i, f"{alone:.3f} ms", f"{p50['strict'][i]:.3f} ms", f"{ratio['strict'][i]:.2f}", f"{p50['turns'][i]:.3f} ms",
              f"{ratio['turns'][i]:.2f}"] for i, alone in p50["alone"].items()]
    return page(payload, "Trusting the harness", [
        "## edgemed bench vs OpenVINO benchmark_app (same IR, latency hint, FP32 inference precision, batch 1, sync)",
        f"{comparisons[0]['runs']} alternating runs of each tool ({comparisons[0]['seconds_per_run']:g} s each); the "
        "medians of the runs' p50 are compared. Goal: within 10 %.",
        Table(["artifact", "threads", "edgemed p50 (median of runs)", "benchmark_app median", "difference",
               "within 10 %"], vs_app, right={1, 2, 3, 4}),
        "## Harness overhead per call (tiny ResNet at 28×28, 1 thread)",
        "The same session timed by the harness loop (clock + bookkeeping per call) and by a bare loop, "
        "alternated; medians over rounds. Goal: ≤ 2 % of the model time.",
        Table(["artifact", "bare µs/call", "harness µs/call", "overhead µs", "overhead %", "goal met"], overhead_rows,
              right={1, 2, 3, 4}),
        f"## Several runtimes in one process ({Path(cross['bundle']).name}, FP32, batch 1, {cross['threads']} threads)",
        "Each artifact timed alone; then all together strictly A B A B; then in the harness's settled turns "
        "(A×k B×k …, ~50 ms each after 10 ms of unmeasured calls). The three modes alternate "
        f"{cross['repeats']} times, {cross['iterations']} calls per artifact each; medians of p50. A ratio "
        "above 1 is time a runtime lost to the previous runtime's still-spinning worker threads.",
        Table(["artifact", "alone p50", "strict A B p50", "ratio", "turns p50", "ratio"], modes, right={1, 2, 3, 4, 5})])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(WORK / "bundles" / "mednext_small-pneumoniamnist"),
                    help="A bundle with openvino-fp32 (and optionally an INT8 bundle via --int8-bundle)")
    ap.add_argument("--int8-bundle", default=str(WORK / "compression" / "mednext_small-pneumoniamnist" / "int8"))
    ap.add_argument("--tiny-bundle", default=str(WORK / "trust" / "tiny"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    from edgemed.export import load_bundle

    targets = [(Path(args.bundle), "openvino-fp32")]
    if Path(args.int8_bundle).exists():
        ib = load_bundle(args.int8_bundle)
        targets += [(Path(args.int8_bundle), a.id) for a in ib.artifacts if a.format == "openvino" and a.precision != "fp32"]
    comparisons = []
    for bundle, artifact in targets:
        xml = load_bundle(bundle).artifact(artifact).path
        for threads in (1, 2):
            ours, theirs = [], []
            for _ in range(args.runs):  # A B A B: the two tools see the same background load
                theirs.append(benchmark_app_p50(xml, threads, args.seconds))
                ours.append(harness_p50(bundle, artifact, threads, args.seconds))
            o, t = statistics.median(ours), statistics.median(theirs)
            comparisons.append({"bundle": str(bundle), "artifact": artifact, "threads": threads, "runs": args.runs,
                                "seconds_per_run": args.seconds, "edgemed_p50_ms": ours, "benchmark_app_median_ms": theirs,
                                "edgemed_median_of_p50": o, "benchmark_app_median_of_medians": t,
                                "difference_pct": 100 * (o - t) / t, "within_10pct": abs(o - t) / t <= 0.10})
            print(comparisons[-1], flush=True)
    tiny = Path(args.tiny_bundle)
    if not tiny.exists():
        from edgemed.export.exporter import export
        from edgemed.train import train

        ck = train("resnet18_micro", "pneumoniamnist", out=tiny.parent / "tiny.safetensors", epochs=1, limit_train=256,
                   limit_eval=64, progress=False, force=True).checkpoint
        export(ck, ["onnx", "openvino", "tflite"], ["fp32"], tiny, parity_images=32, progress=False, force=True)
    over = [overhead(tiny, a) for a in ("onnx-fp32", "openvino-fp32", "tflite-fp32")]
    for o in over:
        print(o, flush=True)
    cross = cross_runtime(Path(args.bundle))
    print(cross, flush=True)
    save_results("trust_harness", {"benchmark_app": comparisons, "overhead": over, "cross_runtime": cross}, markdown)
    print((RESULTS / "trust_harness.md").read_text())


if __name__ == "__main__":
    main()
