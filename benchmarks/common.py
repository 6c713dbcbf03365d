"""Helpers shared by the benchmark scripts: where work files go, how results are saved and
rendered (each script's `markdown(payload)` turns its saved JSON into its Markdown page)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from edgemed.bench.system import system_info
from edgemed.fileio import atomic_write_json, atomic_write_text
from edgemed.report.markdown import md_table
from edgemed.report.tables import Table

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


def pip_layout(args: list[str], folder: Path, arch: str = "aarch64") -> str | None:
    """Lay out the wheels pip would install for Linux `arch`, CPython 3.11, into `folder`
    (`pip install --target --platform ... --only-binary=:all:`: nothing is built or run);
    None when it worked, else pip's error tail."""
    import subprocess

    tags = [f"manylinux_2_{v}_{arch}" for v in (28, 27, 17)] + [f"manylinux2014_{arch}", f"linux_{arch}"]
    platform = [a for tag in tags for a in ("--platform", tag)]
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(folder), *platform,
                        "--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:", *args],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else (r.stderr or r.stdout)[-800:]


def package_sizes(folder: Path) -> dict[str, int]:
    """Top-level entries (packages, modules, .libs folders) → bytes on disk; metadata left out."""
    out = {}
    for p in folder.iterdir():
        if p.name.endswith(".dist-info") or p.name in ("bin", "__pycache__"):
            continue
        out[p.name] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return out


def size_summary(sizes: dict[str, int]) -> dict:
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:8]
    return {"total_mb": round(sum(sizes.values()) / 1e6, 1), "largest_mb": {k: round(v / 1e6, 1) for k, v in top}}


def size_table(installs: dict, goal_mb: float | None = None) -> Table:
    """Install sizes (`size_summary` results, or {"error": ...}), with a within-goal column if given."""
    rows = []
    for name, s in installs.items():
        goal = [] if goal_mb is None else ["–" if "error" in s else "yes" if s["total_mb"] <= goal_mb else "no"]
        if "error" in s:
            cells = ["–", *goal, f"pip failed: {(s['error'].strip().splitlines() or ['?'])[-1]}"]
        else:
            cells = [f"{s['total_mb']:.0f}", *goal, ", ".join(f"{k} {v:.0f}" for k, v in s["largest_mb"].items())]
        rows.append([name, *cells])
    columns = ["install", "MB", *([] if goal_mb is None else [f"within {goal_mb:g} MB"]), "largest packages (MB)"]
    return Table(columns, rows, right={1})


def steps_table(steps: list[dict]) -> Table:
    """The `edgemed` commands a benchmark ran (`run_edgemed`'s log)."""
    return Table(["step", "exit", "seconds"], [[s["command"], str(s["exit_code"]), f"{s['seconds']:.0f}"] for s in steps],
                 right={1, 2})


def edgemed_wheel(folder: Path) -> Path:
    """A wheel of this checkout (no dependencies), to install as a device would."""
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(ROOT.parent)],
                   check=True)
    return next(folder.glob("edgemed-*.whl"))


def bench_rows(results: Path) -> list[dict]:
    """The figures a benchmark page quotes from one `edgemed bench` results file, per row."""
    d = json.loads(Path(results).read_text())
    out = []
    for r in d["rows"]:
        acc = r.get("accuracy") or {}
        ret = (acc.get("retention") or {}).get("accuracy") or {}
        out.append({"artifact": r["artifact"], "format": r["format"], "precision": r["precision"],
                    "runtime": r["runtime"], "threads": r["threads"], "p50_ms": r["latency_ms"]["p50"],
                    "p99_ms": r["latency_ms"]["p99"], "size_mb": r["size_bytes"] / 2**20,
                    "speedup_vs_torch": r["ratio_to_baseline"]["speedup_p50"],
                    "accuracy": acc["metrics"]["accuracy"]["value"],
                    "delta_points": 100 * ret["difference"] if ret else 0.0,
                    "delta_ci": [100 * c for c in ret["ci"]] if ret.get("ci") else None})
    return out


def load_results(name: str) -> dict:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else {}


def save_results(name: str, payload: dict, render: Callable[[dict], str], folder: Path = RESULTS) -> None:
    """Write NAME.json, then NAME.md rendered from that JSON as read back, so the page holds
    nothing the JSON lacks and `python -m benchmarks.render NAME` reproduces it. The payload's
    own `command` or `system` wins over this process's."""
    path = folder / f"{name}.json"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"command": command_line(), "system": system_info(), **payload})
    atomic_write_text(folder / f"{name}.md", render(json.loads(path.read_text())))


def host_label(host: dict | None) -> str:
    """A machine's CPU in a few words (from host_info or system_info): AMX changes what bf16
    training and INT8 inference cost."""
    if not host:
        return "not recorded"
    return host.get("cpu", "?") + (" (AMX)" if any(f.startswith("amx") for f in host.get("isa", [])) else "")


def system_line(sysinfo: dict) -> str:
    return (f"{sysinfo['cpu']} ({sysinfo['cores_available']} cores available; "
            f"ISA {', '.join(sysinfo['isa'])}), {sysinfo['distro'] or sysinfo['os']}, "
            f"Python {sysinfo['python']}, torch {sysinfo['libraries'].get('torch', '-')}")


def page(payload: dict, title: str, body: list[str | Table], command: str | None = None,
         machine: str | None = None) -> str:
    """A results page: `# title`, the command and machine of `payload`, then `body`'s blocks
    (Markdown text, or a Table) with a blank line between them. `command` and `machine` (Markdown)
    replace the payload's only where the page gathers separate runs that each record their own."""
    head = f"Command: {command or '`' + payload['command'] + '`'}  \nMachine: {machine or system_line(payload['system'])}"
    blocks = [f"# {title}", head, *(md_table(b) if isinstance(b, Table) else b for b in body)]
    return "\n\n".join(blocks) + "\n"


def fmt_ci(value: float | None, ci: list[float] | None, digits: int = 4, ci_digits: int | None = None) -> str:
    """A value with its 95 % CI, `0.8878 [0.8622, 0.9135]`; n/a when not measured."""
    if value is None:
        return "n/a"
    d = digits if ci_digits is None else ci_digits
    return f"{value:.{digits}f}" + (f" [{ci[0]:.{d}f}, {ci[1]:.{d}f}]" if ci else "")
