"""Prove the ARM path functionally: run a bundle with the runtime-only install on emulated aarch64
(Debian bookworm, the userland of Raspberry Pi OS 64-bit, under qemu-user) and on this x86 host,
on the same real preprocessed test images, and compare the logits artifact by artifact.

    sudo bash benchmarks/arm/setup_rootfs.sh                        # once (about 10 minutes)
    sudo env EDGEMED_DATA_DIR=../shared/data "$(command -v python)" -m benchmarks.arm.compare_arm \
        [BUNDLE ...] [--zoo MODEL:DATASET ...]

`--zoo mednext_small:pneumoniamnist` first builds the bundle a user would ship from the shipped
weights, through the public API: `edgemed export` (ONNX and TFLite, FP32 and FP16), then
`edgemed quantize` (their INT8, accuracy control within 0.5 points) into the same bundle;
`--formats` chooses the formats (default onnx,tflite; executorch adds ExecuTorch FP32 and INT8).

Runs on the host with the x86 development install; needs root (chroot, mount). What it does:
1. takes N real test images (stratified, `edgemed.bench.accuracy.load_split`, the bundle's
   PreprocessSpec), saves the float32 NCHW batch as .npy inside the rootfs;
2. runs every artifact `edgemed[runtime]` can run (ONNX on onnxruntime, TFLite on LiteRT; not
   OpenVINO or torch, which are not in that extra) with `run_logits.py`, once on x86 and once per
   emulated ARM CPU model (`--cpus`, default Cortex-A72 = Raspberry Pi 4 and Cortex-A76 =
   Raspberry Pi 5, chosen with QEMU_CPU so the kernels a Pi would pick are the ones exercised);
   ExecuTorch programs (.pte) run on aarch64 through `pte_logits.cpp`, a small C++ program over
   the C++ runtime the aarch64 executorch wheel ships (no torch: the Python bindings need torch,
   and PyPI's aarch64 torch is a CUDA build), cross-compiled here once per executorch version;
   on x86 through edgemed's ExecuTorch session (the Python bindings);
3. compares the logits (tolerances below), and runs the real CLI inside the chroot:
   `edgemed bundle verify`, `edgemed predict ... --json` on PNGs (checked against x86), and a short
   `edgemed bench` (latency under emulation is meaningless: this only proves it runs; its
   accuracy must equal what the aarch64 logits give on the same images, x86's is shown beside);
4. writes benchmarks/results/arm_emulated.json + .md; exits 1 if any check fails.

Tolerances (max over all images and classes of |logit_x86 - logit_arm|):
- FP32: ≤ max(1e-5, 2e-6 × max|logit_x86|) — a few float32 ulps at the logits' scale;
- FP16: ≤ 3e-2 × max(1, max|logit_x86|), the export's FP16 parity tolerance: Cortex-A76 runs
  FP16 graphs with FP16 arithmetic where x86 computes in FP32;
- INT8, in output-quantization steps (the output's scale: manifest `details.output_quantization`
  or `details.io.output`, else the TFLite output tensor or the INT8 tensor its final DEQUANTIZE
  reads, else the ONNX graph's last DequantizeLinear; without any, 1/255 of the x86 logits'
  range, marked "estimated"): the
  reference kernels (TFLite builtin reference ops, onnxruntime with graph optimizations off) ≤ 2
  steps, the default optimised kernels ≤ 8 steps (see TOLERANCES for why).
Top-1 must agree on every image except near-ties (x86 top-1/top-2 margin ≤ 2 × tolerance).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.arm.output_quantization import output_step
from benchmarks.common import RESULTS, WORK, command_line, save_results

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_ROOTFS = WORK / "arm" / "rootfs"
VENV = "/opt/edgemed-venv"  # inside the rootfs (setup_rootfs.sh)
JOBS = "/opt/edgemed-job"  # inside the rootfs: inputs, bundle copies, outputs
RUNTIME_FORMATS = ("onnx", "tflite")  # what `edgemed[runtime]` runs (onnxruntime, ai-edge-litert)
PTE_HOME = "/opt/edgemed-executorch"  # inside the rootfs: the aarch64 ExecuTorch C++ runtime + pte_logits
CPUS = {"cortex-a72": "Raspberry Pi 4 (Cortex-A72: NEON only)",
        "cortex-a76": "Raspberry Pi 5 (Cortex-A76: NEON, dotprod, FP16 arithmetic)",
        "max": "qemu 'max' (SVE2, i8mm, bf16: newer Armv9 boards)"}
# FP16: the export's own FP16 parity tolerance (edgemed.export.parity: 3e-2 × max(1, max|logit|)):
# ARMv8.2 cores (Cortex-A76) run FP16 graphs with FP16 arithmetic where x86 computes in FP32, so
# the two legitimately differ by up to the FP16-vs-FP32 error the export already accepts.
TOLERANCES = {
    "fp32": {"atol": 1e-5, "rtol": 2e-6},
    "fp16": {"atol": 0.0, "rtol": 3e-2, "scale_floor": 1.0},
    "mixed": {"atol": 0.0, "rtol": 3e-2, "scale_floor": 1.0},
    # INT8, in output-quantization steps: the reference kernels (portable code: TFLite builtin
    # reference ops, onnxruntime with graph optimizations off) must agree across architectures
    # within `reference_steps`; the default, optimised kernels (what a Pi runs) within
    # `default_steps`, because optimised integer kernels are architecture-specific (XNNPACK's x86
    # and NEON micro-kernels; onnxruntime fuses s8s8 QDQ groups into integer kernels on ARM but
    # not on x86) and round differently after every layer. On this repo's mednext_small, x86
    # alone shows 5 steps between XNNPACK and the reference kernels.
    "int8": {"reference_steps": 2, "default_steps": 8},
}
EMULATION_NOTE = (
    "aarch64 runs under qemu-user (binfmt_misc) in a Debian bookworm arm64 chroot: the same "
    "userland as Raspberry Pi OS 64-bit, the same aarch64 wheels pip installs on a Pi, and the "
    "ARM code paths of onnxruntime/XNNPACK for the emulated CPU model. It proves the results, "
    "not the speed: latencies measured under emulation are meaningless and are not reported. "
    "/proc is the host's, so /proc/cpuinfo shows the x86 host; the ISA flags come from the "
    "emulated CPU's HWCAP (auxiliary vector). /sys is deliberately not mounted (onnxruntime "
    "crashes reading CPU topology from it under qemu), so onnxruntime warns that it cannot read "
    "the CPU list; a real Pi has /sys."
)


class SetupError(Exception):
    pass


# ---- the chroot -----------------------------------------------------------------------------------
class Chroot:
    def __init__(self, rootfs: Path):
        self.rootfs = rootfs.resolve()
        if os.geteuid() != 0:
            raise SetupError("needs root (chroot, mount): run it with sudo")
        if not (self.rootfs / VENV.lstrip("/") / "bin" / "python").exists():
            raise SetupError(f"no aarch64 rootfs with the edgemed venv at {self.rootfs}: "
                             f"run `sudo bash benchmarks/arm/setup_rootfs.sh` first")
        self._mounted: list[Path] = []
        # recorded with the results (and warned about): files edited since setup_rootfs.sh ran
        self.stale = self.stale_files()
        if self.stale:
            print(f"compare_arm: warning: the chroot's edgemed differs from this repository in "
                  f"{', '.join(self.stale[:4])}{' …' if len(self.stale) > 4 else ''}: rerun "
                  f"`sudo bash benchmarks/arm/setup_rootfs.sh` to test the current code", file=sys.stderr)

    def stale_files(self) -> list[str]:
        """Package files whose installed copy in the chroot's venv differs from the repository's."""
        installed = sorted(self.path(VENV).glob("lib/python3*/site-packages/edgemed"))
        if not installed:
            return ["edgemed (not installed)"]
        here = REPO / "edgemed"
        out = []
        for f in sorted(here.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts:
                other = installed[0] / f.relative_to(here)
                if f.suffix == ".py" and (not other.is_file() or other.read_bytes() != f.read_bytes()):
                    out.append(f.relative_to(REPO).as_posix())
        return out

    def path(self, inside: str) -> Path:
        return self.rootfs / inside.lstrip("/")

    @contextlib.contextmanager
    def mounted(self):
        """/proc (and /dev when the rootfs has no device nodes) for the duration; never /sys.
        Unmounted again on exit, errors, Ctrl-C and SIGTERM."""
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._mount(self.path("/proc"), ["-t", "proc", "proc"])
            null = self.path("/dev/null")
            if not (null.exists() and stat.S_ISCHR(null.stat().st_mode)):
                self._mount(self.path("/dev"), ["--bind", "/dev"])
            yield self
        finally:
            for m in reversed(self._mounted):
                r = subprocess.run(["umount", str(m)], capture_output=True)
                if r.returncode != 0:
                    subprocess.run(["umount", "-l", str(m)], capture_output=True)
            self._mounted.clear()
            signal.signal(signal.SIGTERM, previous)

    def _mount(self, target: Path, args: list[str]) -> None:
        target.mkdir(parents=True, exist_ok=True)
        if os.path.ismount(target):
            return
        subprocess.run(["mount", *args, str(target)], check=True)
        self._mounted.append(target)

    def run(self, argv: list[str], *, cpu: str | None = None, env: dict | None = None,
            timeout: float = 1800) -> subprocess.CompletedProcess:
        """Run a command inside the chroot with a clean environment (`env -i`): none of the host's
        PIP_* or PYTHON* settings leak in."""
        base = {"PATH": f"{VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
                "XDG_CACHE_HOME": "/tmp/edgemed-cache", "PYTHONWARNINGS": "ignore"}
        if cpu:
            base["QEMU_CPU"] = cpu  # read by qemu-user: which ARM CPU model to emulate
        base.update(env or {})
        cmd = ["chroot", str(self.rootfs), "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in base.items()], *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def wipe_job(self, name: str) -> Path:
        job = self.path(f"{JOBS}/{name}")
        if job.exists():
            inside = [m for m in _mount_points() if m == job or job in m.parents]
            if inside:
                raise SetupError(f"refusing to delete {job}: mounted inside it: {inside}")
            shutil.rmtree(job)
        job.mkdir(parents=True)
        return job


def _raise_interrupt(*_):
    raise KeyboardInterrupt


# ---- ExecuTorch on aarch64: the wheel's C++ runtime, no torch -----------------------------------
# what pte_logits links: the runtime, its CPU kernels (float and quantized), the XNNPACK delegate
# and its thread pool; nothing else of the wheel's lib/ goes to the device
PTE_LIBRARIES = ("executorch", "executorch_kernels_optimized", "executorch_kernels_quantized",
                 "executorch_backend_xnnpack", "executorch_threadpool")


def _compile_pte_logits(cxx: str, package: Path, out: Path, rpath: str) -> None:
    """pte_logits.cpp against an executorch package folder (its include/ and lib/), the way the
    package's own CMake config says a standalone program links it."""
    inc = package / "include"
    cmd = [cxx, "-std=c++17", "-O2", "-DC10_USING_CUSTOM_GENERATED_MACROS", "-DET_EVENT_TRACER_ENABLED",
           f"-I{inc}", f"-I{inc / 'executorch/runtime/core/portable_type/c10'}", str(HERE / "pte_logits.cpp"),
           "-o", str(out), f"-L{package / 'lib'}",
           # the kernel and delegate libraries only register themselves: keep them linked
           "-Wl,--no-as-needed", *(f"-l{lib}" for lib in PTE_LIBRARIES), "-Wl,--as-needed", f"-Wl,-rpath,{rpath}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SetupError(f"compiling pte_logits with {cxx} failed: {_last_line(r.stderr)}")


def pte_runner(chroot: Chroot, work: Path) -> dict:
    """Build, once per executorch version and runner source, the aarch64 pte_logits inside the
    rootfs (PTE_HOME: the runner and the wheel's libraries it links) and an x86 twin against the host's
    package (which checks the runner against edgemed's ExecuTorch session). {"skipped": why}
    when the host lacks executorch or a compiler."""
    import importlib.metadata
    import importlib.util
    import platform
    import zipfile

    try:
        version = importlib.metadata.version("executorch")
        spec = importlib.util.find_spec("executorch")  # a namespace package: no origin, one location
        host_pkg = Path(next(iter(spec.submodule_search_locations)))
    except (importlib.metadata.PackageNotFoundError, AttributeError, StopIteration):
        return {"skipped": "executorch is not installed on the host: pip install 'edgemed[executorch]'"}
    cxx = "g++" if platform.machine() == "aarch64" else "aarch64-linux-gnu-g++"
    for tool in (cxx, "g++"):
        if shutil.which(tool) is None:
            return {"skipped": f"no {tool} on the host: rerun `sudo bash benchmarks/arm/setup_rootfs.sh` "
                               "(it installs g++-aarch64-linux-gnu)"}
    home = chroot.path(PTE_HOME)
    # the x86 twin links the host package by absolute path: another venv is another build
    key = f"{version} {hashlib.sha256((HERE / 'pte_logits.cpp').read_bytes()).hexdigest()[:16]} {cxx} {host_pkg}"
    x86_runner = work / "pte_logits-x86"
    stamp = home / ".built"
    if not (stamp.is_file() and stamp.read_text() == key and x86_runner.is_file()):
        if home.exists():
            shutil.rmtree(home)
        (home / "lib").mkdir(parents=True)
        wheels = work / "executorch-wheel"
        shutil.rmtree(wheels, ignore_errors=True)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
                            f"executorch=={version}", "-d", str(wheels)], capture_output=True, text=True)
        found = sorted(wheels.glob("executorch-*.whl"))
        if r.returncode != 0 or not found:
            raise SetupError(f"could not download the aarch64 executorch {version} wheel: {_last_line(r.stderr)}")
        package = work / "executorch-aarch64"
        shutil.rmtree(package, ignore_errors=True)
        with zipfile.ZipFile(found[0]) as z:
            z.extractall(package, [n for n in z.namelist()
                                   if n.startswith(("executorch/include/", "executorch/lib/"))])
        for lib in PTE_LIBRARIES:
            shutil.copy2(package / "executorch/lib" / f"lib{lib}.so", home / "lib" / f"lib{lib}.so")
        _compile_pte_logits(cxx, package / "executorch", home / "pte_logits", "$ORIGIN/lib")
        _compile_pte_logits("g++", host_pkg, x86_runner, str(host_pkg / "lib"))
        stamp.write_text(key)
    return {"path": f"{PTE_HOME}/pte_logits", "x86_path": str(x86_runner), "executorch": version,
            "compiler": subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0],
            "runtime_libraries_mb": round(sum(f.stat().st_size for f in (home / "lib").glob("*.so")) / 2**20, 1),
            "runner_kb": round((home / "pte_logits").stat().st_size / 1024)}


@contextlib.contextmanager
def cpu_list(chroot: Chroot):
    """/sys/devices/system/cpu/{present,possible} as plain files in the rootfs, only while
    ExecuTorch runs: XNNPACK's CPU detection (cpuinfo) refuses to start without the CPU list, and
    the real /sys is never mounted (onnxruntime crashes reading it under qemu). A Pi has both."""
    folder = chroot.path("/sys/devices/system/cpu")
    if os.path.ismount(chroot.path("/sys")):
        raise SetupError(f"{chroot.path('/sys')} is mounted: unmount it first")
    folder.mkdir(parents=True, exist_ok=True)
    made = [f for f in (folder / "present", folder / "possible") if not f.exists()]
    try:
        for f in made:
            f.write_text("0\n")  # one CPU: both sides run one thread
        yield
    finally:
        for f in made:
            f.unlink(missing_ok=True)


def run_pte(chroot: Chroot, runner: str, cpu: str, job: Path, job_in: str, bundle, arts: list,
            x: np.ndarray) -> tuple[dict, dict]:
    """Each ExecuTorch artifact on the emulated CPU through pte_logits: ({id: logits}, meta)."""
    (job / "inputs.f32").write_bytes(x.astype("<f4").tobytes())
    logits, meta = {}, {}
    with cpu_list(chroot):
        for a in arts:
            rel = a.path.relative_to(bundle.root).as_posix()
            out = f"out-{cpu}/{a.id}.f32"
            (job / f"out-{cpu}").mkdir(exist_ok=True)
            t = time.perf_counter()
            r = chroot.run([runner, f"{job_in}/bundle/{rel}", f"{job_in}/inputs.f32", *map(str, x.shape),
                            f"{job_in}/{out}"], cpu=cpu)
            try:
                if r.returncode != 0:
                    raise RuntimeError(_last_line(r.stderr))
                logits[a.id] = np.fromfile(job / out, "<f4").reshape(len(x), int(r.stdout))
            except (ValueError, OSError) as e:  # no class count, or a short file
                raise RuntimeError(f"{a.id}: unreadable output ({e})") from None
            meta[a.id] = {"session": {"runtime": "executorch", "api": "C++ runtime (pte_logits)"},
                          "run_s": time.perf_counter() - t, "output_quantization": None}
    return logits, meta


def _mount_points() -> list[Path]:
    with open("/proc/self/mounts") as f:
        return [Path(line.split()[1]) for line in f]


def qemu_info() -> dict:
    info = {}
    try:
        r = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True)
        info["qemu"] = r.stdout.splitlines()[0] if r.stdout else None
    except OSError:
        info["qemu"] = None
    with contextlib.suppress(OSError):
        handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").read_text().split("\n")
        info["binfmt"] = "; ".join(line for line in handler[:3] if line)
    return info


# ---- ONNX output quantization (host side: the x86 dev install has the onnx package) -----------
def _tolerance(precision: str, scale: float) -> tuple[float, str]:
    t = TOLERANCES.get(precision, TOLERANCES["fp32"])
    floor = t.get("scale_floor", 0.0)
    tol = max(t["atol"], t["rtol"] * max(floor, scale))
    rule = (f"≤ {t['rtol']:g} × max(1, max|logit|)" if floor else f"≤ max({t['atol']:g}, {t['rtol']:g} × max|logit|)")
    return tol, rule


def compare(art, x86: np.ndarray, arm: np.ndarray, x86_meta: dict, arm_meta: dict,
            x86_ref: np.ndarray | None = None, arm_ref: np.ndarray | None = None,
            fp32: np.ndarray | None = None, reference_kernels: bool = True) -> dict:
    """x86 vs aarch64 logits of one artifact. For INT8, `*_ref` are the reference-kernel runs
    (`reference_kernels=False`: the runtime has no such path, e.g. ExecuTorch's program is
    delegated to XNNPACK as a whole, so only the default kernels are checked); `fp32` is the x86
    FP32 artifact of the same format (how far each side is from FP32)."""
    diff = np.abs(x86.astype(np.float64) - arm.astype(np.float64))
    scale = float(np.max(np.abs(x86)))
    row = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
           "logit_scale": scale, "rel_diff": float(diff.max() / max(scale, 1e-12))}
    checks = []
    if art.precision == "int8":
        t = TOLERANCES["int8"]
        step, source, mismatch = output_step(art, x86_meta, arm_meta, x86)
        tol = t["default_steps"] * step
        steps = np.rint(diff / step).astype(int).ravel()
        q = {"step": step, "step_source": source, "max_steps": float(diff.max() / step),
             "mean_steps": float(diff.mean() / step),
             "steps_histogram": {str(k): int(v) for k, v in zip(*np.unique(steps, return_counts=True), strict=True)},
             "within_2_steps": bool(diff.max() <= 2 * step * (1 + 1e-4)), "quantization_mismatch": mismatch}
        checks.append(diff.max() <= tol * (1 + 1e-4))
        if x86_ref is not None and arm_ref is not None:
            ref_diff = np.abs(x86_ref.astype(np.float64) - arm_ref.astype(np.float64))
            q["reference_max_steps"] = float(ref_diff.max() / step)
            q["kernel_spread_steps"] = {"x86": float(np.abs(x86 - x86_ref).max() / step),
                                        "aarch64": float(np.abs(arm - arm_ref).max() / step)}
            checks.append(ref_diff.max() <= t["reference_steps"] * step * (1 + 1e-4))
        else:
            q["reference_max_steps"] = None
            checks.append(not reference_kernels)  # the strict check could not be made where it exists
        row["int8"] = q
        row["tolerance"] = {"abs": tol, "rule": f"reference kernels ≤ {t['reference_steps']} steps; "
                                                f"default kernels ≤ {t['default_steps']} steps of {step:.6g}"}
    else:
        tol, rule = _tolerance(art.precision, scale)
        checks.append(diff.max() <= tol)
        row["tolerance"] = {"abs": tol, "rule": rule}
    if fp32 is not None:
        row["vs_fp32"] = {"x86_max_abs_diff": float(np.abs(x86 - fp32).max()),
                          "aarch64_max_abs_diff": float(np.abs(arm - fp32).max()),
                          "x86_top1_agreement": float(np.mean(x86.argmax(1) == fp32.argmax(1))),
                          "aarch64_top1_agreement": float(np.mean(arm.argmax(1) == fp32.argmax(1)))}
    top_x, top_a = x86.argmax(1), arm.argmax(1)
    srt = np.sort(x86, axis=1)
    margin = srt[:, -1] - srt[:, -2] if x86.shape[1] > 1 else np.full(len(x86), np.inf)
    disagree = np.flatnonzero(top_x != top_a)
    near_tie = [int(i) for i in disagree if margin[i] <= 2 * tol]
    row.update({"n": int(len(x86)), "top1_agreement": float(np.mean(top_x == top_a)),
                "disagreements": int(len(disagree)), "disagreements_near_tie": len(near_tie),
                "min_x86_margin": float(margin.min())})
    row["pass"] = bool(all(checks) and len(disagree) == len(near_tie))
    return row


# ---- one bundle ---------------------------------------------------------------------------------
def real_inputs(bundle, n: int):
    from edgemed.bench.accuracy import load_split

    fitted, labels, info = load_split(bundle, None, "test", None, n)
    return fitted, labels, bundle.preprocess.normalize(fitted).astype(np.float32), info


def dataset_file(bundle) -> Path | None:
    """The bundle's data set file, for `edgemed bench` accuracy inside the chroot."""
    from edgemed.data.catalog import CATALOG
    from edgemed.data.datasets import find_or_download

    name = (bundle.manifest.get("provenance", {}).get("dataset") or {}).get("name")
    if name not in CATALOG:
        return None
    try:
        return find_or_download(CATALOG[name], None, download=False)
    except Exception:
        return None


def save_pngs(fitted: np.ndarray, labels: np.ndarray, class_names: list[str], folder: Path) -> list[Path]:
    """One test image per class (the first of each in the subset) as PNG, for `edgemed predict`."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c in np.unique(labels)[:4]:
        i = int(np.flatnonzero(labels == c)[0])
        img = fitted[i][..., 0] if fitted.shape[-1] == 1 else fitted[i]
        p = folder / f"{i:03d}_{class_names[int(c)]}.png"
        Image.fromarray(img).save(p)
        out.append(p)
    return out


def run_cli(chroot: Chroot, cpu: str, job_in: str, job: Path, bundle, pngs: list[Path],
            x86_logits: dict, labels: np.ndarray, predict_choices: list[list[str]], bench_ids: list[str],
            has_data: bool, bench_iterations: int, limit: int) -> dict:
    """The real `edgemed` CLI inside the chroot; predictions checked against x86."""
    from edgemed.metrics import softmax
    from edgemed.predict import predict

    res = {"cpu": cpu}
    t = time.perf_counter()
    r = chroot.run(["edgemed", "bundle", "verify", f"{job_in}/bundle"], cpu=cpu)
    res["verify"] = {"rc": r.returncode, "output": _last_line(r.stdout + r.stderr),
                     "pass": r.returncode == 0 and "match their sha256" in r.stdout,
                     "seconds": time.perf_counter() - t}

    png_in = [f"{job_in}/img/{p.name}" for p in pngs]
    res["predict"] = []
    for extra in predict_choices:
        t = time.perf_counter()
        r = chroot.run(["edgemed", "predict", f"{job_in}/bundle", *png_in, "--json", "--threads", "1", *extra], cpu=cpu)
        entry = {"args": " ".join(extra) or "(default)", "rc": r.returncode, "seconds": time.perf_counter() - t}
        try:
            out = json.loads(r.stdout)
        except json.JSONDecodeError:
            entry.update(error=_last_line(r.stderr or r.stdout), pass_=False)
            res["predict"].append(_fix_pass(entry))
            continue
        art = bundle.artifact(out["artifact"])
        _, host = predict(bundle, pngs, artifact=art.id, threads=1)
        rows = []
        for arm_p, x86_p in zip(out["predictions"], host, strict=True):
            rows.append({"file": Path(arm_p["file"]).name, "aarch64": arm_p["class"], "x86": x86_p.top[0][0],
                         "p_aarch64": arm_p["probability"], "p_x86": x86_p.top[0][1]})
        dp = max(abs(r_["p_aarch64"] - r_["p_x86"]) for r_ in rows)
        # probability tolerance: the artifact's logit tolerance (softmax is 1/2-Lipschitz per
        # probability in the max norm: |Δp_i| ≤ 2 p_i (1 - p_i) max|Δz| ≤ max|Δz| / 2)
        logit_tol = _prob_tolerance(art, x86_logits.get(art.id))
        entry.update(artifact=art.id, predictions=rows, max_abs_prob_diff=dp, prob_tolerance=logit_tol,
                     pass_=r.returncode == 0 and all(r_["aarch64"] == r_["x86"] for r_ in rows) and dp <= logit_tol)
        res["predict"].append(_fix_pass(entry))

    ids = [i for i in bench_ids if i in {a.id for a in bundle.artifacts}]
    t = time.perf_counter()
    cmd = ["edgemed", "bench", f"{job_in}/bundle", "--artifacts", ",".join(ids), "--threads", "1",
           # latency under emulation means nothing: no peak probe, no large-batch throughput
           "--iterations", str(bench_iterations), "--no-memory", "--no-peak", "--large-batch", "0", "--out", f"{job_in}/out-cli/bench.json", "--force"]
    cmd += ["--limit", str(limit), "--data-dir", f"{job_in}/data"] if has_data else ["--no-accuracy"]
    r = chroot.run(cmd, cpu=cpu)
    bench = {"command": " ".join(cmd).replace(job_in, "BUNDLE_DIR"), "rc": r.returncode,
             "seconds": time.perf_counter() - t,
             "note": "latency under qemu emulation is meaningless; this checks that bench runs on aarch64"}
    bench_file = job / "out-cli" / "bench.json"
    ok = r.returncode == 0 and bench_file.is_file()
    if ok:
        result = json.loads(bench_file.read_text())
        bench["rows"] = []
        for row in result["rows"]:
            entry = {"artifact": row["artifact"], "latency_p50_ms_emulated": row["latency_ms"]["p50"]}
            acc = ((row.get("accuracy") or {}).get("metrics") or {}).get("accuracy", {}).get("value")
            arm_file = job / f"out-{cpu}" / f"{row['artifact']}.npy"
            if acc is not None and len(labels) == limit:
                # bench picks the same stratified subset (seed 0) as this script: its accuracy must
                # be the one the aarch64 logits give; x86's is shown beside it (flips are checked
                # in the parity table)
                entry["accuracy_aarch64"] = acc
                if arm_file.is_file():
                    from_logits = float(np.mean(softmax(np.load(arm_file)).argmax(1) == labels))
                    entry["accuracy_aarch64_logits"] = from_logits
                    ok = ok and abs(acc - from_logits) < 0.5 / len(labels)
                if row["artifact"] in x86_logits:
                    entry["accuracy_x86_same_images"] = float(np.mean(x86_logits[row["artifact"]].argmax(1) == labels))
            bench["rows"].append(entry)
        ok = ok and {r_["artifact"] for r_ in bench["rows"]} == set(ids)
        bench["system_isa"] = result["system"]["isa"]
    else:
        bench["error"] = _last_line(r.stderr or r.stdout)
    bench["pass"] = bool(ok)
    res["bench"] = bench
    res["pass"] = res["verify"]["pass"] and all(p["pass"] for p in res["predict"]) and bench["pass"]
    return res


def _prob_tolerance(art, x86_logits) -> float:
    if art.precision == "int8":
        q = (art.details or {}).get("output_quantization") or {}
        step = q.get("scale") or 0.05
        return TOLERANCES["int8"]["default_steps"] * step
    scale = float(np.max(np.abs(x86_logits))) if x86_logits is not None else 10.0
    return _tolerance(art.precision, scale)[0]


def _fix_pass(entry: dict) -> dict:
    entry["pass"] = bool(entry.pop("pass_"))
    return entry


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def run_bundle(chroot: Chroot, bundle_path: Path, *, n: int, cpus: list[str], bench_ids: list[str] | None,
               bench_iterations: int, cli: bool, pte: dict) -> dict:
    """Compare every artifact of one bundle that `edgemed[runtime]` runs, and its ExecuTorch ones
    through `pte` (pte_runner's answer); `bench_ids`: the CLI bench check's artifacts (None: every
    FP32 and INT8 one)."""
    from edgemed.export.bundle import load_bundle

    bundle = load_bundle(bundle_path)
    name = bundle.root.name
    prov = bundle.manifest.get("provenance") or {}
    entry = {"bundle": str(bundle_path), "name": name, "sha256": bundle.sha256,
             "model": (bundle.manifest.get("model") or {}).get("name"), "timings_s": {},
             "checkpoint": prov.get("checkpoint"),  # which weights: e.g. a shipped zoo file's sha256
             "int8": {k: (prov.get("quantize") or {}).get(k) for k in ("routes", "max_drop_points")}}
    runnable, pte_arts, skipped = [], [], []  # runnable: in edgemed[runtime], so also the CLI checks
    for a in bundle.artifacts:
        if a.format == "executorch" and "path" in pte:
            pte_arts.append(a)
        elif a.format == "executorch":
            skipped.append({"id": a.id, "reason": pte["skipped"]})
        elif a.format not in RUNTIME_FORMATS:
            skipped.append({"id": a.id, "reason": f"{a.format} is not in edgemed[runtime]"})
        else:
            runnable.append(a)
    entry["skipped"] = skipped
    job = chroot.wipe_job(name)
    job_in = f"{JOBS}/{name}"
    t = time.perf_counter()
    shutil.copytree(bundle.root, job / "bundle")
    fitted, labels, x, split = real_inputs(bundle, n)
    np.save(job / "inputs.npy", x)
    entry["inputs"] = {"n": int(len(x)), "shape": list(x.shape), "split": split,
                       "labels": {bundle.class_names[int(c)]: int(k) for c, k in zip(*np.unique(labels, return_counts=True), strict=True)},
                       "sha256": hashlib.sha256((job / "inputs.npy").read_bytes()).hexdigest()}
    pngs = save_pngs(fitted, labels, bundle.class_names, job / "img")
    data = dataset_file(bundle)
    if data is not None:
        (job / "data").mkdir()
        shutil.copy2(data, job / "data" / data.name)
    shutil.copy2(HERE / "run_logits.py", job / "run_logits.py")
    ids = [a.id for a in runnable]
    ref_ids = [a.id for a in runnable if a.precision == "int8"]  # also run on the reference kernels
    entry["timings_s"]["prepare"] = time.perf_counter() - t

    # x86: the same script, the host's Python and wheels (ExecuTorch through its Python bindings)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, str(job / "run_logits.py"), str(job / "bundle"), str(job / "inputs.npy"),
                        str(job / "out-x86"), *ids, *[a.id for a in pte_arts], "--threads", "1", "--repeat", "2",
                        "--reference", *ref_ids], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"x86 run failed: {r.stderr[-2000:]}")
    entry["timings_s"]["x86_run"] = time.perf_counter() - t
    x86_meta = json.loads((job / "out-x86" / "meta.json").read_text())
    x86_logits = {i: np.load(job / "out-x86" / f"{i}.npy") for i in x86_meta["artifacts"]}
    entry["x86"] = {"system": x86_meta["system"], "artifacts": x86_meta["artifacts"]}
    fp32_of = {a.format: a.id for a in [*runnable, *pte_arts] if a.precision == "fp32"}
    if pte_arts:  # the C++ runner itself, on x86, against the Python bindings: should be identical
        (job / "inputs.f32").write_bytes(x.astype("<f4").tobytes())
        entry["pte_runner_vs_bindings_x86"] = {}
        for a in pte_arts:
            r = subprocess.run([pte["x86_path"], str(a.path), str(job / "inputs.f32"), *map(str, x.shape),
                                str(job / f"{a.id}.x86-cpp.f32")], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"x86 pte_logits failed on {a.id}: {_last_line(r.stderr)}")
            cpp = np.fromfile(job / f"{a.id}.x86-cpp.f32", "<f4").reshape(x86_logits[a.id].shape)
            entry["pte_runner_vs_bindings_x86"][a.id] = float(np.abs(cpp - x86_logits[a.id]).max())

    entry["aarch64"], entry["parity"] = {}, []
    for cpu in cpus:
        t = time.perf_counter()
        arm_logits, meta = {}, {"system": None, "artifacts": {}}
        if ids:
            r = chroot.run(["python", f"{job_in}/run_logits.py", f"{job_in}/bundle", f"{job_in}/inputs.npy",
                            f"{job_in}/out-{cpu}", *ids, "--threads", "1", "--reference", *ref_ids], cpu=cpu)
            if r.returncode != 0:
                entry["parity"] += failed_rows(runnable, cpu, _last_line(r.stderr))
                if not pte_arts:
                    entry["aarch64"][cpu] = {"error": r.stderr[-3000:]}
                    continue
            else:
                meta = json.loads((job / f"out-{cpu}" / "meta.json").read_text())
                arm_logits = {i: np.load(job / f"out-{cpu}" / f"{i}.npy") for i in ids}
        else:  # the emulated CPU's system info (ISA flags) without running a model
            r = chroot.run(["python", "-c", "import json; from edgemed.bench.system import system_info; "
                            "print(json.dumps(system_info()))"], cpu=cpu)
            meta["system"] = json.loads(r.stdout) if r.returncode == 0 else None
        warnings = sorted({ln.strip() for ln in r.stderr.splitlines() if "cpuinfo" in ln.lower()})[:6] if ids else []
        if pte_arts:
            try:
                pte_logits, pte_meta = run_pte(chroot, pte["path"], cpu, job, job_in, bundle, pte_arts, x)
                arm_logits.update(pte_logits)
                meta["artifacts"].update(pte_meta)
            except (RuntimeError, SetupError, subprocess.TimeoutExpired) as e:
                entry["parity"] += failed_rows(pte_arts, cpu, str(e))
        entry["timings_s"][f"aarch64_run_{cpu}"] = time.perf_counter() - t
        entry["aarch64"][cpu] = {"board": CPUS.get(cpu, cpu), "artifacts": meta["artifacts"], "warnings": warnings,
                                 **({"system": meta["system"]} if meta["system"] else {})}
        for a in [a for a in [*runnable, *pte_arts] if a.id in arm_logits]:
            arm = arm_logits[a.id]
            row = {"artifact": a.id, "format": a.format, "precision": a.precision, "cpu": cpu,
                   "runtime": meta["artifacts"][a.id]["session"]["runtime"]}
            ref = {}
            if a.id in ref_ids:
                ref = {"x86_ref": np.load(job / "out-x86" / f"{a.id}.ref.npy"),
                       "arm_ref": np.load(job / f"out-{cpu}" / f"{a.id}.ref.npy")}
            fp32_id = fp32_of.get(a.format)
            fp32 = x86_logits[fp32_id] if fp32_id and a.precision != "fp32" else None
            row.update(compare(a, x86_logits[a.id], arm, x86_meta["artifacts"][a.id], meta["artifacts"][a.id],
                               fp32=fp32, reference_kernels=a.format in RUNTIME_FORMATS, **ref))
            entry["parity"].append(row)

    if cli and not runnable:
        entry["cli"] = {"skipped": "no artifact of this bundle is in edgemed[runtime]"}
    elif cli:
        predict_choices = [[]]  # the default choice first: what a user gets with no options
        if any(a.format == "onnx" for a in bundle.artifacts):
            predict_choices.append(["--format", "onnx"])
        predict_choices += [["--artifact", a.id] for a in runnable if a.precision == "int8"]
        if bench_ids is None:
            bench_ids = [a.id for a in runnable if a.precision in ("fp32", "int8")]
        t = time.perf_counter()
        entry["cli"] = run_cli(chroot, cpus[0], job_in, job, bundle, pngs, x86_logits, labels, predict_choices,
                               bench_ids, data is not None, bench_iterations, n)
        entry["timings_s"]["cli"] = time.perf_counter() - t
    entry["pass"] = (all(p["pass"] for p in entry["parity"]) and (not runnable or not cli or entry["cli"]["pass"])
                     and all(v == 0.0 for v in entry.get("pte_runner_vs_bindings_x86", {}).values()))
    return entry


def failed_rows(artifacts, cpu: str, error: str) -> list[dict]:
    """Parity rows for artifacts that produced no logits on `cpu`: each fails with `error`."""
    return [{"artifact": a.id, "format": a.format, "precision": a.precision, "cpu": cpu, "pass": False,
             "error": error} for a in artifacts]


def zoo_bundle(spec: str, folder: Path, formats: str = "onnx,tflite") -> tuple[Path, list[dict]]:
    """The bundle a user would ship of a shipped model, built with the CLI: `formats` at FP32 and
    FP16 where the format has it (`edgemed export`), then their INT8 within 0.5 points of
    validation accuracy (`edgemed quantize --base-bundle`, which carries the exported artifacts
    into its bundle)."""
    from benchmarks.common import run_edgemed
    from edgemed.checkpoint import read_checkpoint
    from edgemed.models.pretrained import pretrained_checkpoint

    model, _, dataset = spec.partition(":")
    ckpt = pretrained_checkpoint(model, dataset or True)
    dataset, name = read_checkpoint(ckpt).dataset["name"], ckpt.stem
    tag = "" if formats == "onnx,tflite" else "-" + formats.replace(",", "-")
    exported, calib, out = folder / f"{name}{tag}-export", folder / f"calibration-{name}.json", folder / f"{name}{tag}"
    steps: list[dict] = []
    run_edgemed("export", ckpt, "--formats", formats, "--precision", "fp32,fp16", "--out", exported,
                "--force", log=steps)
    run_edgemed("calibration", "build", dataset, "--size", 300, "--out", calib, "--force", log=steps)
    run_edgemed("quantize", ckpt, "--calib", calib, "--formats", formats, "--max-drop", 0.5,
                "--base-bundle", exported, "--out", out, "--force", log=steps)
    return out, steps


# ---- report -------------------------------------------------------------------------------------
def markdown(payload: dict) -> str:
    from edgemed.report.markdown import md_table
    from edgemed.report.tables import Table

    host = payload["system"]
    lines = [
        "# ARM (aarch64) parity under emulation",
        "",
        f"Result: **{'PASS' if payload['passed'] else 'FAIL'}** — wall time of the whole run "
        f"{payload['wall_s']:.0f} s ({payload['created']}).",
        "",
        "```",
        payload["command"],
        "```",
        "",
        f"- Host (x86 reference): {host['cpu']}, {host['machine']}, {host['cores_available']} cores "
        f"available, ISA {', '.join(host['isa']) or '-'}, {host['distro']}, Python {host['python']}, "
        f"onnxruntime {host['libraries'].get('onnxruntime', '-')}, "
        f"ai-edge-litert {host['libraries'].get('ai-edge-litert', '-')}, numpy {host['libraries'].get('numpy', '-')}",
        f"- Emulation: {payload['emulation'].get('qemu') or 'qemu'}; binfmt {payload['emulation'].get('binfmt', '-')}",
    ]
    arm_sys = next((c["system"] for b in payload["bundles"] for c in b["aarch64"].values() if "system" in c), None)
    if arm_sys:
        lines.append(
            f"- aarch64 side: {arm_sys['distro']}, Python {arm_sys['python']}, installed with "
            f"`pip install \"edgemed[runtime]\"` (no torch, no OpenVINO): onnxruntime "
            f"{arm_sys['libraries'].get('onnxruntime', '-')}, ai-edge-litert "
            f"{arm_sys['libraries'].get('ai-edge-litert', '-')}, numpy {arm_sys['libraries'].get('numpy', '-')}")
    pte = payload.get("executorch_runner") or {}
    if "path" in pte:
        lines.append(
            f"- ExecuTorch (`.pte`) on aarch64: `pte_logits` (benchmarks/arm/pte_logits.cpp, {pte['runner_kb']} KB, "
            f"{pte['compiler']}) over the C++ runtime of the aarch64 executorch {pte['executorch']} wheel "
            f"({pte['runtime_libraries_mb']} MB of libraries: runtime, kernels, XNNPACK delegate, thread pool), without torch or "
            "Python bindings; on x86, edgemed's ExecuTorch session (the Python bindings, which need torch).")
    else:
        lines.append("- ExecuTorch (`.pte`): " + (pte.get("skipped") or "not in these bundles")
                     + " (`--zoo MODEL:DATASET --formats executorch` runs it).")
    if payload.get("aarch64_install_differs_from_repo"):
        lines.append("- Note: the chroot's edgemed was installed before these repository files changed: "
                     + ", ".join(f"`{f}`" for f in payload["aarch64_install_differs_from_repo"]))
    lines.append("- Emulated CPU models (QEMU_CPU) and the ISA flags edgemed read there: " + "; ".join(
        f"`{cpu}` = {c.get('board', cpu)}: {', '.join(c['system']['isa']) if 'system' in c else 'failed'}"
        for cpu, c in payload["bundles"][0]["aarch64"].items()))
    ti = payload.get("tolerances", TOLERANCES)["int8"]  # the run's own, not today's
    lines += ["", f"> {payload['emulation'].get('note', EMULATION_NOTE)}", "",
              "Tolerances on max |logit_x86 − logit_aarch64| over all images and classes: "
              "FP32 ≤ max(1e-5, 2e-6 × max|logit|); FP16 ≤ 3e-2 × max(1, max|logit|) (the export's FP16 "
              "parity tolerance: Cortex-A76 runs FP16 graphs in FP16 arithmetic, x86 in FP32); INT8, in "
              f"output-quantization steps: the reference kernels (TFLite builtin reference ops; onnxruntime "
              f"with graph optimizations off) ≤ {ti['reference_steps']} steps, the default optimised kernels "
              f"≤ {ti['default_steps']} steps (architecture-specific integer kernels round differently after "
              "every layer; see the INT8 notes). Top-1 must agree except near-ties (x86 margin ≤ 2 × "
              "tolerance). Both sides run 1 thread; \"x86 repeat\" is the difference between two x86 runs "
              "(the noise floor); \"vs FP32\" is each side's max |Δlogit| from the x86 FP32 artifact of the "
              "same format.", ""]
    for b in payload["bundles"]:
        inp = b["inputs"]
        lines += [f"## {b['name']}", ""]
        ck, q = b.get("checkpoint"), b.get("int8") or {}
        if ck:
            lines += [f"Weights: `{ck['file']}` (sha256 {ck['sha256'][:16]}…)"
                      + ("; INT8 by `edgemed quantize` (" + ", ".join(f"{f} route {r}" for f, r in q["routes"].items())
                         + f", bound {q['max_drop_points']} points of validation accuracy)" if q.get("routes") else "")
                      + ".", ""]
        lines += [
                  f"{inp['n']} real {inp['split']['name']} {inp['split']['split']} images (stratified: "
                  f"{', '.join(f'{k} {v}' for k, v in inp['labels'].items())}), preprocessed once on x86 with "
                  f"the bundle's PreprocessSpec; the same float32 batch (sha256 {inp['sha256'][:12]}…) fed to both sides.", ""]
        if b["skipped"]:
            lines += ["Not run on aarch64 here: " + "; ".join(f"`{s['id']}` ({s['reason']})" for s in b["skipped"]) + ".", ""]
        rows, int8_notes = [], []
        for p in b["parity"]:
            if "error" in p:
                rows.append([p["artifact"], "-", p["cpu"], *["-"] * 8, f"**FAIL**: {p['error']}"])
                continue
            rep = b["x86"]["artifacts"][p["artifact"]].get("repeat_max_abs_diff")
            agree = f"{p['top1_agreement']:.4f}" + (f" ({p['disagreements']} flips, {p['disagreements_near_tie']} near-tie)" if p["disagreements"] else "")
            v = p.get("vs_fp32")
            vs = f"{v['x86_max_abs_diff']:.3g} / {v['aarch64_max_abs_diff']:.3g}" if v else "-"
            q = p.get("int8")
            tol = f"{p['tolerance']['abs']:.3g}"
            if q:
                tol += f" ({ti['default_steps']} steps)"
                ref = q["reference_max_steps"]
                spread = q.get("kernel_spread_steps") or {}
                int8_notes.append(
                    f"- `{p['artifact']}` on `{p['cpu']}`: output step {q['step']:.4g} ({q['step_source']}); default kernels "
                    f"differ by at most {q['max_steps']:.2f} steps (mean {q['mean_steps']:.2f}; histogram of |Δ| in steps "
                    f"{q['steps_histogram']}) — {'within' if q['within_2_steps'] else '**outside**'} 2 steps; reference kernels "
                    + (f"differ by {ref:.2f} steps" if ref is not None else
                       "are not available for ExecuTorch (its program is delegated to XNNPACK whole)"
                       if p.get("format") == "executorch" else "were not run")
                    + (f"; default-vs-reference kernels on the same machine: x86 {spread['x86']:.2f}, aarch64 "
                       f"{spread['aarch64']:.2f} steps" if spread else "") + ".")
            rows.append([p["artifact"], p["runtime"], p["cpu"], str(p["n"]), f"{p['max_abs_diff']:.3g}",
                         f"{p['rel_diff']:.2g}", f"{p['mean_abs_diff']:.2g}", tol, agree, vs,
                         str(rep) if rep is not None else "-", "pass" if p["pass"] else "**FAIL**"])
        check = b.get("pte_runner_vs_bindings_x86")
        if check:
            lines += ["pte_logits against the Python bindings, both on x86, same images: max |Δlogit| "
                      + ", ".join(f"`{k}` {v:.3g}" for k, v in check.items()) + ".", ""]
        lines.append(md_table(Table(["artifact", "runtime", "aarch64 CPU", "n", "max abs diff", "rel. to max|logit|",
                                     "mean abs diff", "tolerance", "top-1 agreement", "vs FP32: x86 / aarch64",
                                     "x86 repeat", "result"], rows)))
        if int8_notes:
            lines += ["", "INT8 notes: the reference kernels are portable code, so their agreement shows the model "
                      "computes the same on both architectures; the default kernels are architecture-specific "
                      "(XNNPACK's x86 vs NEON micro-kernels; onnxruntime fuses s8s8 QDQ groups into integer "
                      "kernels on ARM where x86 keeps them as float between DequantizeLinear/QuantizeLinear), "
                      "and each requantization may round one step apart, which accumulates over the layers.",
                      "", *int8_notes]
        cli = b.get("cli")
        if cli and "skipped" in cli:
            lines += ["", f"CLI inside the chroot: not run ({cli['skipped']})."]
        elif cli:
            lines += ["", f"CLI inside the chroot (`{cli['cpu']}`):", "",
                      f"- `edgemed bundle verify`: {'pass' if cli['verify']['pass'] else '**FAIL**'} — {cli['verify']['output']}"]
            for pr in cli["predict"]:
                if "error" in pr:
                    lines.append(f"- `edgemed predict --json {pr['args']}`: **FAIL** — {pr['error']}")
                    continue
                preds = ", ".join(f"{r['file']} → {r['aarch64']} ({r['p_aarch64']:.4f}; x86 {r['x86']} {r['p_x86']:.4f})"
                                  for r in pr["predictions"])
                lines.append(f"- `edgemed predict --json {pr['args']}` ({pr['artifact']}): "
                             f"{'pass' if pr['pass'] else '**FAIL**'} — {preds}; max |Δp| {pr['max_abs_prob_diff']:.2g}")
            bn = cli["bench"]
            detail = "; ".join(
                f"{r['artifact']} accuracy {r['accuracy_aarch64']:.4f}"
                + (f" (x86 on the same images {r['accuracy_x86_same_images']:.4f})" if "accuracy_x86_same_images" in r else "")
                if "accuracy_aarch64" in r else r["artifact"] for r in bn.get("rows", [])) or bn.get("error", "")
            lines.append(f"- `{bn['command']}`: {'pass' if bn['pass'] else '**FAIL**'} — {detail}. "
                         f"Latency is not reported: {bn['note']}.")
        tm = b["timings_s"]
        lines += ["", "Time (s): " + ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in tm.items()), ""]
    made = payload.get("made_bundles") or {}
    if made:
        lines += ["Bundles built for this run from the shipped weights (the CLI, on x86):", ""]
        lines += [f"- `{name}`: " + "; ".join(f"`{step['command']}` ({step['seconds']:.0f} s)" for step in steps)
                  for name, steps in made.items()]
        lines.append("")
    lines += ["Reproduce (root: chroot and mount): `sudo bash benchmarks/arm/setup_rootfs.sh && sudo env "
              "EDGEMED_DATA_DIR=../shared/data \"$(command -v python)\" -m benchmarks.arm.compare_arm "
              "[BUNDLE ...] [--zoo MODEL:DATASET ...]`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="*", type=Path, help="bundle folders")
    ap.add_argument("--zoo", action="append", default=[], metavar="MODEL:DATASET",
                    help="first build the bundle of a shipped model (export FP32/FP16, then quantize INT8 into it)")
    ap.add_argument("--formats", default="onnx,tflite",
                    help="formats of the --zoo bundles (default onnx,tflite; executorch: ExecuTorch FP32 and INT8)")
    ap.add_argument("--n", type=int, default=64, help="real test images (stratified; default 64)")
    ap.add_argument("--cpus", default="cortex-a72,cortex-a76",
                    help=f"emulated ARM CPU models, comma list (QEMU_CPU): {', '.join(CPUS)} (default: cortex-a72,cortex-a76)")
    ap.add_argument("--bench-artifacts", default="",
                    help="artifacts for the CLI bench check, comma list (default: every FP32 and INT8 one)")
    ap.add_argument("--bench-iterations", type=int, default=20)
    ap.add_argument("--no-cli", action="store_true", help="skip the CLI checks (verify, predict, bench)")
    ap.add_argument("--rootfs", type=Path, default=Path(os.environ.get("EDGEMED_ARM_ROOTFS", DEFAULT_ROOTFS)))
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where arm_emulated.json/.md go")
    ap.add_argument("--zoo-dir", type=Path, default=WORK / "arm" / "bundles", help="where --zoo bundles are built")
    ap.add_argument("--name", default="arm_emulated", help="results file name (without extension)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    cpus = [c.strip() for c in args.cpus.split(",") if c.strip()]
    if not args.bundles and not args.zoo:
        ap.error("give bundle folders or --zoo MODEL:DATASET")
    from edgemed.errors import EdgemedError
    from edgemed.fileio import check_writable

    try:  # before the long build and emulation
        check_writable(args.out_dir / f"{args.name}.json")
    except EdgemedError as e:
        print(f"compare_arm: {e}", file=sys.stderr)
        return 2
    try:
        chroot = Chroot(args.rootfs)
    except SetupError as e:
        print(f"compare_arm: {e}", file=sys.stderr)
        return 2
    from edgemed.bench.system import system_info

    bench_ids = [s for s in args.bench_artifacts.split(",") if s] or None
    made, bundles = {}, list(args.bundles)
    for spec in args.zoo:
        folder, steps = zoo_bundle(spec, args.zoo_dir, args.formats)
        made[Path(folder).name] = steps
        bundles.append(folder)
    from edgemed.export.bundle import load_bundle

    pte = {"skipped": "no ExecuTorch artifact"}
    if any(a.format == "executorch" for b in bundles for a in load_bundle(b).artifacts):
        try:
            pte = pte_runner(chroot, WORK / "arm")
        except SetupError as e:
            print(f"compare_arm: {e}", file=sys.stderr)
            return 2
        if "path" not in pte:  # never a PASS that skipped the bundle's ExecuTorch artifacts
            print(f"compare_arm: cannot run the ExecuTorch artifacts: {pte['skipped']}", file=sys.stderr)
            return 2
    entries = []
    with chroot.mounted():
        for b in bundles:
            print(f"compare_arm: {b} …", file=sys.stderr)
            entries.append(run_bundle(chroot, b, n=args.n, cpus=cpus, bench_ids=bench_ids,
                                      bench_iterations=args.bench_iterations, cli=not args.no_cli, pte=pte))
    payload = {
        "command": command_line().replace("python ", "sudo python " if os.environ.get("SUDO_USER") else "python ", 1),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "system": system_info(),
        "emulation": {**qemu_info(), "cpus": {c: CPUS.get(c, c) for c in cpus}, "note": EMULATION_NOTE},
        "tolerances": TOLERANCES,
        "executorch_runner": pte,
        "aarch64_install_differs_from_repo": chroot.stale,
        "bundles": entries,
        "made_bundles": made,
        "passed": all(e["pass"] for e in entries),
        "wall_s": time.perf_counter() - started,
    }
    save_results(args.name, payload, markdown, folder=args.out_dir)
    for e in entries:
        for p in e["parity"]:
            print(f"{e['name']:>44} {p['artifact']:>12} {p['cpu']:>10}: max|Δ| {p.get('max_abs_diff', float('nan')):.3g} "
                  f"(tol {p.get('tolerance', {}).get('abs', float('nan')):.3g}) top-1 {p.get('top1_agreement', float('nan')):.4f} "
                  f"{'pass' if p['pass'] else 'FAIL'}")
        if "cli" in e:
            print(f"{e['name']:>44} CLI verify/predict/bench: {'pass' if e['cli']['pass'] else 'FAIL'}")
    print(f"compare_arm: {'PASS' if payload['passed'] else 'FAIL'} in {payload['wall_s']:.0f} s; "
          f"results in {args.out_dir / (args.name + '.md')}")
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
