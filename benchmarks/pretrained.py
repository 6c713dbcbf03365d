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

from benchmarks.common import RESULTS, WORK, fmt_ci, page, save_results
from edgemed.report.tables import Table

SHIPPED = [  # (model, data set, settings): runs of the seed table (benchmarks/train_seeds.py)
    ("mednext_small", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
    ("convnext_med_28", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
    # seed B on CT: the seed table's long run (its checkpoint is reused when train_seeds made it)
    ("mednext_small", "sarscov2_ct_224", dict(image_size=128, epochs=150, batch_size=32, patience=0, augment="strong")),
]
SEED_RUNS = {("mednext_small", "sarscov2_ct_224"): "mednext_small-sarscov2_ct_224-long"}


def markdown(payload: dict) -> str:
    rows = [[r["model"], r["dataset"], f"{r['bytes'] / 2**20:.1f} MiB", f"{r['epochs_run']} ({r['best_epoch']})",
             str(r["train_minutes"]), *(fmt_ci(m["value"], m["ci"]) for m in (r["fp16_test"]["accuracy"], r["fp16_test"]["auc"])),
             f"{r['fp32_test']['accuracy']['value']:.4f}"] for r in payload["rows"]]
    return page(payload, "Shipped pretrained weights", [
        "Trained from scratch on this CPU by `edgemed train` with the seed benchmark's settings, stored as FP16 "
        "edgemed checkpoints in the package; test metrics are of the shipped FP16 file (95 % bootstrap CIs). "
        "SARS-CoV-2 CT: the seed table's 150-epoch run at 128² (`benchmarks/train_seeds.py`, key "
        "`mednext_small-sarscov2_ct_224-long`), reused rather than trained again; its data set is split by image, "
        "not patient, which flatters test accuracy, and is licensed CC BY-NC-SA 4.0: weights trained on it are "
        "for non-commercial use only.",
        Table(["model", "data", "file size", "epochs (best)", "train min", "test accuracy (FP16)", "test AUC (FP16)",
               "FP32 accuracy"], rows, right={2, 4, 7})],
        command="`python -m benchmarks.pretrained` (`--only MODEL-DATASET` remakes one row)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="MODEL or MODEL-DATASET entries to (re)make; the others keep their rows")
    args = ap.parse_args()
    import torch

    from benchmarks.common import load_results
    from benchmarks.train_seeds import checkpoint_path
    from edgemed.checkpoint import load_checkpoint, save_checkpoint
    from edgemed.models.pretrained import ZOO, weights_path
    from edgemed.train import evaluate, train

    kept = {(r["model"], r["dataset"]): r for r in load_results("pretrained").get("rows", [])}
    rows = []
    for model, dataset, settings in SHIPPED:
        if args.only and model not in args.only and f"{model}-{dataset}" not in args.only:
            if (model, dataset) in kept:
                rows.append(kept[(model, dataset)])
            continue
        full = WORK / "pretrained" / f"{model}-{dataset}.safetensors"
        seed = SEED_RUNS.get((model, dataset))
        if seed and checkpoint_path(seed).exists():
            full = checkpoint_path(seed)
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
    save_results("pretrained", {"rows": rows}, markdown)
    print((RESULTS / "pretrained.md").read_text())


if __name__ == "__main__":
    main()
