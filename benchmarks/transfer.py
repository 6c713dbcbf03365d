"""Does starting from edgemed's shipped weights help on a user's own task? The same model trained
on BreastMNIST (a task none of the shipped weights saw: other classes, 546 training images) from
scratch and from the shipped PneumoniaMNIST weights (`edgemed train MODEL --pretrained
pneumoniamnist --dataset breastmnist`: the backbone carries over, the head is new for the two
BreastMNIST classes), with the seed benchmark's BreastMNIST settings for both and several seeds.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.transfer [--models mednext_small] [--seeds 0 1 2]

Results: benchmarks/results/transfer.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics

from benchmarks.common import WORK, fmt_ci, load_results, page, save_results
from benchmarks.train_seeds import MEDMNIST_SETTINGS
from edgemed.report.tables import Table

DATASET, SOURCE = "breastmnist", "pneumoniamnist"
STARTS = ("scratch", "pretrained")


def run(model: str, start: str, seed: int, threads: int) -> dict:
    from edgemed.checkpoint import read_checkpoint
    from edgemed.train import train

    out = WORK / "transfer" / f"{model}-{DATASET}-{start}-s{seed}.safetensors"
    r = train(model, DATASET, out=out, seed=seed, threads=threads, force=True, progress=False,
              pretrained=SOURCE if start == "pretrained" else None, **MEDMNIST_SETTINGS[DATASET])
    ck = read_checkpoint(r.checkpoint)
    t = ck.training
    return {"model": model, "start": start, "seed": seed, "epochs_run": t["epochs_run"], "best_epoch": t["best_epoch"],
            "minutes": round(t["wall_time_s"] / 60, 1), "precision": t["precision"],
            "val_accuracy": ck.metrics["val"]["accuracy"]["value"],
            "test": {k: ck.metrics["test"][k] for k in ("accuracy", "auc", "balanced_accuracy")},
            "new_head": ck.lineage[-1].get("new_head") if start == "pretrained" else None}


def markdown(payload: dict) -> str:
    rows = [[r["model"], r["start"], str(r["seed"]), f"{r['epochs_run']} ({r['best_epoch']})", str(r["minutes"]),
             f"{r['val_accuracy']:.3f}", *(fmt_ci(r["test"][k]["value"], r["test"][k]["ci"], 3)
                                           for k in ("accuracy", "auc", "balanced_accuracy"))]
            for r in payload["rows"]]
    means = []
    for model in dict.fromkeys(r["model"] for r in payload["rows"]):
        arm = {s: [r for r in payload["rows"] if r["model"] == model and r["start"] == s] for s in STARTS}
        if all(arm.values()):
            m = {s: {k: statistics.mean(r["test"][k]["value"] for r in arm[s]) for k in ("accuracy", "auc")}
                 for s in STARTS}
            means.append(f"{model}, mean over seeds {', '.join(str(r['seed']) for r in arm['pretrained'])}: test "
                         f"accuracy {m['scratch']['accuracy']:.3f} from scratch, {m['pretrained']['accuracy']:.3f} from "
                         f"the shipped weights ({100 * (m['pretrained']['accuracy'] - m['scratch']['accuracy']):+.1f} pt); "
                         f"AUC {m['scratch']['auc']:.3f} against {m['pretrained']['auc']:.3f}.")
    s = MEDMNIST_SETTINGS[DATASET]
    return page(payload, "Fine-tuning the shipped weights on another task", [
        f"Each model trained on {DATASET} ({s['epochs']} epochs at most, batch {s['batch_size']}, early stop after "
        f"{s['patience']} epochs without gain: the seed benchmark's settings) from random weights (scratch) and from "
        f"the weights edgemed ships for it on {SOURCE} (pretrained: every layer but the new two-class head). "
        "Best epoch on validation; test metrics with 95 % bootstrap CIs on the 156 test images; minutes are wall "
        "time on this machine, 2 threads.",
        Table(["model", "start", "seed", "epochs (best)", "min", "val accuracy", "test accuracy", "test AUC",
               "test balanced accuracy"], rows, right={2, 4, 5}),
        *means,
        "With 156 test images one image is 0.6 pt, and the runs of one arm spread over several points: read the "
        "means with the per-run CIs."])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["mednext_small"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    kept = [r for r in load_results("transfer").get("rows", []) if r["model"] not in args.models]
    rows = []
    for model in args.models:
        for seed in args.seeds:
            for start in STARTS:  # the two arms of a seed one after the other: the same machine state
                print(f"=== {model} {start} seed {seed}", flush=True)
                rows.append(run(model, start, seed, args.threads))
                print(rows[-1], flush=True)
    save_results("transfer", {"rows": kept + rows}, markdown)


if __name__ == "__main__":
    main()
