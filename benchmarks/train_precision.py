"""Training step time in FP32 and in bf16 autocast on this CPU: what `edgemed train --precision
auto` (bf16 wherever the CPU has native bf16, AVX512-BF16 or AMX) gains or costs for the seed
models at the sizes they train at. One step is what `edgemed train` does per batch: forward,
loss, backward and AdamW update of 32 real training images in channels-last. The two precisions
are timed interleaved (edgemed.bench.latency, the project's one timing rule), on their own copies
of the model and optimiser, at 2 threads.

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
]
BATCH = 32
NOISE = 0.03  # step-time ratios closer to 1 than this are called equal


def measure(model: str, dataset: str, size: int, steps: int, threads: int) -> dict:
    import copy

    import torch
    import torch.nn.functional as F

    from edgemed.bench.latency import interleaved, median_ms
    from edgemed.data.datasets import load_dataset, prepare_split
    from edgemed.data.preprocess import PreprocessSpec, spec_for
    from edgemed.models import count_macs, create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ds = load_dataset(dataset)
    base = PreprocessSpec(size=(size, size), channels=ds.channels, mean=(0.0,) * ds.channels, std=(1.0,) * ds.channels)
    x_u8, y = prepare_split(ds, "train", base, BATCH, 0)
    x = torch.from_numpy(spec_for(x_u8, base.size, ds.channels).normalize(x_u8)).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(y)
    net = create_model(model, ds.num_classes, ds.channels, size)
    macs = count_macs(net, (1, ds.channels, size, size))

    def step_of(bf16: bool):
        m = copy.deepcopy(net).train().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = m(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    samples = interleaved({"fp32": step_of(False), "bf16": step_of(True)}, warmup=2, iterations=steps, turn_seconds=0)
    ms = median_ms(samples)
    return {"model": model, "dataset": dataset, "size": size, "batch": BATCH, "macs": macs, "steps": steps,
            "threads": threads, "fp32_ms": ms["fp32"], "bf16_ms": ms["bf16"], "bf16_speedup": ms["fp32"] / ms["bf16"]}


def markdown(payload: dict) -> str:
    rows = [[r["model"], r["dataset"], f"{r['size']}²", f"{r['macs'] / 1e6:.0f} M", f"{r['fp32_ms']:.0f}",
             f"{r['bf16_ms']:.0f}", f"{r['bf16_speedup']:.2f}×"] for r in payload["rows"]]
    auto = "bf16" if payload["auto_picks_bf16"] else "FP32"
    def named(keep) -> str:
        return ", ".join(f"{r['model']} at {r['size']}²" for r in payload["rows"] if keep(r["bf16_speedup"]))

    slower, faster = named(lambda s: s < 1 - NOISE), named(lambda s: s > 1 + NOISE)
    return page(payload, "Training step time: FP32 against bf16 autocast", [
        f"One training step (forward, loss, backward, AdamW update) on {payload['rows'][0]['batch']} real training "
        "images in channels-last, the two precisions timed interleaved on their own copies of the model; median of "
        f"{payload['rows'][0]['steps']} steps after 2 warm-up steps each, {payload['rows'][0]['threads']} threads. "
        f"On this machine `--precision auto` trains in {auto}.",
        Table(["model", "data set", "input", "MACs / image", "FP32 ms / step", "bf16 ms / step", "bf16 speed-up"],
              rows, right={3, 4, 5, 6}),
        (f"bf16 is more than {NOISE:.0%} slower than FP32 here for {slower}: `--precision fp32` trains those "
         "faster on this host. " if slower else "")
        + (f"bf16 is more than {NOISE:.0%} faster for {faster}. " if faster else "")
        + f"The other rows are within {NOISE:.0%}. The ratio depends on the CPU (AMX, AVX512-BF16 or neither) and "
        "the model: measure on the host that will train."])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    from edgemed.train.loop import has_bf16

    rows = []
    for model, dataset, size in CASES:
        print(f"=== {model} {dataset} {size}²", flush=True)
        rows.append(measure(model, dataset, size, args.steps, args.threads))
        print(f"fp32 {rows[-1]['fp32_ms']:.0f} ms, bf16 {rows[-1]['bf16_ms']:.0f} ms", flush=True)
    save_results("train_precision", {"rows": rows, "auto_picks_bf16": has_bf16()}, markdown)


if __name__ == "__main__":
    main()
