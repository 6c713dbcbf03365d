"""Export every trained seed model to ONNX, OpenVINO and TFLite in FP32 and FP16, and record
file sizes and parity with PyTorch on the FULL test split (max |Δlogit|, top-1 agreement).
Also measures TFLite NCHW vs channel-last (NHWC) I/O latency side by side, which decides the
default layout.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.export_formats [--only KEY ...]

Needs the checkpoints of benchmarks/train_seeds.py. Bundles go to benchmarks/work/bundles/.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.common import WORK, load_results, page, save_results
from edgemed.report.tables import Table

GOAL = 0.999  # top-1 agreement with PyTorch for FP32 and FP16 artifacts


def test_split(ckpt):
    from edgemed.data.catalog import CATALOG
    from edgemed.data.datasets import load_dataset, prepare_split

    name = ckpt.dataset["name"]
    ds = load_dataset(name if name in CATALOG else ckpt.dataset["source"])
    x_u8, y = prepare_split(ds, "test", ckpt.preprocess)
    return ckpt.preprocess.normalize(x_u8), y


def layout_latency(model, example, folder: Path, threads: int = 2, rounds: int = 300) -> dict:
    """Median batch-1 latency of NCHW vs NHWC TFLite, interleaved A B A B in one process."""
    from edgemed.export import tflite
    from edgemed.fileio import quiet_native
    from edgemed.runtime.litert import LiteRTSession

    sessions = {}
    for layout in ("NCHW", "NHWC"):
        path = folder / f"layout_{layout}.tflite"
        with quiet_native():
            tflite.convert(model, example, path, layout)
        sessions[layout] = LiteRTSession(str(path), threads=threads, input_layout=layout)
    x = example[:1].numpy()
    prepared = {k: s.prepare(x) for k, s in sessions.items()}
    times = {k: [] for k in sessions}
    for k, s in sessions.items():
        for _ in range(20):
            s.infer(prepared[k])
    for _ in range(rounds):
        for k, s in sessions.items():
            t = time.perf_counter()
            s.infer(prepared[k])
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"threads": threads, "rounds": rounds, "median_ms": med,
            "nhwc_over_nchw": med["NHWC"] / med["NCHW"]}


def run_one(key: str, ckpt_path: Path) -> dict:
    import torch

    from edgemed.checkpoint import load_checkpoint
    from edgemed.export import load_bundle
    from edgemed.export.exporter import export
    from edgemed.export.parity import compare
    from edgemed.runtime import open_session

    out = WORK / "bundles" / key
    t0 = time.perf_counter()
    export(ckpt_path, ["onnx", "openvino", "tflite"], ["fp32", "fp16"], out, force=True, threads=2)
    export_s = time.perf_counter() - t0
    ckpt, model = load_checkpoint(ckpt_path)
    x, _ = test_split(ckpt)
    with torch.inference_mode():
        ref = torch.cat([model(torch.from_numpy(x[i:i + 256])) for i in range(0, len(x), 256)]).numpy()
    bundle = load_bundle(out)
    rows = []
    for a in bundle.artifacts:
        if a.format == "torch":
            continue
        s = open_session(a, threads=2)
        p = compare(ref, s.run(x))
        rows.append({"artifact": a.id, "format": a.format, "precision": a.precision, "size": a.size,
                     "max_abs_diff": p["max_abs_diff"], "top1_agreement": p["top1_agreement"],
                     "disagreements": p["disagreements"], "n": p["n"],
                     "flip_reference_margins": p["flip_reference_margins"]})
    layout = layout_latency(model, torch.from_numpy(x[:1]), out.parent / f"{key}-layout")
    return {"key": key, "model": ckpt.model_name, "dataset": ckpt.dataset["name"],
            "image_size": ckpt.image_size, "checkpoint_size": ckpt_path.stat().st_size,
            "export_seconds": round(export_s, 1), "artifacts": rows, "tflite_layout": layout}


def markdown(payload: dict) -> str:
    runs, goal = payload["runs"], payload.get("goal", GOAL)
    parity = [[r["model"], r["dataset"], a["artifact"], f"{a['size'] / 2**20:.1f} MiB", f"{a['max_abs_diff']:.2e}",
               f"{a['top1_agreement']:.4%}", f"{a['disagreements']} / {a['n']}",
               ", ".join(f"{m:.4f}" for m in a.get("flip_reference_margins", [])) or "–",
               "yes" if a["top1_agreement"] >= goal else "NO"] for r in runs for a in r["artifacts"]]
    layouts = [(r, r["tflite_layout"]) for r in runs]
    layout = [[r["model"], r["dataset"], f"{lay['median_ms']['NCHW']:.3f} ms", f"{lay['median_ms']['NHWC']:.3f} ms",
               f"{lay['nhwc_over_nchw']:.3f}"] for r, lay in layouts]
    body = [f"Goal: top-1 agreement with PyTorch ≥ {goal:.1%} for every FP32 and FP16 artifact.",
            Table(["model", "data set", "artifact", "size", "max abs Δlogit", "top-1 agreement", "disagreements / n",
                   "FP32 margin of flipped images", "goal met"], parity, right={3, 4, 5, 6}),
            "The margin column is the PyTorch FP32 logit gap between the top two classes of each image "
            "whose class changed: FP16 weights move logits by up to the max abs Δ shown, so only images "
            "that close to a tie can flip.",
            "## TFLite input layout (batch 1, 2 threads, XNNPACK; median of interleaved runs)",
            Table(["model", "data set", "NCHW I/O", "NHWC I/O (channel-last)", "NHWC / NCHW"], layout, right={2, 3, 4}),
            f"Each: {runs[0]['tflite_layout']['rounds'] if runs else 0} interleaved rounds after 20 warm-up runs. "
            "Export time per model (all six artifacts, with parity on 128 validation images) is in the JSON."]
    return page(payload, "Export: sizes and parity with PyTorch on the full test split", body)


def main() -> None:
    from benchmarks.train_seeds import in_seed_order, seed_checkpoints

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    done = {r["key"]: r for r in load_results("export_formats").get("runs", [])}
    for key, ckpt in seed_checkpoints(args.only):
        done[key] = run_one(key, ckpt)
        runs = in_seed_order(done)
        save_results("export_formats", {"runs": runs, "goal": GOAL}, markdown)


if __name__ == "__main__":
    main()
