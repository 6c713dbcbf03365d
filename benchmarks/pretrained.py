"""Train the weights edgemed ships (issue 22): the small seed models on PneumoniaMNIST with the
seed benchmark's settings (benchmarks/train_seeds.py), stored as FP16 edgemed checkpoints inside
the package (edgemed/zoo/), each with its test metrics, data hash and the training command in its
metadata. `edgemed models` lists them; `create_model(name, pretrained="pneumoniamnist")`,
`edgemed train NAME --pretrained` and `edgemed demo` start from them.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.pretrained [--only mednext_small]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.common import WORK, command_line, save_results, system_line

SHIPPED = [  # (model, data set, settings): the seed table's PneumoniaMNIST runs
    ("mednext_small", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
    ("convnext_med_28", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    import torch

    from edgemed.bench.system import system_info
    from edgemed.checkpoint import load_checkpoint, save_checkpoint
    from edgemed.models.pretrained import ZOO, weights_path
    from edgemed.train import evaluate, train

    rows = []
    for model, dataset, settings in SHIPPED:
        if args.only and model not in args.only:
            continue
        full = WORK / "pretrained" / f"{model}-{dataset}.safetensors"
        if not full.exists():
            train(model, dataset, out=full, threads=2, force=True, **settings)
        ckpt, net = load_checkpoint(full)
        shipped = weights_path(model, dataset)
        ckpt.training = {**ckpt.training, "history": ckpt.training.get("history", [])[-3:],
                         "command": f"edgemed train {model} --dataset {dataset} "
                                    + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items()),
                         "script": "python -m benchmarks.pretrained", "stored_as": "fp16"}
        save_checkpoint(shipped, net.half(), ckpt, force=True)  # FP16: half the package size
        test = evaluate(shipped, split="test")  # what the shipped FP16 file scores, not the FP32 run
        rows.append({"model": model, "dataset": dataset, "file": str(shipped.relative_to(ZOO.parent.parent)),
                     "bytes": shipped.stat().st_size, "settings": settings,
                     "epochs_run": ckpt.training["epochs_run"], "best_epoch": ckpt.training["best_epoch"],
                     "train_minutes": round(ckpt.training["wall_time_s"] / 60, 1),
                     "fp32_test": {k: ckpt.metrics["test"][k] for k in ("accuracy", "auc")},
                     "fp16_test": {k: test[k] for k in ("accuracy", "auc")}, "data_sha256": ckpt.dataset["sha256"]})
        print(json.dumps(rows[-1], default=str)[:300], flush=True)
        del net
        torch.set_num_threads(2)
    md = ["# Shipped pretrained weights", "",
          "Trained from scratch on this CPU by `edgemed train` with the seed benchmark's settings, stored as FP16 "
          "edgemed checkpoints in the package; test metrics are of the shipped FP16 file (95 % bootstrap CIs).", "",
          f"Command: `{command_line()}`  ", f"Machine: {system_line(system_info())}", "",
          "| model | data | file size | epochs (best) | train min | test accuracy (FP16) | test AUC (FP16) | FP32 accuracy |",
          "|---|---|---:|---|---:|---|---|---:|"]
    for r in rows:
        a, u = r["fp16_test"]["accuracy"], r["fp16_test"]["auc"]
        md.append(f"| {r['model']} | {r['dataset']} | {r['bytes'] / 2**20:.1f} MiB | {r['epochs_run']} ({r['best_epoch']}) | "
                  f"{r['train_minutes']} | {a['value']:.4f} [{a['ci'][0]:.4f}, {a['ci'][1]:.4f}] | "
                  f"{u['value']:.4f} [{u['ci'][0]:.4f}, {u['ci'][1]:.4f}] | {r['fp32_test']['accuracy']['value']:.4f} |")
    save_results("pretrained", {"rows": rows}, "\n".join(md) + "\n")
    print(Path("benchmarks/results/pretrained.md").read_text() if Path("benchmarks/results/pretrained.md").exists() else "")


if __name__ == "__main__":
    main()
