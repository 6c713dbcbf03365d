"""ExecuTorch vs LiteRT vs onnxruntime, FP32 and INT8, side by side (issue 21, proof 1).

Each seed model goes through the installed `edgemed` command as a user would run it:
`edgemed quantize CKPT --formats onnx,tflite,executorch --max-drop 0.5` (FP32 references plus INT8
with accuracy control on the validation split), then `edgemed bench` times every artifact of the
bundle interleaved in one process (batch 1, test split, accuracy against PyTorch FP32 with paired
bootstrap CIs), and `edgemed report` renders the results (benchmarks/results/executorch/).

Models: the shipped 28² weights (edgemed/zoo: mednext_small, convnext_med_28 on PneumoniaMNIST),
and at 224² a mednext_small trained here briefly on SARS-CoV-2 CT (a short schedule: its latency is
the model's, its accuracy is not the seed's; see benchmarks/results/seed_models.md for those).

Also measured: what the ExecuTorch runtime adds to a device install. `pip install --target` with
`--platform manylinux_2_28_aarch64 --only-binary=:all:` lays out the aarch64 wheels (no code runs)
for the runtime-only install and for runtime + executorch; their sizes on disk are compared.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.executorch_formats [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    RESULTS,
    WORK,
    bench_rows,
    command_line,
    edgemed_wheel,
    load_results,
    package_sizes,
    page,
    pip_layout,
    run_edgemed,
    save_results,
    size_summary,
    size_table,
    steps_table,
)
from edgemed.report.tables import Table, fmt_delta

FORMATS = "onnx,tflite,executorch"
MAX_DROP = 0.5


def aarch64_sizes(wheel: Path) -> dict:
    """The aarch64 device install, measured by laying out wheels with `pip install --target
    --platform manylinux_2_28_aarch64 --only-binary=:all:` (nothing is run): the runtime-only
    install, what ExecuTorch adds to it besides torch, and torch's own aarch64 wheel."""
    from importlib.metadata import Distribution

    from packaging.requirements import Requirement

    env = {"platform_system": "Linux", "platform_machine": "aarch64", "python_version": "3.11", "sys_platform": "linux"}
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        base, et, th = Path(tmp) / "runtime", Path(tmp) / "executorch", Path(tmp) / "torch"
        error = pip_layout([f"{wheel}[runtime]"], base)
        if error:
            return {"error": error}
        runtime = package_sizes(base)
        out["edgemed[runtime]"] = size_summary(runtime)
        # executorch itself, then its requirements for Linux aarch64 except torch (measured apart)
        error = pip_layout(["--no-deps", "executorch==1.5.1"], et)
        dist = next(Distribution.discover(path=[str(et)]), None)
        reqs = [Requirement(r) for r in (dist.requires or [])] if dist else []
        wanted = [str(r) for r in reqs if r.name != "torch" and (r.marker is None or r.marker.evaluate({**env, "extra": ""}))]
        # hydra-core and omegaconf need antlr4-python3-runtime 4.9, published as source only: pure
        # Python, so it is laid out without --platform; they go in without their (listed) deps
        config = [r for r in wanted if r.startswith(("hydra-core", "omegaconf"))]
        error = error or pip_layout([r for r in wanted if r not in config], et) or \
            pip_layout(["--no-deps", *config], et)
        if not error:
            r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(et),
                                "antlr4-python3-runtime==4.9.3"], capture_output=True, text=True)
            error = None if r.returncode == 0 else r.stderr[-800:]
        if error:
            out["executorch"] = {"error": error}
        else:
            added = {k: v for k, v in package_sizes(et).items() if k not in runtime and k != "torch"}
            out["executorch without torch (added to the runtime install)"] = size_summary(added)
        error = pip_layout(["--no-deps", "torch==2.13.0"], th)
        if error:
            out["torch"] = {"error": error}
        else:
            libs = th / "torch" / "lib"
            cuda = sum(f.stat().st_size for f in libs.glob("*cuda*") if f.is_file())
            total = sum(package_sizes(th).values())
            out["torch 2.13.0 aarch64 wheel from PyPI (a CUDA build; its CUDA toolkit wheels not counted)"] = {
                "total_mb": round(total / 1e6, 1), "largest_mb": {"of which libtorch_cuda*": round(cuda / 1e6, 1)}}
    return out


def _row(r: dict, c: dict | None) -> list[str]:
    """One artifact; `c`: its accuracy-control record (INT8 only)."""
    return [r["artifact"], r["runtime"], f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['speedup_vs_torch']:.2f}×",
            f"{r['size_mb']:.2f}", f"{r['accuracy']:.4f}", fmt_delta(r["delta_points"], r["delta_ci"]),
            f"{c['val_drop_points']:+.2f}, {c['float_layers']}" + ("" if c["bound_met"] else " (bound not met)") if c else ""]


def markdown(payload: dict) -> str:
    formats, max_drop = payload["formats"], payload["max_drop_points"]
    body = [f"Each model: `edgemed quantize --formats {formats} --max-drop {max_drop}` (accuracy control on the "
            f"validation split), then `edgemed bench` of the whole bundle: every artifact interleaved in one process, "
            f"batch 1, {payload['threads']} threads, {payload.get('duration_s', 4.0):g} s of measured turns per artifact, "
            "p50; accuracy on the test split against PyTorch FP32 with a 95 % paired-bootstrap CI. Speed-ups are against "
            "PyTorch eager FP32 of the same run. The rendered report: "
            "[executorch/report/report.md](executorch/report/report.md)."]
    for key, m in payload["models"].items():
        rows = [_row(r, m["accuracy_control"].get(r["artifact"]))
                for r in sorted(m["rows"], key=lambda r: (r["precision"] == "fp32", r["p50_ms"]))]
        body += [f"## {key} ({m['dataset']})", f"Measured by `{m['measured_by']}`.",
                 Table(["artifact", "runtime", "p50 ms", "p99 ms", "speed-up vs torch", "MB", "test accuracy",
                        "Δ vs FP32 (pt) [95 % CI]", "INT8 val drop (pt), float layers"], rows, right={2, 3, 4, 5, 6})]
        body += [f"**{f['format']} {f['precision']} failed:** {f['error']}" for f in m.get("failed", [])]
        body.append(steps_table(m["steps"]))
    if "aarch64_install" in payload:
        body += ["## Device install size (aarch64, Python 3.11)",
                 "`pip install --target DIR --platform manylinux_2_28_aarch64 (and older manylinux tags) "
                 "--only-binary=:all:` (wheels laid out, nothing run), bytes on disk. ExecuTorch's Python runtime needs "
                 "torch on the device; PyPI's aarch64 torch is a CUDA build (the CPU-only aarch64 wheel lives on "
                 "download.pytorch.org, not reachable from this machine), so torch is listed apart with its CUDA "
                 "library's share.", size_table(payload["aarch64_install"])]
    return page(payload, "ExecuTorch vs LiteRT vs onnxruntime, FP32 and INT8", body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--ct-epochs", type=int, default=3)
    ap.add_argument("--skip-sizes", action="store_true", help="keep the committed install sizes")
    ap.add_argument("--only", nargs="*", help="rerun these models (keys); keep the committed rows of the others")
    args = ap.parse_args()

    from edgemed.compress.calibration import build_calibration
    from edgemed.models.pretrained import pretrained_checkpoint

    work = WORK / "executorch"
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"threads": args.threads, "duration_s": args.duration, "max_drop_points": MAX_DROP, "formats": FORMATS,
                 "models": {}}
    previous = load_results("executorch_formats") if (args.only or args.skip_sizes) else {}
    models = [("mednext_small-28", pretrained_checkpoint("mednext_small", "pneumoniamnist"), "pneumoniamnist",
               300, None),
              ("convnext_med_28-28", pretrained_checkpoint("convnext_med_28", "pneumoniamnist"), "pneumoniamnist",
               300, None)]
    ct = work / "mednext_small-ct224.safetensors"
    log: list = []
    if not ct.exists() and (not args.only or "mednext_small-224" in args.only):
        run_edgemed("train", "mednext_small", "--dataset", "sarscov2_ct_224", "--image-size", 224, "--epochs", args.ct_epochs,
                "--threads", args.threads, "--out", ct, "--force", log=log)
    models.append(("mednext_small-224", ct, "sarscov2_ct_224", 128, 256))
    bundles = []
    report = RESULTS / "executorch"
    for key, ckpt, dataset, calib_size, val_limit in models:
        if args.only and key not in args.only:  # the committed rows and results file stay
            out["models"][key] = {**previous["models"][key],
                                  "measured_by": previous["models"][key].get("measured_by", previous["command"])}
            bundles.append(report / f"{key}.json")
            continue
        print(f"=== {key}", flush=True)
        steps = list(log) if key.endswith("224") else []
        calib = work / f"calibration-{dataset}-{calib_size}.json"
        if not calib.exists():
            build_calibration(dataset, size=calib_size, out=calib)
        bundle, results = work / f"{key}-bundle", work / f"{key}.json"
        run_edgemed("quantize", ckpt, "--calib", calib, "--formats", FORMATS, "--max-drop", MAX_DROP,
                "--threads", args.threads, "--out", bundle, "--force",
                *(["--val-limit", val_limit] if val_limit else []), log=steps)
        run_edgemed("bench", bundle, "--threads", args.threads, "--duration", args.duration, "--large-batch", 0,
                "--split", "test", "--out", results, "--force", log=steps)
        manifest = json.loads((bundle / "edgemed.json").read_text())
        control = {r["artifact"]: {"route": r["route"], "val_drop_points": r["drop_points"],
                                   "bound_met": r["bound_met"], "float_layers": len(r["reverted_layers"])}
                   for r in manifest["quantization"]["results"]}
        out["models"][key] = {"checkpoint": str(ckpt.name), "dataset": dataset, "steps": steps,
                              "measured_by": command_line(),
                              "rows": bench_rows(results), "accuracy_control": control,
                              "failed": manifest.get("failed", []),
                              "checkpoint_test_accuracy": manifest["model"]["metrics"].get("test", {}).get("accuracy")}
        bundles.append(results)
    for b in bundles:  # results files beside the report, so a rerun of some models can merge
        if b.parent != report:
            report.mkdir(parents=True, exist_ok=True)
            shutil.copy2(b, report / b.name)
    bundles = [report / b.name for b in bundles]
    run_edgemed("report", *bundles, "--out", report / "report", "--max-drop", MAX_DROP, "--force", log=[])
    if args.skip_sizes and "aarch64_install" in previous:
        out["aarch64_install"] = previous["aarch64_install"]
    elif not args.skip_sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out["aarch64_install"] = aarch64_sizes(edgemed_wheel(Path(tmp)))
    save_results("executorch_formats", out, markdown)
    print((RESULTS / "executorch_formats.md").read_text())


if __name__ == "__main__":
    main()
