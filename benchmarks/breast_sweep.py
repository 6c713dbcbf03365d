"""BreastMNIST training settings for the seed models, chosen on VALIDATION only.

BreastMNIST has 546 training and 78 validation images, so the default recipe (best epoch by
validation accuracy) picks noisy epochs. This sweep tries a few settings per model and keeps
the one with the best validation AUC; the test split is read once, for the chosen setting.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.breast_sweep
"""

from __future__ import annotations

from benchmarks.common import RESULTS, WORK, fmt_ci, page, save_results
from edgemed.report.tables import Table

SETTINGS = {
    "default": dict(epochs=80, batch_size=64, patience=25),
    "auc-monitor": dict(epochs=80, batch_size=64, patience=25, monitor="auc"),
    "auc+weights+strong": dict(epochs=100, batch_size=64, patience=30, monitor="auc", class_weights=True,
                               augment="strong"),
    "auc+weights+strong+lr5e-4": dict(epochs=100, batch_size=64, patience=30, monitor="auc", class_weights=True,
                                      augment="strong", lr=5e-4),
}
MODELS = ("mednext_small", "convnext_med_28")


def markdown(payload: dict) -> str:
    rows = [[r["model"], r["setting"], f"{r['val_accuracy']:.4f}", f"{r['val_auc']:.4f}",
             "**yes**" if payload["chosen"][r["model"]] == r["setting"] else "",
             *(fmt_ci(r["test"][m]["value"], r["test"][m]["ci"], 3) for m in ("accuracy", "auc"))]
            for r in payload["rows"]]
    return page(payload, "BreastMNIST: settings chosen on validation", [
        "Chosen by validation AUC (ties: validation accuracy). Test metrics are shown for every setting "
        "for transparency but played no part in the choice.",
        Table(["model", "setting", "val acc", "val AUC", "chosen", "test acc [95% CI]", "test AUC [95% CI]"], rows,
              right={2, 3})])


def main() -> None:
    from edgemed.checkpoint import read_checkpoint
    from edgemed.train import train

    rows = []
    for model in MODELS:
        for name, cfg in SETTINGS.items():
            out = WORK / "breast_sweep" / f"{model}-{name}.safetensors"
            if not out.exists():
                train(model, "breastmnist", out=out, progress=False, **cfg)
            c = read_checkpoint(out)
            rows.append({"model": model, "setting": name, "config": cfg, "checkpoint": str(out),
                         "val_accuracy": c.metrics["val"]["accuracy"]["value"], "val_auc": c.metrics["val"]["auc"]["value"],
                         "test": {k: c.metrics["test"][k] for k in ("accuracy", "auc")},
                         "best_epoch": c.training["best_epoch"]})
    chosen = {m: max((r for r in rows if r["model"] == m), key=lambda r: (r["val_auc"], r["val_accuracy"])) for m in MODELS}
    save_results("breast_sweep", {"rows": rows, "chosen": {m: c["setting"] for m, c in chosen.items()}}, markdown)
    print((RESULTS / "breast_sweep.md").read_text())


if __name__ == "__main__":
    main()
