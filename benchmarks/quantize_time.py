"""Wall time of the whole `edgemed quantize` for a ConvNeXt-Tiny-size model: convnext_med at 224²
(28 M parameters, 4.4 GMACs) trained on SARS-CoV-2 CT, three formats (OpenVINO, ONNX, TFLite),
FP32 references exported and parity-checked, accuracy control `--max-drop 0.5` on validation
accuracy, 2 threads. Target: ≤ 5 minutes on this 2-core machine.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.quantize_time [--key convnext_med-sarscov2_ct_224]

Runs the CLI in a fresh process (imports and model loading included), as a user would.
Results: benchmarks/results/quantize_time.{json,md}; the bundle goes to benchmarks/work/quantize_time/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import RESULTS, WORK, edgemed_cli, page, save_results
from edgemed.report.tables import Table, fmt_delta

TARGET_SECONDS = 300


def _row(r: dict) -> list[str]:
    tried = "; ".join(f"{', '.join(x['float_layers']) or 'none'} → {x['drop_points']:+.2f}"
                      + (f" ({x['by']})" if x["by"] else "") for x in r["attempts"])
    return [r["artifact"], r["route"], "–" if r.get("fp32_seconds") is None else f"{r['fp32_seconds']:.0f} s",
            f"{r['quantize_seconds']:.0f} s", fmt_delta(r["val_drop_points"], None), str(r["bound_met"]),
            ", ".join(r["reverted_layers"] or []) or "–", tried]


def markdown(payload: dict) -> str:
    seconds, target, rows = payload["wall_seconds"], payload["target_seconds"], payload["formats"]
    accounted = sum(r["quantize_seconds"] + (r.get("fp32_seconds") or 0) for r in rows)
    return page(payload, "`edgemed quantize` wall time, ConvNeXt-Tiny size", [
        f"`{payload['cli']}` (fresh process; FP32 export + parity, INT8, accuracy control on the validation split, "
        "latency pick of the recommended artifact).",
        f"**Wall time: {seconds:.0f} s** (target ≤ {target} s: {'met' if payload['met'] else 'MISSED'}); "
        f"recommended `{payload['recommended']}`.",
        Table(["artifact", "route", "FP32 export + parity", "INT8 + control time", "val drop (pt)", "bound met",
               "float layers", "attempts"], [_row(r) for r in rows], right={2, 3, 4}),
        f"The rest, {seconds - accounted:.0f} s: start-up and imports, loading the checkpoint, data and "
        "calibration set, the FP32 validation reference (and the sensitivity pass, where a format needs it, "
        "counts in that format's INT8 time), the latency pick and writing the bundle."])


def main() -> None:
    from benchmarks.train_seeds import checkpoint_path
    from edgemed.checkpoint import read_checkpoint

    ap = argparse.ArgumentParser()
    ap.add_argument("--key", default="convnext_med-sarscov2_ct_224")
    args = ap.parse_args()
    ckpt = checkpoint_path(args.key)
    out = WORK / "quantize_time" / args.key
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    dataset = read_checkpoint(ckpt).dataset["name"]
    root = Path(__file__).resolve().parent.parent
    ckpt, out = Path(os.path.relpath(ckpt, root)), Path(os.path.relpath(out, root))  # readable in the results
    cmd = ["edgemed", "quantize", str(ckpt), "--calib", f"calibration/{dataset}.json",
           "--formats", "openvino,onnx,tflite", "--max-drop", "0.5", "--metric", "accuracy", "--threads", "2",
           "--out", str(out), "--json"]
    t = time.perf_counter()
    done = subprocess.run([edgemed_cli(), *cmd[1:]], capture_output=True, text=True, cwd=root)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        sys.exit(f"edgemed quantize failed ({done.returncode}): {done.stderr[-2000:]}")
    manifest = json.loads((root / out / "edgemed.json").read_text())
    rows = []
    fp32_seconds = {r["artifact"]: r.get("fp32_seconds") for r in manifest.get("quantization", {}).get("results", [])}
    for a in manifest["artifacts"]:
        d = a.get("details", {})
        if "quantize_seconds" in d:
            rows.append({"artifact": a["id"], "route": d.get("route"), "quantize_seconds": d["quantize_seconds"],
                         "fp32_seconds": fp32_seconds.get(a["id"]),
                         "val_drop_points": d["val_drop_points"], "bound_met": d["bound_met"],
                         "reverted_layers": d.get("reverted_layers"),
                         "attempts": [{"float_layers": x["float_layers"], "drop_points": 100 * x["drop"],
                                       "by": x.get("by")} for x in d.get("attempts", [])]})
    result = {"key": args.key, "cli": " ".join(cmd), "wall_seconds": round(seconds, 1), "target_seconds": TARGET_SECONDS,
              "met": seconds <= TARGET_SECONDS, "formats": rows, "recommended": manifest.get("recommended")}
    save_results("quantize_time", result, markdown)
    print((RESULTS / "quantize_time.md").read_text())


if __name__ == "__main__":
    main()
