"""The hostile-input catalogue (issue 19): every case of tests/security/cases.py run through the
installed `edgemed` command in its own process, as a user would meet it; the table records the
exit code and the line edgemed printed, and whether any code ran (a sentinel file), anything
outside the case's folder changed, or a traceback was shown.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.hostile_inputs
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import WORK, edgemed_cli, page, save_results
from edgemed.report.tables import Table


def fixtures(work: Path) -> tuple[Path, Path, Path]:
    """A tiny trained checkpoint, its bundle (ONNX, OpenVINO, TFLite FP32 + the torch reference)
    and a folder of real PNGs; made once, reused."""
    from PIL import Image

    from edgemed.data.datasets import load_dataset
    from edgemed.export.exporter import export
    from edgemed.train import train

    ck, bundle, images = work / "tiny.safetensors", work / "bundle", work / "scans"
    if not ck.exists():
        train("mednext_micro", "pneumoniamnist", out=ck, epochs=1, batch_size=32, limit_train=256,
              limit_eval=128, threads=2, progress=False, lr=3e-3)
    if not bundle.exists():
        export(ck, ["onnx", "openvino", "tflite"], ["fp32"], bundle, parity_images=32, progress=False, threads=2)
    if not images.exists():
        images.mkdir()
        x, _ = load_dataset("pneumoniamnist").split("test")
        for i in range(3):
            Image.fromarray(np.asarray(x[i])).save(images / f"{i}.png")
    return ck, bundle, images


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def reported_line(case, stdout: str, stderr: str) -> str:
    """What the user is told: the `error:` line, or for a batch the failed file's own message."""
    errors = [ln for ln in (stderr + stdout).splitlines() if ln.startswith("error:")]
    if errors:
        return errors[0]
    try:
        rows = json.loads(stdout)
        failed = [r for r in rows.get("predictions", rows if isinstance(rows, list) else []) if not r.get("ok")]
        return f"{Path(failed[0]['file']).name}: {failed[0]['error'].split(': ', 1)[-1]}" if failed else ""
    except (ValueError, AttributeError, KeyError, IndexError, TypeError):
        return (stderr or stdout).strip().splitlines()[-1] if (stderr or stdout).strip() else ""


def run_case(case, ck: Path, bundle: Path, images: Path, root: Path) -> dict:
    from tests.security.cases import Env

    base = root / case.name.replace(" ", "_").replace("/", "_")
    shutil.rmtree(base, ignore_errors=True)
    (base / "work").mkdir(parents=True)
    (base / "outside").mkdir()
    (base / "outside" / "keep.txt").write_text("must stay as it is")
    (base / "config").mkdir()
    os.environ["EDGEMED_CONFIG_DIR"] = str(base / "config")  # a private, empty trust list
    env = Env(work=base / "work", checkpoint=ck, bundle=bundle, images=images, outside=base / "outside",
              sentinel=base / "SENTINEL")
    args = [str(a) for a in case.build(env)]
    outside_before, bundle_before = snapshot(env.outside), snapshot(bundle)
    t = time.perf_counter()
    r = subprocess.run([edgemed_cli(), *args], cwd=env.work, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "COLUMNS": "200"})
    seconds = time.perf_counter() - t
    # the table shows paths as the user typed them, not this machine's temp folders
    line = reported_line(case, r.stdout, r.stderr).replace(str(env.work) + "/", "").replace(str(base), "…")
    row = {"case": case.name, "defect": case.defect, "what": case.what,
           "command": "edgemed " + " ".join(Path(a).name if a.startswith(str(root)) or a.startswith(str(ck.parent)) else a
                                             for a in args),
           "exit_code": r.returncode, "expected_exit_code": case.code, "message": line,
           "names_expected": case.expect in line, "traceback": "Traceback" in r.stdout + r.stderr,
           "code_ran": env.sentinel.exists(), "outside_changed": snapshot(env.outside) != outside_before,
           "bundle_changed": snapshot(bundle) != bundle_before, "seconds": round(seconds, 1)}
    row["passed"] = (row["exit_code"] == case.code and row["names_expected"] and not row["traceback"]
                     and not row["code_ran"] and not row["outside_changed"] and not row["bundle_changed"])
    return row


def markdown(payload: dict) -> str:
    rows = [[str(i), r["defect"], f"{r['case']}: {r['what']}", r["command"],
             f"{r['exit_code']} ({r['expected_exit_code']})", r["message"], "yes" if r["passed"] else "**NO**"]
            for i, r in enumerate(payload["rows"], 1)]
    body = ["Each case builds one bad file from a good one (a tiny trained mednext_micro checkpoint and its bundle) "
            "and runs the installed `edgemed` command on it in its own process. Passed = the promised exit code, "
            "the message names the problem, no traceback, no code ran (a sentinel file the payloads try to "
            "create never appears), nothing outside the case's folder and nothing in the good bundle changed.",
            f"Result: **{payload['passed']} of {payload['cases']} passed**",
            Table(["#", "defect", "case", "command", "exit (promised)", "what edgemed said", "passed"], rows, right={0})]
    return page(payload, "Hostile inputs", body)


def main() -> None:
    from tests.security.cases import CASES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="Substrings of case names.")
    args = ap.parse_args()

    work = WORK / "hostile"
    work.mkdir(parents=True, exist_ok=True)
    ck, bundle, images = fixtures(work)
    rows = []
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for case in CASES:
            if args.only and not any(s in case.name for s in args.only):
                continue
            rows.append(run_case(case, ck, bundle, images, Path(tmp)))
            r = rows[-1]
            print(f"{'ok ' if r['passed'] else 'BAD'} {r['exit_code']} {r['case']}: {r['message'][:140]}", flush=True)
    passed = sum(r["passed"] for r in rows)
    save_results("hostile_inputs", {"passed": passed, "cases": len(rows), "rows": rows}, markdown)
    print(f"{passed} of {len(rows)} passed; written to benchmarks/results/hostile_inputs.md")
    if passed != len(rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
