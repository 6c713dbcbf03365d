"""Helpers shared by the benchmark scripts: where work files go, how results are saved."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from edgemed.bench.system import system_info
from edgemed.fileio import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parent
WORK = Path(os.environ.get("EDGEMED_BENCH_WORK", ROOT / "work"))  # large artifacts, not committed
RESULTS = ROOT / "results"


def command_line() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["-m", spec.name] if spec is not None and spec.name else [os.path.relpath(sys.argv[0])]
    return "python " + " ".join(shlex.quote(a) for a in head + sys.argv[1:])


def edgemed_cli() -> str:
    """The `edgemed` console script of this interpreter's environment, so a venv need not be activated."""
    exe = Path(sys.executable).with_name("edgemed")
    return str(exe) if exe.exists() else "edgemed"


def run_edgemed(*args, log: list) -> float:
    """Run the installed `edgemed` command as a user would; record the command (file names only),
    exit code and seconds in `log`; stop the benchmark with the output's tail if it fails."""
    import subprocess
    import time

    print("$ edgemed " + " ".join(map(str, args)), flush=True)
    t = time.perf_counter()
    r = subprocess.run([edgemed_cli(), *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    log.append({"command": "edgemed " + " ".join(Path(a).name if "/" in str(a) else str(a) for a in args),
                "exit_code": r.returncode, "seconds": round(seconds, 1)})
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): edgemed {' '.join(map(str, args))}\n{(r.stdout + r.stderr)[-3000:]}")
    return seconds


def load_results(name: str) -> dict:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else {}


def save_results(name: str, payload: dict, markdown: str) -> None:
    payload = {"command": command_line(), "system": system_info(), **payload}
    atomic_write_json(RESULTS / f"{name}.json", payload)
    atomic_write_text(RESULTS / f"{name}.md", markdown)


def system_line(sysinfo: dict) -> str:
    return (f"{sysinfo['cpu']} ({sysinfo['cores_available']} cores available; "
            f"ISA {', '.join(sysinfo['isa'])}), {sysinfo['distro'] or sysinfo['os']}, "
            f"Python {sysinfo['python']}, torch {sysinfo['libraries'].get('torch', '-')}")
