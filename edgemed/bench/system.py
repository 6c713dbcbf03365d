"""What machine a number was measured on: CPU model, cores, the ISA flags that decide INT8/FP16
speed, OS, Python and library versions. No torch import (runs on devices)."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from edgemed.versions import library_versions

X86_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_int8", "amx_bf16")
ARM_FLAGS = ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2", "fphp", "asimdhp")
ARM_NAMES = {"asimd": "neon", "asimddp": "dotprod", "asimdhp": "fp16-simd"}


# aarch64 HWCAP bits (linux arch/arm64/include/uapi/asm/hwcap.h): read from the auxiliary
# vector, which is right on real boards and also under qemu-user emulation, where
# /proc/cpuinfo is the x86 host's file but /proc/self/auxv is the emulated CPU's.
AT_HWCAP, AT_HWCAP2 = 16, 26
ARM_HWCAP = {"asimd": 1 << 1, "fphp": 1 << 9, "asimdhp": 1 << 10, "asimddp": 1 << 20, "sve": 1 << 22}
ARM_HWCAP2 = {"sve2": 1 << 1, "i8mm": 1 << 13, "bf16": 1 << 14}


def _is_arm64() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


def _arm_hwcap_flags() -> set[str] | None:
    """aarch64 feature names from AT_HWCAP/AT_HWCAP2 in /proc/self/auxv (None if unreadable)."""
    import struct

    try:
        data = Path("/proc/self/auxv").read_bytes()
    except OSError:
        return None
    if not data or len(data) % 16:
        return None
    aux = dict(struct.iter_unpack("<QQ", data))  # aarch64 Linux: little-endian (type, value) pairs
    if AT_HWCAP not in aux:
        return None
    hw, hw2 = aux[AT_HWCAP], aux.get(AT_HWCAP2, 0)
    return {f for f, bit in ARM_HWCAP.items() if hw & bit} | {f for f, bit in ARM_HWCAP2.items() if hw2 & bit}


def _cpuinfo_is_foreign() -> bool:
    """True on aarch64 when /proc/cpuinfo describes an x86 CPU: user-mode emulation (qemu-user)
    on an x86 host shows the host's file."""
    info = _cpuinfo()
    return _is_arm64() and ("vendor_id" in info or "flags" in info) and "features" not in info


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info.setdefault(k.strip().lower(), v.strip())
    return info


def cpu_model() -> str:
    info = _cpuinfo()
    if _cpuinfo_is_foreign():
        return f"emulated aarch64 (qemu-user) on host {info.get('model name', 'x86 CPU')}"
    for key in ("model name", "hardware", "cpu model", "processor"):
        if info.get(key) and not info[key].isdigit():
            return info[key]
    try:  # Raspberry Pi and other device-tree boards
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ")
    except OSError:
        pass
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("features") or "").split())
    if _is_arm64():
        hwcap = _arm_hwcap_flags()
        flags = hwcap if hwcap is not None else flags if not _cpuinfo_is_foreign() else set()
    if _is_arm64() or "asimd" in flags:
        return sorted(ARM_NAMES.get(f, f) for f in ARM_FLAGS if f in flags)
    return [f for f in X86_FLAGS if f in flags]


def host_info() -> dict:
    """The CPU a measurement belongs to (a training's wall time, an INT8 latency): model and ISA."""
    return {"cpu": cpu_model(), "isa": isa_flags()}


def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def nvidia_gpus() -> list[dict]:
    """GPUs nvidia-smi reports (name, driver, memory); none where it is absent. No torch needed."""
    import shutil
    import subprocess

    out = []
    if shutil.which("nvidia-smi"):
        try:
            r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=20)
            for line in r.stdout.strip().splitlines():
                name, driver, memory = (part.strip() for part in (line.split(",") + ["", ""])[:3])
                out.append({"name": name, "driver": driver, "memory": memory, "seen_by": "nvidia-smi"})
        except (OSError, subprocess.TimeoutExpired):
            pass
    return out


def system_info() -> dict:
    """A record of the machine and software, stored with every benchmark result."""
    uname = platform.uname()
    return {
        "cpu": cpu_model(),
        "machine": uname.machine,
        "cores_logical": os.cpu_count(),
        "cores_available": cores_available(),
        "isa": isa_flags(),
        "os": f"{uname.system} {uname.release}",
        "distro": _os_release(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "env_threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        "gpus": nvidia_gpus(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return ""
