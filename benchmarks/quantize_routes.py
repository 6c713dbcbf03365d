"""Which INT8 route is the default: the ONNX routes (onnxruntime's quantize_static `ort`, NNCF
`nncf`, PyTorch PT2E `pt2e`) side by side on onnxruntime, and NNCF's model type (`cnn` vs
`transformer`) for OpenVINO on the ConvNeXt-style models.

For each trained model: `edgemed quantize` (plain PTQ, no accuracy control, same 300-image
calibration manifest) once per route, then batch-1 latency of the FP32 file and every INT8 file
interleaved A B C … in one process (1 and 2 threads, median of N rounds), validation accuracy
of each (the split quantization may look at) and top-1 agreement with PyTorch FP32 there, and
the wall time of each quantization.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.quantize_routes [--only KEY ...] [--rounds 200]

Needs the checkpoints and export bundles of benchmarks/train_seeds.py / export_formats.py.
Results: benchmarks/results/quantize_routes.{json,md}; work files in benchmarks/work/quantize_routes/.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from benchmarks.common import WORK, load_results, page, save_results
from edgemed.report.tables import Table

MODELS = {  # key → (format, routes or model types to compare, rounds)
    "mednext_small-pneumoniamnist": [("onnx", ("ort", "nncf", "pt2e"))],
    "convnext_med_28-pneumoniamnist": [("onnx", ("ort", "nncf", "pt2e")), ("openvino", ("cnn", "transformer"))],
    "convnext_med-sarscov2_ct_224": [("onnx", ("ort", "nncf", "pt2e"))],
}
ROUNDS = {"convnext_med-sarscov2_ct_224": 40}
CALIB_LIMIT = {"convnext_med-sarscov2_ct_224": 64}  # PT2E's histogram observers are slow at 224²


def build(key: str, fmt: str, option: str) -> tuple[Path, float]:
    from benchmarks.train_seeds import checkpoint_path
    from edgemed.checkpoint import read_checkpoint
    from edgemed.compress.quantize import quantize

    folder = WORK / "quantize_routes" / key / f"{fmt}-{option}"
    seconds_file = folder.with_suffix(".seconds")
    if folder.exists() and seconds_file.exists():
        return folder, float(seconds_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    ckpt = checkpoint_path(key)
    calib = Path(__file__).resolve().parent.parent / "calibration" / f"{read_checkpoint(ckpt).dataset['name']}.json"
    options = {"routes": {fmt: option}} if fmt == "onnx" else {"model_type": option}
    base = WORK / "bundles" / key
    t = time.perf_counter()
    quantize(ckpt, calib=calib, formats=[fmt], out=folder, threads=2, calib_limit=CALIB_LIMIT.get(key),
             base_bundle=base if (base / "edgemed.json").exists() else None, **options)
    seconds = time.perf_counter() - t
    seconds_file.write_text(f"{seconds:.1f}")
    return folder, seconds


def measure(key: str, fmt: str, options: tuple[str, ...], rounds: int) -> dict:
    from benchmarks.train_seeds import checkpoint_path
    from edgemed.bench.latency import LatencyStats, interleaved
    from edgemed.checkpoint import read_checkpoint
    from edgemed.compress.quantize import _validation
    from edgemed.export import load_bundle
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    built = {o: build(key, fmt, o) for o in options}
    bundles = {o: load_bundle(folder) for o, (folder, _) in built.items()}
    first = bundles[options[0]]
    arts = {"fp32": first.artifact(f"{fmt}-fp32"), "torch-fp32": first.artifact("torch-fp32")}
    for o, b in bundles.items():
        arts[o] = next(a for a in b.artifacts if a.format == fmt and a.precision in ("int8", "mixed"))
    x_val, y_val = _validation(read_checkpoint(checkpoint_path(key)), None, None)
    x1 = x_val[:1]
    latency = {}
    for threads in (1, 2):
        with quiet_native():
            sessions = {k: open_session(a, threads=threads) for k, a in arts.items() if k != "torch-fp32"}
        calls = {k: (lambda s=s, p=s.prepare(x1): s.infer(p)) for k, s in sessions.items()}
        samples = interleaved(calls, warmup=5, iterations=rounds)
        latency[threads] = {k: LatencyStats.from_seconds(v).to_dict() for k, v in samples.items()}
        for s in sessions.values():
            s.close()
    with quiet_native():
        ref = open_session(arts["torch-fp32"], threads=2).run(x_val)
    rows = []
    for k, a in arts.items():
        if k == "torch-fp32":
            continue
        with quiet_native():
            logits = open_session(a, threads=2).run(x_val)
        rows.append({
            "variant": k, "size_bytes": a.size, "details": {d: a.details.get(d) for d in ("route", "model_type", "quantizer")},
            "p50_ms": {t: latency[t][k]["p50"] for t in (1, 2)},
            "speedup_vs_fp32": {t: latency[t]["fp32"]["p50"] / latency[t][k]["p50"] for t in (1, 2)},
            "val_accuracy": float((logits.argmax(1) == y_val).mean()),
            "agreement_with_torch": float((logits.argmax(1) == ref.argmax(1)).mean()),
            "quantize_seconds": None if k == "fp32" else built[k][1],
        })
    return {"key": key, "format": fmt, "rounds": rounds, "n_val": int(len(y_val)),
            "reference_val_accuracy": float((ref.argmax(1) == y_val).mean()),
            "calibration_images": arts[options[0]].details.get("calibration_images"), "rows": rows,
            "ops": {o: _op_counts(arts[o]) for o in options} if fmt == "onnx" else None}


def _op_counts(artifact) -> dict:
    """How much of the graph runs as fused integer kernels once onnxruntime has optimised it."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    out = artifact.path.with_suffix(".optimized.onnx")
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(artifact.path), so, providers=["CPUExecutionProvider"])
    ops: dict[str, int] = {}
    for n in onnx.load(str(out)).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    out.unlink()
    keep = ("QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "Conv",
            "FusedConv", "QuantizeLinear", "DequantizeLinear")
    return {k: ops[k] for k in keep if k in ops}


def _row(row: dict) -> list[str]:
    p, s = row["p50_ms"], row["speedup_vs_fp32"]  # keyed by thread count, "1" and "2" in the JSON
    return [row["variant"], f"{p['1']:.3f} ms", f"{s['1']:.2f}×", f"{p['2']:.3f} ms", f"{s['2']:.2f}×",
            f"{row['val_accuracy']:.4f}", f"{row['agreement_with_torch']:.4f}", f"{row['size_bytes'] / 2**20:.2f} MiB",
            "–" if row["quantize_seconds"] is None else f"{row['quantize_seconds']:.0f} s"]


def markdown(payload: dict) -> str:
    body = ["Each route quantizes the same trained model with the same calibration manifest (plain PTQ, no "
            "accuracy control). Latency: batch 1, p50 of interleaved rounds (FP32 and every INT8 file A B C … in "
            "one process), speed-up against the FP32 file of the same format on the same runtime. Accuracy: full "
            "validation split; agreement: top-1 agreement with PyTorch FP32 there."]
    for r in payload["runs"]:
        what = "onnxruntime (CPU EP)" if r["format"] == "onnx" else "OpenVINO (CPU)"
        body += [f"## {r['key']} — {r['format']} on {what}",
                 f"{r['rounds']} rounds; {r['calibration_images']} calibration images; validation n = {r['n_val']}, "
                 f"PyTorch FP32 accuracy {r['reference_val_accuracy']:.4f}",
                 Table(["variant", "p50 1 thr", "speed-up 1 thr", "p50 2 thr", "speed-up 2 thr", "val accuracy",
                        "agreement", "size", "quantize time"], [_row(row) for row in r["rows"]], right=set(range(1, 9)))]
        if r.get("ops"):
            body += ["Operators after onnxruntime's graph optimisation (integer kernels are QLinear*/QGemm; "
                     "a float Conv fed by DequantizeLinear means the INT8 weights are dequantized on every call):",
                     "\n".join(f"- {o}: " + ", ".join(f"{k} {v}" for k, v in ops.items()) for o, ops in r["ops"].items())]
    return page(payload, "INT8 routes: which one is the default", body)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    done = {(r["key"], r["format"]): r for r in load_results("quantize_routes").get("runs", [])}
    for key, comparisons in MODELS.items():
        if args.only and not any(s in key for s in args.only):
            continue
        for fmt, options in comparisons:
            print(f"=== {key} {fmt}: {', '.join(options)}", flush=True)
            done[(key, fmt)] = measure(key, fmt, options, ROUNDS.get(key, args.rounds))
            runs = [done[k] for k in sorted(done, key=lambda k: (list(MODELS).index(k[0]), k[1]))]
            save_results("quantize_routes", {"runs": runs}, markdown)


if __name__ == "__main__":
    main()
