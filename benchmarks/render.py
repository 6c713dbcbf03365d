"""Rewrite benchmarks/results/NAME.md from the committed NAME.json through its script's
`markdown(payload)`, without measuring anything (after a change to a renderer, or to check one).

    python -m benchmarks.render [NAME ...]     # no names: every page with a results file
"""

from __future__ import annotations

import argparse
import importlib
import json

from benchmarks.common import RESULTS
from edgemed.fileio import atomic_write_text

PAGES = {  # results name → the script whose markdown(payload) renders it; imported only when rendered
    "arm_emulated": "benchmarks.arm.compare_arm",
    "arm_emulated_executorch": "benchmarks.arm.compare_arm",
    "breast_sweep": "benchmarks.breast_sweep",
    "byom": "benchmarks.byom",
    "compression": "benchmarks.compression",
    "demo_time": "benchmarks.time_demo",
    "executorch_formats": "benchmarks.executorch_formats",
    "export_formats": "benchmarks.export_formats",
    "headline": "benchmarks.headline",
    "hostile_inputs": "benchmarks.hostile_inputs",
    "install_size": "benchmarks.install_size",
    "pretrained": "benchmarks.pretrained",
    "quantize_routes": "benchmarks.quantize_routes",
    "quantize_time": "benchmarks.quantize_time",
    "recipe_runs": "benchmarks.run_recipes",
    "tflite_int8": "benchmarks.tflite_int8",
    "train_precision": "benchmarks.train_precision",
    "transfer": "benchmarks.transfer",
    "trust_harness": "benchmarks.trust_harness",
    "seed_models": "benchmarks.train_seeds",
}


def render(name: str) -> str:
    """The Markdown page of the committed benchmarks/results/NAME.json."""
    payload = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    return importlib.import_module(PAGES[name]).markdown(payload)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=", ".join(PAGES))
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in PAGES]
    if unknown:
        ap.error(f"no renderer for {', '.join(unknown)}; known: {', '.join(PAGES)}")
    for name in args.names or [n for n in PAGES if (RESULTS / f"{n}.json").exists()]:
        atomic_write_text(RESULTS / f"{name}.md", render(name))
        print(f"wrote {(RESULTS / f'{name}.md').relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
