"""Train the weights edgemed ships (issue 22): the small seed models on PneumoniaMNIST with the
seed benchmark's settings (benchmarks/train_seeds.py), stored as FP16 edgemed checkpoints inside
the package (edgemed/zoo/), each with its test metrics, data hash and the training command in its
metadata. `edgemed models` lists them; `create_model(name, pretrained="pneumoniamnist")`,
`edgemed train NAME --pretrained` and `edgemed demo` start from them.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.pretrained [--only mednext_small]
    python -m benchmarks.pretrained --restamp   # shipped files: the data set by name, weights untouched
"""

from __future__ import annotations

import argparse
import json

from benchmarks.common import RESULTS, WORK, fmt_ci, page, save_results
from edgemed.report.tables import Table

SHIPPED = [  # (model, data set, settings of one `edgemed train`, or the key of a seed table run)
    ("mednext_small", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
    ("convnext_med_28", "pneumoniamnist", dict(epochs=30, batch_size=128, patience=10)),
    # seed B on CT: the seed table's best run (benchmarks/train_seeds.py; its checkpoints are reused
    # where train_seeds made them, else its chain of runs is trained here)
    ("mednext_small", "sarscov2_ct_224", "mednext_small-sarscov2_ct_224-light"),
]


def markdown(payload: dict) -> str:
    rows = [[r["model"], r["dataset"], f"{r['bytes'] / 2**20:.1f} MiB", f"{r['epochs_run']} ({r['best_epoch']})",
             str(r["train_minutes"]), *(fmt_ci(m["value"], m["ci"]) for m in (r["fp16_test"]["accuracy"], r["fp16_test"]["auc"])),
             f"{r['fp32_test']['accuracy']['value']:.4f}"] for r in payload["rows"]]
    return page(payload, "Shipped pretrained weights", [
        "Trained from scratch on this CPU by `edgemed train` with the seed benchmark's settings, stored as FP16 "
        "edgemed checkpoints in the package; test metrics are of the shipped FP16 file (95 % bootstrap CIs).",
        *(f"{r['model']} on {r['dataset']}: the seed table's run `{r['settings']}` (benchmarks/train_seeds.py, "
          "reused rather than trained again), whose chain of `edgemed train` commands the file records (its row: each run's epochs, the best "
          "epoch of the last, the minutes of them all)."
          for r in payload["rows"] if isinstance(r["settings"], str)),
        *(f"{r['file']} was restamped by `python -m benchmarks.pretrained --restamp` (its data source recorded by "
          f"name; tensors unchanged): sha256 {x['sha256_before'][:12]}… → {x['sha256_after'][:12]}…; results "
          "measured before cite the first." for r in payload["rows"] for x in r.get("restamped", [])),
        "SARS-CoV-2 CT is split by image, not patient, which flatters test accuracy, and is licensed CC BY-NC-SA "
        "4.0: weights trained on it are for non-commercial use only.",
        Table(["model", "data", "file size", "epochs (best)", "train min", "test accuracy (FP16)", "test AUC (FP16)",
               "FP32 accuracy"], rows, right={2, 4, 7})],
        command="`python -m benchmarks.pretrained` (`--only MODEL-DATASET` remakes one row)")


def catalog_source(dataset: dict) -> dict:
    """A shipped file names its catalog data set, not the folder it was trained from (found again
    through the data directory on any machine; runs before `recorded_source` wrote the path)."""
    from edgemed.data.catalog import CATALOG

    name = dataset.get("name")
    return {**dataset, "source": name} if name in CATALOG else dataset


def restamp() -> None:
    """Rewrite the shipped files' data source as catalog_source does, tensors byte for byte as they
    were (no retraining: the CT run's chain takes over two hours); pretrained.json's sizes follow,
    and it records each file's sha256 before and after (results measured on the old file cite it)."""
    import hashlib

    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from benchmarks.common import load_results
    from edgemed.fileio import atomic_path, sha256_file
    from edgemed.models.pretrained import ZOO

    payload = load_results("pretrained")
    for path in sorted(ZOO.glob("*.safetensors")):
        with safe_open(str(path), "np") as f:
            metadata = f.metadata()
        meta = json.loads(metadata["edgemed"])
        if catalog_source(meta["dataset"]) == meta["dataset"]:
            continue
        tensors = load_file(str(path))
        before, old_sha = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in tensors.items()}, sha256_file(path)
        meta["dataset"] = catalog_source(meta["dataset"])
        with atomic_path(path) as tmp:  # checked before it replaces the shipped file
            save_file(tensors, str(tmp), metadata={**metadata, "edgemed": json.dumps(meta)})
            if before != {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in load_file(str(tmp)).items()}:
                raise SystemExit(f"{path.name}: the rewritten tensors differ; nothing replaced")
        for row in payload.get("rows", []):
            if row["file"].endswith(path.name):
                row["bytes"] = path.stat().st_size
                row.setdefault("restamped", []).append({"sha256_before": old_sha, "sha256_after": sha256_file(path),
                                                        "change": "dataset.source: the catalog name"})
        print(f"{path.name}: data source {meta['dataset']['source']}")
    save_results("pretrained", payload, markdown)  # the training's own command and machine stay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="MODEL or MODEL-DATASET entries to (re)make; the others keep their rows")
    ap.add_argument("--restamp", action="store_true", help="only rewrite the shipped files' data source by name")
    args = ap.parse_args()
    if args.restamp:
        return restamp()
    import torch

    from benchmarks.common import load_results
    from benchmarks.train_seeds import (
        chain,
        checkpoint_path,
        run_one,
        train_command,
        train_commands,
    )
    from edgemed.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
    from edgemed.models.pretrained import ZOO, weights_path
    from edgemed.train import evaluate, train

    kept = {(r["model"], r["dataset"]): r for r in load_results("pretrained").get("rows", [])}
    rows = []
    for model, dataset, settings in SHIPPED:
        if args.only and model not in args.only and f"{model}-{dataset}" not in args.only:
            if (model, dataset) in kept:
                rows.append(kept[(model, dataset)])
            continue
        if isinstance(settings, str):  # a seed table run
            recorded = {r["key"]: r for r in load_results("seed_models").get("runs", [])}
            made = checkpoint_path(settings).exists()  # then the runs before it are needed only for their records
            for cfg in chain(settings):  # run_one trains a run only when its checkpoint is missing
                if cfg["key"] not in recorded or not (made or checkpoint_path(cfg["key"]).exists()):
                    recorded[cfg["key"]] = run_one(cfg, retrain=False, threads=2)
            full, commands = checkpoint_path(settings), train_commands(settings)
            runs = [recorded[c["key"]] for c in chain(settings)]
        else:
            full = WORK / "pretrained" / f"{model}-{dataset}.safetensors"
            commands = [train_command(dict(key=full.stem, model=model, dataset=dataset, **settings))]
            if not full.exists():
                train(model, dataset, out=full, threads=2, force=True, **settings)
            runs = [read_checkpoint(full).training]  # epochs_run and wall_time_s, as a seed record has them
        ckpt, net = load_checkpoint(full)
        shipped = weights_path(model, dataset)
        ckpt.dataset = catalog_source(ckpt.dataset)
        ckpt.training = {**ckpt.training, "history": ckpt.training.get("history", [])[-3:],
                         "command": " && ".join(commands),
                         "script": "python -m benchmarks.pretrained", "stored_as": "fp16"}
        save_checkpoint(shipped, net.half(), ckpt, force=True)  # FP16: half the package size
        test = evaluate(shipped, split="test")  # what the shipped FP16 file scores, not the FP32 run
        rows.append({"model": model, "dataset": dataset, "file": str(shipped.relative_to(ZOO.parent.parent)),
                     "bytes": shipped.stat().st_size, "settings": settings,
                     # a chain of runs: each run's epochs, and the minutes of them all
                     "epochs_run": " + ".join(str(t["epochs_run"]) for t in runs), "best_epoch": ckpt.training["best_epoch"],
                     "train_minutes": round(sum(t["wall_time_s"] for t in runs) / 60, 1),
                     "fp32_test": {k: ckpt.metrics["test"][k] for k in ("accuracy", "auc")},
                     "fp16_test": {k: test[k] for k in ("accuracy", "auc")}, "data_sha256": ckpt.dataset["sha256"]})
        print(json.dumps(rows[-1], default=str)[:300], flush=True)
        del net
        torch.set_num_threads(2)
    save_results("pretrained", {"rows": rows}, markdown)
    print((RESULTS / "pretrained.md").read_text())


if __name__ == "__main__":
    main()
