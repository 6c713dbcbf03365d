"""Bench INT8 and pruned+INT8 bundles of the seed models (each with its FP32 references) with the
harness — `edgemed bench` — on this machine, then merge them with `edgemed report` into
benchmarks/results/bench/ (one results JSON per bundle, report.md, report.html with plots and
the flipped-case gallery, results.csv).

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.bench_bundles [--only KEY ...] [--duration 3]

The bundles are benchmarks/compression.py's where it has run (benchmarks/work/compression/);
otherwise they are built here from the weights shipped in edgemed/zoo/ (mednext_small and
convnext_med_28 on PneumoniaMNIST): `edgemed quantize` (OpenVINO, ONNX, TFLite; 0.5 pt
validation bound) of the shipped model, and of the model pruned to half its MACs with
distilled fine-tuning (`edgemed prune`). The owner's model card fields come from
benchmarks/report_inputs/card-pneumonia.yaml; devices from benchmarks/report_inputs/devices.yaml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import RESULTS, WORK, command_line

OUT = RESULTS / "bench"
VARIANTS = ("int8", "pruned_int8")


ZOO = Path(__file__).resolve().parent.parent / "edgemed" / "zoo"
INPUTS = Path(__file__).resolve().parent / "report_inputs"  # the owner's card, the buyer's devices
CALIBRATION = Path(__file__).resolve().parent.parent / "calibration"


def bundles(only: list[str] | None):
    from benchmarks.train_seeds import RUNS

    found = False
    for cfg in RUNS:
        key = cfg["key"]
        if only and not any(s in key for s in only):
            continue
        for variant in VARIANTS:
            folder = WORK / "compression" / key / variant
            if (folder / "edgemed.json").exists():
                found = True
                yield f"{key}-{variant}", folder
    if not found:
        yield from zoo_bundles(only)


def zoo_bundles(only: list[str] | None):
    """INT8 and pruned+INT8 bundles of the shipped weights, built once under benchmarks/work/bench/."""
    from edgemed.card import card
    from edgemed.compress.prune import prune
    from edgemed.compress.quantize import quantize
    from edgemed.export.bundle import load_bundle

    for ckpt in sorted(ZOO.glob("*.safetensors")):
        key = ckpt.stem
        if only and not any(s in key for s in only):
            continue
        dataset = key.split("-", 1)[1]
        folder = WORK / "bench" / key
        folder.mkdir(parents=True, exist_ok=True)
        sources = {"int8": ckpt, "pruned_int8": folder / "pruned.safetensors"}
        if not sources["pruned_int8"].exists():
            prune(ckpt, out=sources["pruned_int8"], target_macs=0.5, finetune_epochs=2, distill=True, threads=2)
        for variant, source in sources.items():
            out = folder / variant
            if not (out / "edgemed.json").exists():
                quantize(source, calib=CALIBRATION / f"{dataset}.json", formats=["openvino", "onnx", "tflite"],
                         out=out, max_drop=0.5, threads=2)
            if not load_bundle(out).manifest.get("card"):
                card(out, INPUTS / "card-pneumonia.yaml")
            yield f"{key}-{variant}", out


def main() -> None:
    from edgemed.bench import bench
    from edgemed.report import report

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of timed calls per artifact")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--target-sensitivity", type=float, default=None,
                    help="fix each bundle's operating point where its FP32 reference reaches this sensitivity")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, folder in bundles(args.only):
        print(f"=== {name}", flush=True)
        out = OUT / f"{name}.json"
        bench(folder, threads=args.threads, duration=args.duration, split="test", out=out, force=True,
              target_sensitivity=args.target_sensitivity)
        written.append(out)
    if not written:
        sys.exit("no bundles: run benchmarks/compression.py first")
    # every results file on disk, so a run with --only still reports all bundles measured so far
    summary = report(sorted(OUT.glob("*.json")), OUT / "report", max_drop=0.5, metric="accuracy", force=True,
                     devices=INPUTS / "devices.yaml", fail_below=["accuracy=0.85"])
    (OUT / "COMMAND.txt").write_text(command_line() + "\n")
    print(f"report: {summary['out']}")


if __name__ == "__main__":
    main()
