"""The ARM path, functionally: benchmarks/arm/setup_rootfs.sh builds an emulated aarch64 Debian
bookworm chroot with `edgemed[runtime]`, benchmarks/arm/compare_arm.py runs a bundle there and on
x86 and compares the logits (FP32, FP16 and INT8) and the CLI's answers.

The end-to-end test is slow (minutes: about 10 to build the rootfs from scratch, then a few per
run) and needs root, debootstrap and qemu-user-static, so it only runs with EDGEMED_RUN_SLOW=1:
    sudo EDGEMED_RUN_SLOW=1 EDGEMED_DATA_DIR=../shared/data python -m pytest -q tests/test_arm_emulated.py
The tolerance logic is checked on every run (fast, no emulation).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO


def _slow_skip_reason() -> str | None:
    if os.environ.get("EDGEMED_RUN_SLOW") != "1":
        return "emulated aarch64 run takes minutes: set EDGEMED_RUN_SLOW=1 to run it"
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount): run pytest with sudo"
    tools = ["debootstrap", "chroot", "mount"] + (["qemu-aarch64-static", "update-binfmts"]
                                                  if platform.machine() == "x86_64" else [])
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install qemu-user-static debootstrap binfmt-support)"
    return None


class _Artifact:
    def __init__(self, precision: str, fmt: str = "tflite", details: dict | None = None):
        self.precision, self.format, self.details, self.id = precision, fmt, details or {}, f"{fmt}-{precision}"


def test_tolerances():
    from benchmarks.arm.compare_arm import compare

    rng = np.random.default_rng(0)
    x86 = rng.normal(0, 3, (32, 3)).astype(np.float32)
    fp32 = _Artifact("fp32")
    assert compare(fp32, x86, x86 + 4e-6, {}, {})["pass"]
    assert not compare(fp32, x86, x86 + 1e-3, {}, {})["pass"]

    fp16 = _Artifact("fp16")  # the export's FP16 parity tolerance: 3e-2 × max(1, max|logit|)
    scale = float(np.abs(x86).max())
    assert compare(fp16, x86, x86 + 0.02 * scale, {}, {})["pass"]
    assert not compare(fp16, x86, x86 + 0.05 * scale, {}, {})["pass"]

    step = 0.05
    int8 = _Artifact("int8", details={"output_quantization": {"scale": step, "zero_point": 0}})
    refs = {"x86_ref": x86, "arm_ref": x86}
    one_step = x86.copy()
    one_step[0, 0] += step
    row = compare(int8, x86, one_step, {}, {}, **refs)
    assert row["pass"] and row["int8"]["step"] == step and row["int8"]["steps_histogram"]["1"] == 1
    assert row["int8"]["within_2_steps"] and row["int8"]["reference_max_steps"] == 0

    # default kernels: up to 8 steps when the reference kernels agree; beyond, a failure
    few = x86.copy()
    few[0, 0] += 4 * step
    row = compare(int8, x86, few, {}, {}, **refs)
    assert row["pass"] and not row["int8"]["within_2_steps"]
    many = x86.copy()
    many[0, 0] += 10 * step
    assert not compare(int8, x86, many, {}, {}, **refs)["pass"]
    # the strict check: reference kernels must agree within 2 steps, and must have been run
    assert not compare(int8, x86, one_step, {}, {}, x86_ref=x86, arm_ref=few)["pass"]
    assert not compare(int8, x86, x86, {}, {})["pass"]
    # ...unless the runtime has no reference path (ExecuTorch: the program is XNNPACK's whole);
    # then only the default kernels' bound holds
    assert compare(int8, x86, few, {}, {}, reference_kernels=False)["pass"]
    assert not compare(int8, x86, many, {}, {}, reference_kernels=False)["pass"]

    # a top-1 flip passes only at a near-tie (x86 margin within 2 × tolerance)
    tie = np.array([[1.0, 1.0 + step / 2, -2.0]], np.float32)
    flipped = tie.copy()
    flipped[0, 0] += step
    row = compare(int8, tie, flipped, {}, {}, x86_ref=tie, arm_ref=tie)
    assert row["disagreements"] == 1 and row["disagreements_near_tie"] == 1 and row["pass"]
    wide = np.array([[1.0, 3.0, -2.0]], np.float32)
    assert not compare(int8, wide, wide[:, [1, 0, 2]], {}, {}, x86_ref=wide, arm_ref=wide)["pass"]

    # no scale anywhere: estimated from the logits' range, and said so
    row = compare(_Artifact("int8"), x86, x86, {}, {}, **refs)
    assert row["int8"]["step_source"].startswith("estimated") and row["pass"]


@pytest.mark.slow
@pytest.mark.skipif(_slow_skip_reason() is not None, reason=_slow_skip_reason() or "")
def test_arm_emulated_parity(tiny_checkpoint, tiny_bundle, tmp_path):
    from edgemed.compress.calibration import build_calibration
    from edgemed.compress.quantize import quantize

    setup = subprocess.run(["bash", str(REPO / "benchmarks/arm/setup_rootfs.sh")], capture_output=True,
                           text=True, timeout=3600)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-3000:]
    # the product's INT8 (edgemed quantize), with the export's FP32/FP16 carried into its bundle
    calib = build_calibration("pneumoniamnist", size=32, out=tmp_path / "calib.json")
    bundle = quantize(tiny_checkpoint, calib=calib, formats=["onnx", "tflite"], base_bundle=tiny_bundle,
                      val_limit=64, out=tmp_path / "tiny-int8", progress=False).bundle

    cmd = [sys.executable, "-m", "benchmarks.arm.compare_arm", str(bundle),
           "--n", "16", "--cpus", "cortex-a76", "--bench-iterations", "5", "--out-dir", str(tmp_path), "--name", "arm"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    result = json.loads((tmp_path / "arm.json").read_text())
    assert result["passed"]
    compared = {p["artifact"] for b in result["bundles"] for p in b["parity"]}
    assert {"onnx-fp32", "onnx-fp16", "tflite-fp32", "tflite-fp16", "tflite-int8", "onnx-int8"} <= compared
    if importlib.util.find_spec("executorch") is not None:  # in the export's bundle: run by pte_logits
        assert "executorch-fp32" in compared
        assert all(v == 0.0 for b in result["bundles"] for v in b["pte_runner_vs_bindings_x86"].values())
    assert all(p["pass"] and p["top1_agreement"] == 1.0 for b in result["bundles"] for p in b["parity"])
    for b in result["bundles"]:
        assert b["cli"]["verify"]["pass"] and b["cli"]["bench"]["pass"]
        assert b["cli"]["predict"] and all(p["pass"] for p in b["cli"]["predict"])
        arm = b["aarch64"]["cortex-a76"]["system"]
        assert arm["machine"] == "aarch64" and {"neon", "dotprod"} <= set(arm["isa"])
        assert "torch" not in arm["libraries"] and "openvino" not in arm["libraries"]
    assert (tmp_path / "arm.md").read_text().startswith("# ARM (aarch64) parity under emulation")
