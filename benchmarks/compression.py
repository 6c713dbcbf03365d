"""FP32 vs pruned vs INT8 vs pruned+INT8 for every trained seed model, per format and runtime,
measured side by side: batch-1 latency at 1 and 2 threads (all artifacts of a model interleaved
A B C … in one process), size, and accuracy/AUC on the TEST split with 95 % CIs and the drop
against PyTorch FP32 (paired bootstrap). Also times each `edgemed quantize` run.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.compression [--only KEY ...] [--rounds 200]

Needs the checkpoints of benchmarks/train_seeds.py. Work files go to benchmarks/work/compression/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import (
    WORK,
    command_line,
    fmt_ci,
    load_results,
    page,
    save_results,
    system_line,
)
from edgemed.report.tables import Table, fmt_delta

# fine-tuning epochs after pruning (distilled from the unpruned model), per data set
FINETUNE = {"pneumoniamnist": 6, "breastmnist": 15, "bloodmnist": 2, "sarscov2_ct_224": 6}  # CPU budget
TARGET_MACS = 0.5
MAX_DROP = 0.5  # points of validation accuracy for accuracy control


def prepare(key: str, ckpt_path: Path, prune_only: bool = False) -> dict:
    """Prune (+ distilled fine-tune) and quantize both models; returns paths and timings."""
    import json

    from edgemed.checkpoint import read_checkpoint
    from edgemed.compress.prune import prune
    from edgemed.compress.quantize import quantize

    folder = WORK / "compression" / key
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = read_checkpoint(ckpt_path)
    calib = Path(__file__).resolve().parent.parent / "calibration" / f"{ckpt.dataset['name']}.json"
    pruned = folder / "pruned.safetensors"
    info = {}
    if not pruned.exists():
        t = time.perf_counter()
        r = prune(ckpt_path, out=pruned, target_macs=TARGET_MACS, finetune_epochs=FINETUNE[ckpt.dataset["name"]],
                  distill=True, batch_size=32 if ckpt.image_size > 64 else 128, threads=2)
        info["prune"] = {"before": r.before, "after": r.after, "settings": r.settings,
                         "seconds": round(time.perf_counter() - t, 1)}
        (folder / "prune.json").write_text(json.dumps(info["prune"], indent=1))
    elif (folder / "prune.json").exists():  # pruned in an earlier (possibly prune-only) run
        info["prune"] = json.loads((folder / "prune.json").read_text())
    if prune_only:
        return {"folder": folder, **info}
    for name, source in (("int8", ckpt_path), ("pruned_int8", pruned)):
        out = folder / name
        if not out.exists():
            t = time.perf_counter()
            r = quantize(source, calib=calib, out=out, max_drop=MAX_DROP, metric="accuracy", threads=2)
            info[f"quantize_{name}"] = {"seconds": round(time.perf_counter() - t, 1), "results": r.rows,
                                        "recommended": r.recommended}
    return {"folder": folder, **info}


def measure(key: str, folder: Path, threads_list=(1, 2), rounds: int = 200) -> dict:

    from edgemed.bench.accuracy import accuracy_report, artifact_probs, load_split
    from edgemed.bench.latency import LatencyStats, interleaved
    from edgemed.export import load_bundle
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    full, pruned = load_bundle(folder / "int8"), load_bundle(folder / "pruned_int8")
    arts = {f"{a.id}": a for a in full.artifacts}
    arts.update({f"pruned/{a.id}": a for a in pruned.artifacts})
    fitted, labels, info = load_split(full, None, "test")
    spec = full.preprocess
    x1 = spec.normalize(fitted[:1])
    latency = {}
    for threads in threads_list:
        with quiet_native():
            sessions = {k: open_session(a, threads=threads) for k, a in arts.items()}
        calls = {k: (lambda s=s, p=s.prepare(x1): s.infer(p)) for k, s in sessions.items()}
        samples = interleaved(calls, warmup=10, iterations=rounds)
        latency[threads] = {k: LatencyStats.from_seconds(v).to_dict() for k, v in samples.items()}
        for s in sessions.values():
            s.close()
    with quiet_native():
        ref_session = open_session(arts["torch-fp32"], threads=2)
    ref_probs = artifact_probs(ref_session, spec, fitted)
    rows = []
    for k, a in arts.items():
        with quiet_native():
            s = open_session(a, threads=2)
        probs = ref_probs if k == "torch-fp32" else artifact_probs(s, spec, fitted)
        acc = accuracy_report(labels, probs, full.class_names, None if k == "torch-fp32" else ref_probs, "torch-fp32")
        base = {t: latency[t]["torch-fp32"]["p50"] for t in threads_list}
        rows.append({
            "artifact": k, "pruned": k.startswith("pruned/"), "format": a.format, "precision": a.precision,
            "size_bytes": a.size, "latency_ms": {str(t): latency[t][k] for t in threads_list},
            "speedup_vs_torch_fp32": {str(t): base[t] / latency[t][k]["p50"] for t in threads_list},
            "accuracy": acc["metrics"]["accuracy"], "auc": acc["metrics"]["auc"],
            "retention": {m: acc["retention"][m] for m in ("accuracy", "auc")} if "retention" in acc else None,
            "float_layers": a.details.get("reverted_layers") or a.details.get("ignored_layers"),
            "route": a.details.get("route"),
        })
    from edgemed.bench.system import system_info

    return {"key": key, "model": full.manifest["model"]["name"], "dataset": info["name"], "n_test": info["n"],
            "rounds": rounds, "threads": list(threads_list), "rows": rows,
            "command": command_line(), "system": system_info()}


def int8_over_fp32(rows: list[dict], threads: str) -> dict[str, float]:
    """FP32 p50 / INT8 p50 of the same format (unpruned and pruned apart): the speed INT8 buys."""
    by = {r["artifact"]: r["latency_ms"][threads]["p50"] for r in rows}
    out = {}
    for r in rows:
        if r["precision"] in ("int8", "mixed"):
            prefix = "pruned/" if r["pruned"] else ""
            fp32 = by.get(f"{prefix}{r['format']}-fp32")
            if fp32:
                out[r["artifact"]] = fp32 / by[r["artifact"]]
    return out


def _auc_delta(ret: dict | None, artifact: str) -> str:
    if not ret or ret["auc"]["difference"] is None:
        return "ref" if artifact == "torch-fp32" else "–"
    lo, hi = ret["auc"]["ci"]
    return f"{ret['auc']['difference']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def _acc_delta(ret: dict | None, artifact: str) -> str:
    if not ret or ret["accuracy"]["difference"] is None:
        return "ref" if artifact == "torch-fp32" else "–"
    return fmt_delta(100 * ret["accuracy"]["difference"], [100 * c for c in ret["accuracy"]["ci"]])


def markdown(payload: dict) -> str:
    target_macs, max_drop = payload.get("target_macs", TARGET_MACS), payload.get("max_drop", MAX_DROP)
    body = ["Latency: batch 1, median (p50) of interleaved rounds, all artifacts of one model in one process, "
            "1 and 2 threads. Speed-up is against PyTorch FP32 eager at the same thread count. Accuracy and AUC on "
            "the full test split with 95 % bootstrap CIs; Δ is against PyTorch FP32 with a paired bootstrap CI. "
            f"Pruning: Torch-Pruning L2, target {target_macs:.0%} of the MACs, distilled fine-tuning. "
            f"Quantization: `edgemed quantize --max-drop {max_drop}` (validation accuracy) with the default routes.",
            "Targets: INT8 accuracy drop ≤ 0.5 pt and AUC drop ≤ 0.005; INT8 faster than FP32 on every runtime "
            "(≥ 2× on LiteRT); pruned+INT8 convnext_med at 224 ≥ 6× faster than PyTorch FP32 eager."]
    for r in payload["runs"]:
        body.append(f"## {r['model']} on {r['dataset']} (test n={r['n_test']}, {r['rounds']} rounds)")
        # sections are measured one `--only` run at a time, possibly on another host
        machine = system_line(r["system"]) if "system" in r else r.get("machine")
        if machine:
            body.append(f"Command: `{r['command']}`  \nMachine: {machine}")
        rows = []
        for row in r["rows"]:
            lat, sp, ret = row["latency_ms"], row["speedup_vs_torch_fp32"], row["retention"]
            rows.append([row["artifact"], f"{row['size_bytes'] / 2**20:.2f} MiB", f"{lat['1']['p50']:.3f} ms",
                         f"{sp['1']:.2f}×", f"{lat['2']['p50']:.3f} ms", f"{sp['2']:.2f}×",
                         fmt_ci(row["accuracy"]["value"], row["accuracy"]["ci"], 4, 3), _acc_delta(ret, row["artifact"]),
                         fmt_ci(row["auc"]["value"], row["auc"]["ci"], 4, 3), _auc_delta(ret, row["artifact"]),
                         ", ".join(row["float_layers"] or []) or "–"])
        body.append(Table(["artifact", "size", "p50 1 thr", "speed-up 1 thr", "p50 2 thr", "speed-up 2 thr",
                           "accuracy [95% CI]", "Δacc pt [95% CI]", "AUC [95% CI]", "ΔAUC [95% CI]", "float layers"],
                          rows, right={1, 2, 3, 4, 5}))
        ratios = {t: int8_over_fp32(r["rows"], t) for t in ("1", "2")}
        body.append("INT8 speed-up over the FP32 file of the same format and runtime (1 thread / 2 threads): "
                    + "; ".join(f"{k} {v:.2f}× / {ratios['2'][k]:.2f}×" for k, v in ratios["1"].items()))
        p = payload["prepare"].get(r["key"], {})
        notes = []  # lines of one paragraph
        times = [f"{n}: {p[f'quantize_{n}']['seconds']:.0f} s" for n in ("int8", "pruned_int8") if f"quantize_{n}" in p]
        if times:
            notes.append("`edgemed quantize` wall time (3 formats, FP32 references, accuracy control, 2 threads): "
                         + "; ".join(times))
        if "prune" in p:
            b, a, pr = p["prune"]["before"], p["prune"]["after"], p["prune"]
            notes.append(f"Pruning: params {b['params'] / 1e6:.2f} → {a['params'] / 1e6:.2f} M, MACs {b['macs'] / 1e6:.0f} → "
                         f"{a['macs'] / 1e6:.0f} M, val accuracy {b['val_accuracy']:.4f} → {a['val_accuracy']:.4f} "
                         + (f"({pr['seconds']:.0f} s with {pr['settings']['finetune_epochs']} distilled fine-tuning epochs)"
                            if pr.get("seconds") else "(wall time not recorded)")
                         + (f". {pr['note']}" if pr.get("note") else ""))
        if notes:
            body.append("\n".join(notes))
    return page(payload, "Compression: FP32 vs pruned vs INT8 vs pruned+INT8", body)


def main() -> None:
    from benchmarks.train_seeds import in_seed_order, seed_checkpoints

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--prune-only", action="store_true", help="only prune (+ fine-tune); measure nothing")
    ap.add_argument("--prune-note", help="a remark shown with the pruning record of the models in --only (e.g. what shared the cores)")
    args = ap.parse_args()
    previous = load_results("compression")
    done = {r["key"]: r for r in previous.get("runs", [])}
    prep = previous.get("prepare", {})
    for key, ckpt in seed_checkpoints(args.only):
        info = prepare(key, ckpt, args.prune_only)
        if args.prune_note and "prune" in info:
            info["prune"]["note"] = args.prune_note
        folder = info.pop("folder")
        if args.prune_only:
            continue
        prep[key] = {**prep.get(key, {}), **info}
        done[key] = measure(key, folder, rounds=args.rounds)
        runs = in_seed_order(done)
        save_results("compression", {"runs": runs, "prepare": prep, "target_macs": TARGET_MACS, "max_drop": MAX_DROP},
                     markdown)


if __name__ == "__main__":
    main()
