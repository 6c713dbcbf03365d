"""Run shipped recipes end to end with `edgemed run` (a fresh process each, as a user would) and
record what each stage took and what the run produced: the trained model's test accuracy, the
pruned model's validation accuracy, how many benched artifacts keep the recipe's accuracy bound,
and the fastest of them against the FP32 file of the same format.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.run_recipes [--only breastmnist ...]

A rerun reuses finished stages (that is `edgemed run`'s caching); results of recipes not run this
time are kept. Run folders go to benchmarks/work/recipes/<name>/ (not committed); the table to
benchmarks/results/recipe_runs.{json,md}. The 1-minute load average before and after each run is
recorded: latencies of a run that shared the cores with another job are contended.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import (
    ROOT,
    WORK,
    command_line,
    edgemed_cli,
    load_results,
    page,
    save_results,
)
from edgemed.report.tables import Table

RECIPES = ROOT / "recipes"
OLD_STAGES = ("train", "prune", "export", "quantize", "bench", "report")  # results that did not list theirs


def stages() -> tuple[str, ...]:
    from edgemed.pipeline.runner import STAGE_RUNNERS

    return tuple(STAGE_RUNNERS)


def summarise(run_dir: Path) -> dict:
    """Stage times and outcomes read back from a finished (or partly finished) run folder."""
    from edgemed.checkpoint import read_checkpoint
    from edgemed.pipeline.runner import STAGE_FILE

    out: dict = {"stages": {}}
    for stage in stages():
        record = run_dir / stage / STAGE_FILE
        if record.exists():
            out["stages"][stage] = json.loads(record.read_text())["seconds"]
    for stage, split in (("train", "test"), ("prune", "val")):
        ckpt = run_dir / stage / "model.safetensors"
        if ckpt.exists():
            saved = read_checkpoint(ckpt)
            m = saved.metrics.get(split, {})
            out[f"{stage}_{split}_accuracy"] = (m.get("accuracy") or {}).get("value")
            if stage == "train":  # the whole training time, also when it was resumed in parts
                out["train_fit_seconds"] = saved.training.get("wall_time_s")
    table = run_dir / "report" / "report" / "results.csv"
    if table.exists():
        rows = list(csv.DictReader(table.open()))
        out["artifacts_benched"] = len({r["artifact"] for r in rows})
        out["rows_within_bound"] = sum(r["meets_bound"] == "yes" for r in rows)
        out["rows_outside_bound"] = sum(r["meets_bound"] == "no" for r in rows)
        within = [r for r in rows if r["meets_bound"] == "yes"]
        if within:
            best = min(within, key=lambda r: float(r["latency_p50_ms"]))
            fp32 = [r for r in rows if r["format"] == best["format"] and r["runtime"] == best["runtime"]
                    and r["precision"] == "fp32" and r["threads"] == best["threads"]]
            out["best"] = {"artifact": best["artifact"], "runtime": best["runtime"], "threads": int(best["threads"]),
                           "p50_ms": float(best["latency_p50_ms"]),
                           "accuracy_drop_pt": -float(best["retention_accuracy_pt"] or 0.0),
                           "speedup_vs_fp32_same_format": (float(fp32[0]["latency_p50_ms"]) / float(best["latency_p50_ms"])
                                                           if fp32 else None)}
    return out


def run_folder(recipe: Path) -> Path:
    from edgemed.pipeline.recipe import load_recipe

    return WORK / "recipes" / load_recipe(recipe).name


def run_one(recipe: Path, data_dir: str | None) -> dict:
    run_dir = run_folder(recipe)
    cmd = [edgemed_cli(), "run", str(recipe.relative_to(ROOT.parent)), "--run-dir", str(run_dir)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "run.log"  # `tail -f` it to follow the progress
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    with log.open("a") as f:  # a resumed run (after Ctrl-C) adds to the log of its earlier parts
        f.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        f.flush()
        done = subprocess.run(cmd, cwd=ROOT.parent, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t
    info = {"recipe": str(recipe.relative_to(ROOT.parent)), "exit_code": done.returncode,
            "wall_seconds": round(seconds, 1), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2), **summarise(run_dir)}
    if done.returncode:
        info["error"] = (log.read_text().strip().splitlines() or ["(no message)"])[-1]
    return info


def _row(name: str, r: dict, stage_names: tuple[str, ...]) -> list[str]:
    st, best = r.get("stages", {}), r.get("best") or {}
    parts = r.get("earlier_parts_seconds", [])
    sp = best.get("speedup_vs_fp32_same_format")
    return [name, str(r["exit_code"]) + (f" ({r['error']})" if r.get("error") else ""),
            *(f"{st[s]:.0f}" if s in st else "–" for s in stage_names),
            f"{(r['wall_seconds'] + sum(parts)) / 60:.1f} min" + (f" in {len(parts) + 1} parts" if parts else ""),
            f"{r['load_before']}/{r['load_after']}",
            *(f"{r[k]:.3f}" if r.get(k) is not None else "–" for k in ("train_test_accuracy", "prune_val_accuracy")),
            f"{r['rows_within_bound']} of {r['rows_within_bound'] + r['rows_outside_bound']}"
            if "rows_within_bound" in r else "–",
            f"{best['artifact']} ({best['runtime']}, {best['threads']} thr, {best['p50_ms']:.2f} ms)" if best else "–",
            f"{-best['accuracy_drop_pt']:+.2f} pt" if best else "–",
            f"{sp:.2f}×" if sp else "–"]


def markdown(payload: dict) -> str:
    done = payload["runs"]
    stage_names = tuple(payload.get("stages", OLD_STAGES))
    n = len(stage_names)
    table = Table(["recipe", "exit", *stage_names, "wall", "load", "train test acc", "pruned val acc", "within bound",
                   "fastest within bound", "Δacc", "× FP32 same format"],
                  [_row(name, done[name], stage_names) for name in sorted(done)],
                  right=set(range(2, n + 3)) | {n + 4, n + 5, n + 8, n + 9})  # stages + wall, accuracies, Δ, ×
    body = ["Each recipe under `benchmarks/recipes/` in a fresh `edgemed run` process (train → prune → export → "
            "quantize → bench → report). Stage times in seconds (a stage reused from an earlier run of the same "
            "recipe shows its original time; a stage resumed after Ctrl-C shows its last part's time). "
            "A run interrupted with Ctrl-C (exit 130) and rerun is one run in parts: its wall adds them up. Bench: p50 "
            "latency at batch 1 on the recipe's threads; accuracy on the test split against the bundle's FP32 "
            "reference. Load = 1-minute load average before/after: about 2 or more before the start means another "
            "job held the 2 cores, so the run's times and latencies are contended, unless the previous recipe had "
            "just finished (see the notes).", table]
    notes = [f"- {name}: {done[name]['note']}" for name in sorted(done) if done[name].get("note")]
    if notes:
        body.append("\n".join(["Notes:", *notes]))
    # the recipes shipped when the results were saved (older results: those it ran)
    missing = sorted(set(payload.get("recipes", done)) - set(done))
    if missing:
        body.append("Not run yet (each trains its model first; see the recipe's epochs): " + ", ".join(missing) + ".")
    # recipes run one `--only` at a time (the saved command is only the last): the page names the usage
    return page(payload, "Shipped recipes run end to end with `edgemed run`", body,
                command="`EDGEMED_DATA_DIR=../shared/data python -m benchmarks.run_recipes [--only NAME]`")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="substrings of recipe names to run")
    ap.add_argument("--note", help="a remark recorded with these runs (e.g. what else shared the cores)")
    args = ap.parse_args()
    data_dir = os.environ.get("EDGEMED_DATA_DIR")
    previous = load_results("recipe_runs").get("runs", {})
    recipes = [p for p in sorted(RECIPES.glob("*.yaml")) if not args.only or any(s in p.stem for s in args.only)]
    if not recipes:
        sys.exit(f"no recipe under {RECIPES} matches --only {' '.join(args.only or [])}")
    for recipe in recipes:
        print(f"=== {recipe.stem}", flush=True)
        earlier = previous.get(recipe.stem, {})
        # an interrupted run's folder is what a rerun resumes from; without it (a fresh checkout) it starts over
        resumes = earlier.get("exit_code") == 130 and run_folder(recipe).exists()
        info = run_one(recipe, data_dir)
        if resumes:  # this run resumed an interrupted one: their walls add up
            info["earlier_parts_seconds"] = earlier.get("earlier_parts_seconds", []) + [earlier["wall_seconds"]]
        previous[recipe.stem] = info | ({"note": args.note} if args.note else {})
        print(json.dumps(previous[recipe.stem], indent=1), flush=True)
        save_results("recipe_runs", {"runs": previous, "stages": list(stages()),
                                     "recipes": sorted(p.stem for p in RECIPES.glob("*.yaml"))}, markdown)
    print(command_line())


if __name__ == "__main__":
    main()
