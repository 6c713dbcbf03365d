"""Bench every bundle the compression benchmark produced (INT8 and pruned+INT8, each with its FP32
references) with the harness — `edgemed bench` — on this machine, then merge them with
`edgemed report` into benchmarks/results/bench/ (one results JSON per bundle, report.md,
report.html with plots, results.csv).

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.bench_bundles [--only KEY ...] [--duration 3]

Needs benchmarks/compression.py to have run (bundles in benchmarks/work/compression/).
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.common import RESULTS, WORK, command_line

OUT = RESULTS / "bench"
VARIANTS = ("int8", "pruned_int8")


def bundles(only: list[str] | None):
    from benchmarks.train_seeds import RUNS

    for cfg in RUNS:
        key = cfg["key"]
        if only and not any(s in key for s in only):
            continue
        for variant in VARIANTS:
            folder = WORK / "compression" / key / variant
            if (folder / "edgemed.json").exists():
                yield f"{key}-{variant}", folder


def main() -> None:
    from edgemed.bench import bench
    from edgemed.report import report

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of timed calls per artifact")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for name, folder in bundles(args.only):
        print(f"=== {name}", flush=True)
        out = OUT / f"{name}.json"
        bench(folder, threads=args.threads, duration=args.duration, split="test", out=out, force=True)
        written.append(out)
    if not written:
        sys.exit("no bundles: run benchmarks/compression.py first")
    # every results file on disk, so a run with --only still reports all bundles measured so far
    summary = report(sorted(OUT.glob("*.json")), OUT / "report", max_drop=0.5, metric="accuracy", force=True)
    (OUT / "COMMAND.txt").write_text(command_line() + "\n")
    print(f"report: {summary['out']}")


if __name__ == "__main__":
    main()
