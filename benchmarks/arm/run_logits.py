"""Run bundle artifacts on a saved, preprocessed batch and save their logits: the half of
compare_arm.py that runs on each machine (x86 host, emulated aarch64). Needs only the
runtime-only install, `edgemed[runtime]` (no torch, no OpenVINO).

    python run_logits.py BUNDLE INPUTS.npy OUTDIR ARTIFACT_ID [ARTIFACT_ID ...] [--threads 1]

Writes OUTDIR/<artifact>.npy (float32 logits, dequantized for INT8 outputs) and OUTDIR/meta.json
(system info, per-artifact session details, output quantization, seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def output_quantization(session) -> dict | None:
    """Scale/zero point of a LiteRT session's output: the output tensor itself when it is INT8,
    else the INT8 tensor a final DEQUANTIZE op turns into the float output. None otherwise."""
    out = getattr(session, "_out", None)
    if out is None:
        return None
    if np.dtype(out["dtype"]).kind in "iu":
        scale, zero = out["quantization"]
        return {"scale": float(scale), "zero_point": int(zero), "dtype": np.dtype(out["dtype"]).name,
                "source": "TFLite output tensor"}
    try:  # float output: look for DEQUANTIZE(int8 tensor) -> output (private but stable API)
        it = session._it
        for op in it._get_ops_details():
            if op["op_name"] == "DEQUANTIZE" and out["index"] in list(op["outputs"]):
                src = next(t for t in it.get_tensor_details() if t["index"] == op["inputs"][0])
                scale, zero = src["quantization"]
                if scale:
                    return {"scale": float(scale), "zero_point": int(zero), "dtype": np.dtype(src["dtype"]).name,
                            "source": "TFLite DEQUANTIZE feeding the output"}
    except Exception:  # noqa: BLE001 - a missing step falls back to an estimate in compare_arm
        pass
    return None


def input_quantization(session) -> dict | None:
    inp = getattr(session, "_in", None)
    if inp is None or np.dtype(inp["dtype"]).kind not in "iu":
        return None
    scale, zero = inp["quantization"]
    return {"scale": float(scale), "zero_point": int(zero), "dtype": np.dtype(inp["dtype"]).name}


def use_reference_kernels(session, path: str, threads: int) -> None:
    """Swap a session's engine for the runtime's reference path: TFLite's builtin reference
    kernels (no XNNPACK), or onnxruntime with graph optimizations off (the QDQ graph as written,
    no fused integer kernels). These are portable code, so they should agree across
    architectures even where the optimised integer kernels round differently."""
    if session.runtime == "litert":
        from edgemed.runtime.litert import interpreter_class

        interpreter = interpreter_class()
        module = sys.modules[interpreter.__module__]
        it = interpreter(model_path=path, num_threads=threads,
                         experimental_op_resolver_type=module.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        session._it, session._in, session._out = it, it.get_input_details()[0], it.get_output_details()[0]
    elif session.runtime == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
        session._sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    else:
        raise ValueError(f"no reference path for {session.runtime}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("inputs")
    ap.add_argument("outdir")
    ap.add_argument("artifacts", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="run each artifact this many times (determinism check)")
    ap.add_argument("--reference", nargs="*", default=[],
                    help="artifacts to run also on the reference kernels (<id>.ref.npy)")
    args = ap.parse_args()

    from edgemed.bench.system import system_info
    from edgemed.export.bundle import load_bundle
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    x = np.load(args.inputs)
    bundle = load_bundle(args.bundle)  # verifies every file's sha256 first
    meta = {"bundle_sha256": bundle.sha256, "inputs_shape": list(x.shape), "threads": args.threads,
            "artifacts": {}, "system": system_info()}
    for artifact_id in args.artifacts:
        art = bundle.artifact(artifact_id)
        t0 = time.perf_counter()
        with quiet_native():
            session = open_session(art, device="cpu", threads=args.threads)
        t1 = time.perf_counter()
        logits = session.run(x)
        t2 = time.perf_counter()
        repeat_max_diff = None
        if args.repeat > 1:
            repeat_max_diff = max(float(np.max(np.abs(session.run(x) - logits))) for _ in range(args.repeat - 1))
        np.save(out / f"{artifact_id}.npy", np.asarray(logits, np.float32))
        ref_s = None
        if artifact_id in args.reference:
            t3 = time.perf_counter()
            with quiet_native():
                use_reference_kernels(session, str(art.path), args.threads)
            np.save(out / f"{artifact_id}.ref.npy", np.asarray(session.run(x), np.float32))
            ref_s = time.perf_counter() - t3
        meta["artifacts"][artifact_id] = {
            "reference_run_s": ref_s,
            "session": session.describe(), "load_s": t1 - t0, "run_s": t2 - t1,
            "output_quantization": output_quantization(session),
            "input_quantization": input_quantization(session),
            "repeat_max_abs_diff": repeat_max_diff,
        }
        session.close()
        print(f"{artifact_id}: {logits.shape} in {t2 - t1:.2f} s", file=sys.stderr)
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
