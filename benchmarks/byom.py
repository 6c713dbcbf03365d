"""Bring your own model (issue 20): two classifiers edgemed never trained, through the installed
`edgemed` command as their users would run it.

1. A small CNN (benchmarks/byom_nets.py:build) trained on PneumoniaMNIST by a plain PyTorch loop
   in this script (not edgemed's trainer) and saved with `torch.save(model.state_dict())` under a
   DataParallel-style `module.` prefix and a `model_state_dict` key, as training loops do:
   import → prune (half the MACs, distilled fine-tuning) → quantize (accuracy control, 0.5 pt)
   → bench.
2. A VGG-style net (byom_nets.py:build_vgg) trained on BloodMNIST (RGB, 8 classes) the same way
   and exported by hand with `torch.onnx.export`; edgemed sees only the ONNX file:
   import → quantize (accuracy control) → bench.

Bench: test split, batch 1, p50 of interleaved turns, accuracy against the FP32 reference with a
paired-bootstrap CI; the speed-up is each artifact's p50 against the reference's in the same run.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.byom [--threads 2] [--epochs 6]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, WORK, fmt_ci, page, run_edgemed, save_results, steps_table
from edgemed.report.tables import Table, fmt_delta

NETS = Path(__file__).resolve().parent / "byom_nets.py"
MAX_DROP = 0.5


def train_plain(build, dataset: str, epochs: int, seed: int = 0):
    """The user's own training loop: Adam, cross-entropy, inputs scaled to [-1, 1]; best on val."""
    import copy

    import torch

    from edgemed.data.datasets import load_dataset

    torch.manual_seed(seed)
    ds = load_dataset(dataset)

    def tensors(split):
        x, y = ds.split(split)
        x = torch.from_numpy(np.asarray(x, np.float32) / 127.5 - 1.0)
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return x.contiguous(), torch.from_numpy(np.asarray(y, np.int64))

    (xt, yt), (xv, yv) = tensors("train"), tensors("val")
    model = build(ds.num_classes, xt.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    best, best_acc, t0 = None, -1.0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(xt)).split(128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = float((torch.cat([model(b) for b in xv.split(512)]).argmax(1) == yv).float().mean())
        print(f"  epoch {epoch + 1}/{epochs}: val accuracy {acc:.4f}", flush=True)
        if acc > best_acc:
            best, best_acc = copy.deepcopy(model.state_dict()), acc
    model.load_state_dict(best)
    return model.eval(), {"dataset": dataset, "epochs": epochs, "best_val_accuracy": best_acc,
                          "seconds": round(time.perf_counter() - t0, 1), "optimizer": "Adam 2e-3, cosine",
                          "input": "x / 127.5 - 1"}


def rows_of(results: Path) -> list[dict]:
    d = json.loads(results.read_text())
    out = []
    for r in d["rows"]:
        acc = (r.get("accuracy") or {})
        ret = (acc.get("retention") or {}).get("accuracy") or {}
        out.append({"artifact": r["name"], "format": r["format"], "precision": r["precision"],
                    "threads": r["threads"], "p50_ms": r["latency_ms"]["p50"], "size_mb": r["size_bytes"] / 2**20,
                    "speedup": r["ratio_to_baseline"]["speedup_p50"], "accuracy": acc["metrics"]["accuracy"]["value"],
                    "accuracy_ci": acc["metrics"]["accuracy"]["ci"], "delta_points": 100 * ret["difference"] if ret else 0.0,
                    "delta_ci": [100 * c for c in ret["ci"]] if ret.get("ci") else None, "baseline": d["baseline"]})
    return out


def markdown(payload: dict) -> str:
    body = ["Two classifiers edgemed never trained, each trained by a plain PyTorch loop in "
            "`benchmarks/byom.py` and handed to the installed `edgemed` command as their users would. "
            f"Bench: test split, batch 1, {payload['threads']} threads, {payload.get('duration_s', 5.0):g} s of "
            "interleaved turns per artifact, p50; speed-up against the FP32 reference of the same run; Δ accuracy "
            "against it with a 95 % paired-bootstrap CI. Accuracy control ran on the validation split "
            f"(bound {payload['max_drop_points']:g} pt)."]
    for key, m in payload["models"].items():
        t = m["training"]
        body += [f"## {key}",
                 f"Trained on {t['dataset']} for {t['epochs']} epochs ({t['optimizer']}; {t['seconds']:.0f} s), "
                 f"best val accuracy {t['best_val_accuracy']:.4f}; {m['params']:,} parameters.",
                 steps_table(m["steps"])]
        for label in [k for k in m if k in ("pruned_int8", "unpruned_fp32", "int8")]:
            rows = [[r["artifact"], str(r["threads"]), f"{r['p50_ms']:.3f}", f"{r['speedup']:.2f}×", f"{r['size_mb']:.2f}",
                     fmt_ci(r["accuracy"], r["accuracy_ci"]), fmt_delta(r["delta_points"], r["delta_ci"])]
                    for r in m[label]]
            body += [f"**{label.replace('_', ' ')}** (reference: {m[label][0]['baseline']})",
                     Table(["artifact", "threads", "p50 ms", "speed-up", "MB", "test accuracy [95 % CI]",
                            "Δ vs FP32 (pt) [95 % CI]"], rows, right={1, 2, 3, 4})]
    return page(payload, "Bring your own model", body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--duration", type=float, default=5.0)
    args = ap.parse_args()
    import importlib.util

    import torch

    from edgemed.compress.calibration import build_calibration

    spec = importlib.util.spec_from_file_location("byom_nets", NETS)
    nets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    work = WORK / "byom"
    work.mkdir(parents=True, exist_ok=True)
    cal = {d: work / f"calibration-{d}.json" for d in ("pneumoniamnist", "bloodmnist")}
    for d, p in cal.items():
        if not p.exists():
            build_calibration(d, size=300, out=p)
    bench = ["--threads", args.threads, "--duration", args.duration, "--large-batch", 0, "--split", "test"]
    out: dict = {"threads": args.threads, "duration_s": args.duration, "max_drop_points": MAX_DROP, "models": {}}

    # 1. PyTorch weights from a plain training loop
    log: list = []
    print("== user 1: small CNN, PyTorch state dict", flush=True)
    model, training = train_plain(nets.build, "pneumoniamnist", args.epochs)
    weights = work / "cnn_weights.pt"
    torch.save({"epoch": args.epochs, "model_state_dict": {"module." + k: v for k, v in model.state_dict().items()}},
               weights)
    ck, pruned, q = work / "cnn.safetensors", work / "cnn_pruned.safetensors", work / "cnn_int8"
    run_edgemed("import", f"{NETS}:build", "--weights", weights, "--classes", "normal,pneumonia", "--input-size", 28,
            "--channels", 1, "--mean", 0.5, "--std", 0.5, "--dataset", "pneumoniamnist", "--out", ck, "--force", log=log)
    run_edgemed("prune", ck, "--target-macs", 0.5, "--finetune-epochs", 2, "--distill", "--out", pruned, "--force", log=log)
    run_edgemed("quantize", pruned, "--calib", cal["pneumoniamnist"], "--formats", "openvino,onnx,tflite",
            "--max-drop", MAX_DROP, "--out", q, "--force", log=log)
    run_edgemed("bench", q, *bench, "--out", work / "cnn_bench.json", "--force", log=log)
    # the unpruned import as well, so pruning's share of the speed-up is visible
    run_edgemed("export", ck, "--formats", "onnx,openvino", "--out", work / "cnn_fp32", "--force", log=log)
    run_edgemed("bench", work / "cnn_fp32", *bench, "--out", work / "cnn_fp32_bench.json", "--force", log=log)
    out["models"]["cnn-pytorch-weights"] = {
        "training": training, "params": sum(p.numel() for p in model.parameters()), "steps": log,
        "pruned_int8": rows_of(work / "cnn_bench.json"), "unpruned_fp32": rows_of(work / "cnn_fp32_bench.json")}

    # 2. an ONNX file exported by hand from another model
    log = []
    print("== user 2: VGG-style net, ONNX only", flush=True)
    model, training = train_plain(nets.build_vgg, "bloodmnist", args.epochs)
    onnx_file = work / "vgg.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 28, 28),), str(onnx_file), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
                      opset_version=17, dynamo=False)
    ob, oq = work / "vgg_bundle", work / "vgg_int8"
    names = ",".join(__import__("edgemed.data.datasets", fromlist=["x"]).load_dataset("bloodmnist").class_names)
    run_edgemed("import", onnx_file, "--classes", names, "--mean", 0.5, "--std", 0.5, "--dataset", "bloodmnist",
            "--out", ob, "--force", log=log)
    run_edgemed("quantize", ob, "--calib", cal["bloodmnist"], "--max-drop", MAX_DROP, "--out", oq, "--force", log=log)
    run_edgemed("bench", oq, *bench, "--out", work / "vgg_bench.json", "--force", log=log)
    out["models"]["vgg-onnx"] = {"training": training, "params": sum(p.numel() for p in model.parameters()),
                                 "steps": log, "int8": rows_of(work / "vgg_bench.json")}

    save_results("byom", out, markdown)
    print((RESULTS / "byom.md").read_text())


if __name__ == "__main__":
    main()
