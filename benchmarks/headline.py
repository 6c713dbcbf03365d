"""Headline results: every trained seed model through `edgemed optimize`, then FP32 vs the best
deployment per runtime, measured side by side: batch-1 latency ratio to PyTorch FP32 eager
(interleaved in one process), size ratio, and TEST-split accuracy/AUC with 95 % CIs and retention
(paired bootstrap against PyTorch FP32). The search itself only ever sees the validation split.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.headline [--only KEY ...] [--budget 12]

Targets: seed A (convnext_med, 224², ConvNeXt-Tiny width) on CT ≥ 0.97 accuracy from scratch; best
deployment ≥ 6× faster than PyTorch FP32 eager with accuracy drop ≤ 0.5 pt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import WORK, fmt_ci, load_results, page, save_results
from edgemed.report.tables import Table, fmt_delta

MAX_DROP = 0.5
BUDGET = {"convnext_med-sarscov2_ct_224": 25, "mednext_small-sarscov2_ct_224": 4}  # minutes (2-core CPU budget); others: --budget
# at 224² one candidate costs minutes here: search one preset, and instead of pruning inside the
# search (1 fine-tuning epoch in budget: −3.2 pt) take the pruned checkpoint of compression.py
# (50 % of the MACs, 6 distilled epochs; compression.FINETUNE) as a given variant
SEARCH = {"convnext_med-sarscov2_ct_224": {"presets": ("performance",), "prune_levels": (None,)}}
GIVEN_PRUNED = {"convnext_med-sarscov2_ct_224": WORK / "compression" / "convnext_med-sarscov2_ct_224" / "pruned.safetensors"}


def run_optimize(key: str, ckpt: Path, budget: float) -> Path:
    from edgemed.pipeline.optimize import optimize

    out = WORK / "headline" / key
    given = [GIVEN_PRUNED[key]] if key in GIVEN_PRUNED else []
    if any(not p.exists() for p in given):
        sys.exit(f"{given[0]} is missing: run `python -m benchmarks.compression --only {key} --prune-only` first")
    search = out / "optimize.json"
    # an earlier search is reused only if no input changed since (a re-pruned variant must be searched again)
    if not search.exists() or any(p.stat().st_mtime > search.stat().st_mtime for p in [ckpt, *given]):
        optimize(ckpt, max_drop=MAX_DROP, metric="accuracy", budget_minutes=budget, out=out, force=True,
                 finetune_epochs=1 if "sarscov2" in key else 3, pruned=given, **SEARCH.get(key, {}))
    return out


def measure(key: str, ckpt_path: Path, opt: Path, rounds: int) -> dict:
    import torch

    from edgemed.bench.accuracy import accuracy_report, artifact_probs
    from edgemed.bench.latency import LatencyStats, interleaved
    from edgemed.checkpoint import load_checkpoint
    from edgemed.data.catalog import CATALOG
    from edgemed.data.datasets import load_dataset, prepare_split
    from edgemed.export import load_bundle
    from edgemed.fileio import quiet_native
    from edgemed.runtime import open_session

    summary = json.loads((opt / "optimize.json").read_text())
    ckpt, model = load_checkpoint(ckpt_path)
    name = ckpt.dataset["name"]
    ds = load_dataset(name if name in CATALOG else ckpt.dataset["source"])
    x_u8, y = prepare_split(ds, "test", ckpt.preprocess)
    x = ckpt.preprocess.normalize(x_u8)
    best = {}
    for p in summary["points"]:  # fastest point within the bound (on validation), per runtime
        if p["meets_bound"] and (p["runtime"] not in best or p["p50_ms"] < best[p["runtime"]]["p50_ms"]):
            best[p["runtime"]] = p
    chosen = {"torch-fp32": None, **{f"best@{rt}": p for rt, p in sorted(best.items())}}
    threads = {k: (p["threads"] if p else 2) for k, p in chosen.items()}
    sessions, sizes = {}, {}
    with quiet_native():
        for k, p in chosen.items():
            if p is None:
                sessions[k] = open_session(ckpt_path, threads=2)
                sizes[k] = ckpt_path.stat().st_size
            else:
                a = load_bundle(opt / p["bundle"], verify=False).artifact(p["artifact"])  # relative to opt/
                sessions[k] = open_session(a, threads=p["threads"], runtime=p["runtime"])
                sizes[k] = a.size
    x1 = x[:1]
    calls = {k: (lambda s=s, q=s.prepare(x1): s.infer(q)) for k, s in sessions.items()}
    # each point runs with its own thread count; interleaving still gives both the same background
    samples = interleaved(calls, warmup=10, iterations=rounds)
    torch.set_num_threads(2)
    ref = artifact_probs(sessions["torch-fp32"], ckpt.preprocess, x_u8)
    rows = []
    for k, p in chosen.items():
        probs = ref if p is None else artifact_probs(sessions[k], ckpt.preprocess, x_u8)
        acc = accuracy_report(y, probs, ckpt.class_names, None if p is None else ref, "torch-fp32")
        lat = LatencyStats.from_seconds(samples[k]).to_dict()
        rows.append({"name": k, "point": p, "threads": threads[k], "latency_ms": lat, "size_bytes": sizes[k],
                     "accuracy": acc["metrics"]["accuracy"], "auc": acc["metrics"]["auc"],
                     "retention": acc.get("retention")})
    base = rows[0]
    for r in rows:
        r["speedup"] = base["latency_ms"]["p50"] / r["latency_ms"]["p50"]
        r["size_ratio"] = r["size_bytes"] / base["size_bytes"]
        d = (r["retention"] or {}).get("accuracy", {}).get("difference")
        r["meets_target"] = None if r["point"] is None else bool(r["speedup"] >= 6 and d is not None and -100 * d <= MAX_DROP)
    return {"key": key, "model": ckpt.model_name, "dataset": name, "image_size": ckpt.image_size, "n_test": int(len(y)),
            "rounds": rounds, "rows": rows, "optimize": {"recommended": summary["recommended"]["id"],
                                                        "bound_met": summary["bound_met"], "notes": summary["notes"],
                                                        "budget_minutes": summary["budget_minutes"]}}


def run_command(key: str, budget: float, program: str = "python -m benchmarks.headline") -> str:
    """The command that reproduces one model's run (models are run one at a time)."""
    return f"{program} --only {key}" + ("" if key in BUDGET else f" --budget {budget:g}")


def _row(row: dict) -> list[str]:
    p, ret = row["point"], row["retention"]
    da, dauc = (ret["accuracy"], ret["auc"]) if ret else (None, None)
    return [row["name"], p["candidate"] + ":" + p["artifact"] if p else "torch-fp32 (eager)", str(row["threads"]),
            f"{row['latency_ms']['p50']:.3f}", f"{row['speedup']:.2f}×", f"{row['size_ratio']:.2f}",
            fmt_ci(row["accuracy"]["value"], row["accuracy"]["ci"], 4, 3),
            fmt_delta(100 * da["difference"], [100 * c for c in da["ci"]]) if da else "ref",
            fmt_ci(row["auc"]["value"], row["auc"]["ci"], 4, 3),
            f"{dauc['difference']:+.4f}" if dauc and dauc["difference"] is not None else "ref",
            "" if row["meets_target"] is None else "yes" if row["meets_target"] else "no"]


def markdown(payload: dict) -> str:
    program = payload["command"].split(" --")[0]  # how the script was run: `python -m benchmarks.headline`
    body = ["Each model went through `edgemed optimize --max-drop 0.5 --metric accuracy` (search on the validation "
            "split). Per runtime, the fastest point within the bound is measured here against PyTorch FP32 eager: "
            "batch-1 latency (median of interleaved rounds in one process, each at its chosen thread count; PyTorch "
            "at 2 threads), size, and TEST-split accuracy/AUC with 95 % bootstrap CIs; Δ is the paired difference "
            "to PyTorch FP32. Target: ≥ 6× faster with accuracy drop ≤ 0.5 pt."]
    for r in payload["runs"]:
        opt = r["optimize"]
        command = r.get("command") or run_command(r["key"], opt["budget_minutes"], program)  # older runs lack it
        body += [f"## {r['model']} ({r['image_size']}²) on {r['dataset']} (test n={r['n_test']})",
                 f"Command: `{command}`",
                 Table(["deployment", "artifact", "threads", "p50 ms", "speed-up", "size ratio", "accuracy [95% CI]",
                        "Δacc pt [95% CI]", "AUC [95% CI]", "ΔAUC", "≥ 6× and ≤ 0.5 pt"],
                       [_row(row) for row in r["rows"]], right={2, 3, 4, 5}),
                 f"Search: {opt['budget_minutes']} min budget; recommended `{opt['recommended']}`"
                 + ("" if opt["bound_met"] else " (BOUND NOT MET)") + (f"; {'; '.join(opt['notes'])}" if opt["notes"] else "")]
    # each model is its own run: the page's command is the usage, each section names its own
    return page(payload, "Headline: PyTorch FP32 vs the best deployment per runtime", body,
                command=f"`{program} --only KEY [--budget MINUTES]`, one model per run (each section names its own)")


def main() -> None:
    from benchmarks.train_seeds import in_seed_order, seed_checkpoints

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--budget", type=float, default=6.0)
    ap.add_argument("--rounds", type=int, default=200)
    args = ap.parse_args()
    done = {r["key"]: r for r in load_results("headline").get("runs", [])}
    for key, ckpt in seed_checkpoints(args.only):
        opt = run_optimize(key, ckpt, BUDGET.get(key, args.budget))  # reuses an existing search
        budget = BUDGET.get(key, args.budget)
        done[key] = {**measure(key, ckpt, opt, args.rounds), "command": run_command(key, budget)}
        runs = in_seed_order(done)
        save_results("headline", {"runs": runs}, markdown)


if __name__ == "__main__":
    main()
