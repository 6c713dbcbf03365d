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
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64") or "asimd" in flags:
        return sorted(ARM_NAMES.get(f, f) for f in ARM_FLAGS if f in flags)
    return [f for f in X86_FLAGS if f in flags]


def cores_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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
