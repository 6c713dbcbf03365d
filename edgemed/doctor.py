"""`edgemed doctor`: what this machine can do with edgemed, and the command for each missing
piece. Reads package metadata and asks each runtime for its devices; imports no torch unless it
is installed (so it works in the runtime-only install)."""

from __future__ import annotations

import re
from importlib import metadata


def extras() -> list[dict]:
    """Every extra of edgemed with its packages, those of the extras it is made of included:
    installed (version) or missing, and the command that installs it."""
    from edgemed.errors import install_command

    try:
        requires = metadata.requires("edgemed") or []
    except metadata.PackageNotFoundError:
        return []
    by_extra: dict[str, list[str]] = {}
    for req in requires:
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?[^;]*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        if m:
            by_extra.setdefault(m.group(3), []).append(m.group(1) if not m.group(2) else f"{m.group(1)}{m.group(2)}")

    def packages(extra: str, seen: frozenset = frozenset()) -> list[str]:
        out = []
        for pkg in by_extra.get(extra, []):
            if pkg.startswith("edgemed["):  # an extra made of other extras: theirs count too
                for inner in pkg[len("edgemed["):-1].split(","):
                    if inner.strip() not in seen | {extra}:
                        out += packages(inner.strip(), seen | {extra})
            else:
                out.append(pkg)
        return list(dict.fromkeys(out))

    out = []
    for extra in by_extra:
        rows = []
        for pkg in packages(extra):
            try:
                rows.append({"package": pkg, "version": metadata.version(pkg)})
            except metadata.PackageNotFoundError:
                rows.append({"package": pkg, "version": None})
        missing = [r["package"] for r in rows if r["version"] is None]
        out.append({"extra": extra, "packages": rows, "complete": not missing, "missing": missing,
                    "install": None if not missing else install_command(extra, "torch" in missing)})
    return out


def runtimes() -> list[dict]:
    """Each runtime edgemed can run bundles with, its version and the devices it offers here."""
    from edgemed.formats import RUNTIMES, install_hint
    from edgemed.runtime import available_devices

    out = []
    for name in RUNTIMES:
        try:
            devices = available_devices(name)
        except Exception as e:  # a broken install is a finding, not a crash
            devices, error = [], f"{e.__class__.__name__}: {str(e)[:120]}"
        else:
            error = None
        try:
            version = metadata.version(RUNTIMES[name].package)
        except metadata.PackageNotFoundError:
            version = None
        out.append({"runtime": name, "version": version, "devices": devices, "error": error,
                    "install": None if devices else install_hint(name)})
    return out


def gpus() -> list[dict]:
    """GPUs seen by nvidia-smi, and by torch when it is installed."""
    from edgemed.bench.system import nvidia_gpus

    out = nvidia_gpus()
    try:
        import torch
    except ImportError:  # the runtime-only install
        return out
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append({"name": torch.cuda.get_device_name(i), "driver": torch.version.cuda or "",
                        "memory": f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB",
                        "seen_by": f"torch {torch.__version__}"})
    return out


def data(data_dir=None) -> dict:
    """Where edgemed looks for data here, and which known sets are present."""
    from edgemed.data.catalog import CATALOG
    from edgemed.data.datasets import search_dirs

    dirs = search_dirs(data_dir)
    sets = []
    for info in CATALOG.values():
        found = next((d / f"{info.name}.npz" for d in dirs if (d / f"{info.name}.npz").is_file()), None)
        sets.append({"name": info.name, "found": str(found) if found else None,
                     "fix": None if found else ("downloaded on first use (needs the network)" if info.url else
                                                f"put {info.name}.npz in the data folder (set EDGEMED_DATA_DIR)")})
    return {"search": [str(d) for d in dirs], "sets": sets,
            # a folder named by --data-dir or EDGEMED_DATA_DIR that is not there: a typo, said as one
            "missing_folders": [str(d) for d in dirs[:-1] if not d.is_dir()]}  # not the cache: made on first use


def cpu() -> dict:
    from edgemed.bench.system import cores_available, cpu_model, isa_flags

    flags = isa_flags()
    int8 = [f for f in flags if "vnni" in f or f in ("amx_int8", "dotprod", "i8mm")]
    return {"model": cpu_model(), "cores": cores_available(), "isa": flags,
            "int8_acceleration": int8 or None,
            "note": None if int8 else "no VNNI/AMX/dot-product INT8 instructions: INT8 gains will be small here"}


def doctor(data_dir=None) -> dict:
    """The whole report (what `edgemed doctor --json` prints).

    Example: `edgemed.doctor()["runtimes"]`.
    """
    import platform

    from edgemed import __version__

    return {"edgemed": __version__, "python": platform.python_version(), "cpu": cpu(), "gpus": gpus(),
            "runtimes": runtimes(), "extras": extras(), "data": data(data_dir)}
