"""Training step time in FP32 and in bf16 autocast on this CPU for the seed models at the sizes
they train at, and what `edgemed train --precision auto` picks from such timings (it times a few
steps of the run's own model before training: edgemed.train.precision). One step is what
`edgemed train` does per batch: forward, loss, backward and AdamW update of 32 real training
images in channels-last. The two precisions are timed interleaved (edgemed.bench.latency, the
project's one timing rule), on their own copies of the model and optimiser, at 2 threads.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.train_precision [--steps 12]

Results: benchmarks/results/train_precision.{json,md}.
"""

from __future__ import annotations

import argparse

from benchmarks.common import page, save_results
from edgemed.report.tables import Table

CASES = [  # (model, data set, input side): the seed benchmark's sizes (benchmarks/train_seeds.py)
    ("mednext_small", "pneumoniamnist", 28),
    ("convnext_med_28", "pneumoniamnist", 28),
    ("mednext_small", "sarscov2_ct_224", 128),
    ("mednext_base", "sarscov2_ct_224", 128),
    ("mednext_small", "sarscov2_ct_224", 224),
    ("convnext_med", "sarscov2_ct_224", 128),
    ("convnext_med", "sarscov2_ct_224", 224),
]
BATCH = 32
NOISE = 0.03  # step-time ratios closer to 1 than this are called equal


def measure(model: str, dataset: str, size: int, steps: int, threads: int) -> dict:
    import torch

    from edgemed.data.datasets import load_dataset, prepare_split
    from edgemed.data.preprocess import PreprocessSpec, spec_for
    from edgemed.models import count_macs, create_model
    from edgemed.train.precision import step_ms

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ds = load_dataset(dataset)
    base = PreprocessSpec(size=(size, size), channels=ds.channels, mean=(0.0,) * ds.channels, std=(1.0,) * ds.channels)
    x_u8, y = prepare_split(ds, "train", base, BATCH, 0)
    x = torch.from_numpy(spec_for(x_u8, base.size, ds.channels).normalize(x_u8)).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y)
    net = create_model(model, ds.num_classes, ds.channels, size)
    macs = count_macs(net, (1, ds.channels, size, size))
    ms = step_ms(net, x, y, steps, warmup=2)  # the steps `--precision auto` times before training
    return {"model": model, "dataset": dataset, "size": size, "batch": BATCH, "macs": macs, "steps": steps,
            "threads": threads, "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"], "bf16_speedup": ms["fp32"] / ms["bf16"]}


def markdown(payload: dict) -> str:
    from edgemed.train.precision import BF16_MARGIN, prefers_bf16

    # auto's rule on these timings (it times a few steps of the run's own model before training);
    # results recorded before that rule kept only whether the CPU has native bf16
    probed = payload.get("auto") == "probe"
    rows = [[r["model"], r["dataset"], f"{r['size']}²", f"{r['macs'] / 1e6:.0f} M", f"{r['fp32_ms']:.0f}",
             f"{r['bf16_ms']:.0f}", f"{r['bf16_speedup']:.2f}×"]
            + ([("bf16" if prefers_bf16({"fp32": r["fp32_ms"], "bf16": r["bf16_ms"]}) else "FP32")
                if payload["has_bf16"] else "FP32"] if probed else [])
            for r in payload["rows"]]
    auto = ("trains each model in bf16 autocast where a few timed training steps of it are at least "
            f"{BF16_MARGIN:.2f}× faster than FP32 (the last column applies that rule to these timings)"
            + ("" if payload["has_bf16"] else "; this CPU has no native bf16, so always FP32") if probed else
            "trains in " + ("bf16" if payload.get("auto_picks_bf16") else "FP32"))
    def named(keep) -> str:
        return ", ".join(f"{r['model']} at {r['size']}²" for r in payload["rows"] if keep(r["bf16_speedup"]))

    slower, faster = named(lambda s: s < 1 - NOISE), named(lambda s: s > 1 + NOISE)
    return page(payload, "Training step time: FP32 against bf16 autocast", [
        f"One training step (forward, loss, backward, AdamW update) on {payload['rows'][0]['batch']} real training "
        "images in channels-last, the two precisions timed interleaved on their own copies of the model; median of "
        f"{payload['rows'][0]['steps']} steps after 2 warm-up steps each, {payload['rows'][0]['threads']} threads. "
        f"On this machine `--precision auto` {auto}.",
        Table(["model", "data set", "input", "MACs / image", "FP32 ms / step", "bf16 ms / step", "bf16 speed-up"]
              + (["auto trains in"] if probed else []), rows, right={3, 4, 5, 6}),
        (f"bf16 is more than {NOISE:.0%} slower than FP32 here for {slower}: "
         + ("auto trains those in FP32. " if probed else "`--precision fp32` trains those faster on this host. ")
         if slower else "")
        + (f"bf16 is more than {NOISE:.0%} faster for {faster}. " if faster else "")
        + f"The other rows are within {NOISE:.0%}. The ratio depends on the CPU (AMX, AVX512-BF16 or neither), the "
        "model and its input size" + (", and it moves between runs on a shared virtual machine: what auto measures at "
                                      "the start of a run decides that run." if probed else
                                      ": measure on the host that will train.")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from edgemed.train.precision import has_bf16

    rows = []
    for model, dataset, size in CASES:
        print(f"=== {model} {dataset} {size}²", flush=True)
        rows.append(measure(model, dataset, size, args.steps, args.threads))
        print(f"fp32 {rows[-1]['fp32_ms']:.0f} ms, bf16 {rows[-1]['bf16_ms']:.0f} ms", flush=True)
    save_results("train_precision", {"rows": rows, "auto": "probe", "has_bf16": has_bf16()}, markdown)


if __name__ == "__main__":
    main()
