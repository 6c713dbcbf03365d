"""Wall time of `edgemed demo` (the README's first command) from an empty folder, as a new user
meets it: `/usr/bin/time -v edgemed demo [--train]`, the demo's own stage table, the machine and
its load before and after. Results: benchmarks/results/demo_time.{json,md}.

    EDGEMED_DATA_DIR=../shared/data python -m benchmarks.time_demo [--train]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone

from benchmarks.common import (
    RESULTS,
    edgemed_cli,
    host_label,
    load_results,
    page,
    save_results,
    system_line,
)
from edgemed.report.tables import Table

GOAL = {"demo": 180, "demo --train": 600}  # seconds: the issues' goals


def run_key(command: str, system: dict) -> str:
    """One row per command and host: hosts differ between sessions, and each timing is its host's."""
    return f"{command} on {host_label(system)}"


def markdown(payload: dict) -> str:
    runs, earlier = payload["runs"], payload.get("earlier")
    hosts = {host_label(v["system"]) for v in runs.values()}
    body = ["`python -m benchmarks.time_demo [--train]`: `/usr/bin/time -v edgemed demo` in an empty folder with the "
            "data in EDGEMED_DATA_DIR, as the README's first command runs it. The load averages (1, 5, 15 min) before "
            "and after say whether anything else ran. One section per command and host, the latest timing of each."]
    for v in sorted(runs.values(), key=lambda v: (v["command"], v["started"])):
        stages = [[s["stage"], s["status"], "–" if s["seconds"] is None else str(s["seconds"])] for s in v["stages"]]
        body += [f"## `{v['command']}` on {host_label(v['system'])}: {int(v['wall_seconds'] // 60)} min "
                 f"{v['wall_seconds'] % 60:.0f} s "
                 f"({'meets' if v['goal_met'] else 'misses'} the {v['goal_seconds'] // 60}-minute goal)",
                 f"Started {v['started']} on {system_line(v['system'])}; load before {v['load_before']}, after "
                 f"{v['load_after']}; CPU {v['cpu_percent']} %; peak RSS {v['peak_rss_mb']} MB; exit {v['exit_code']}.",
                 Table(["stage", "status", "seconds"], stages, right={2})]
    if earlier and not any(v["command"] == "edgemed demo --train" for v in runs.values()):
        body.append(f"Earlier, when `edgemed demo` trained first (what `edgemed demo --train` runs now): "
                    f"{int(earlier['wall_s'] // 60)} min {earlier['wall_s'] % 60:.0f} s on {earlier['when']}, "
                    f"{earlier['machine']}; stages {earlier['stages_s']} (seconds), measured by the former "
                    f"`{earlier['command']}`.")
    return page(payload, "`edgemed demo`: wall time", body, command="`python -m benchmarks.time_demo [--train]`",
                machine=None if len(hosts) == 1 else "each section's (the timings were measured on more than one host)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="Time `edgemed demo --train` (the full chain).")
    args = ap.parse_args()
    from edgemed.bench.system import system_info

    key = "demo --train" if args.train else "demo"
    timer = shutil.which("time") or "/usr/bin/time"
    load_before = os.getloadavg()
    folder = tempfile.mkdtemp(prefix="edgemed-demo-")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    r = subprocess.run([timer, "-v", edgemed_cli(), *key.split()], cwd=folder, capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "120"})
    load_after = os.getloadavg()
    shutil.rmtree(folder, ignore_errors=True)
    text = r.stdout + r.stderr
    stages = re.findall(r"│ (import|train|prune|export|quantize|bench|report) +│ (\w[\w ()]*?) +│ ([\d.]+ s|–) ", text)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    seconds = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))) if wall else None
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", text)
    if r.returncode != 0 or seconds is None:
        raise SystemExit(f"edgemed {key} failed ({r.returncode}):\n{text[-3000:]}")
    row = {"command": f"edgemed {key}", "started": started, "exit_code": r.returncode, "wall_seconds": round(seconds, 1),
           "goal_seconds": GOAL[key], "goal_met": seconds <= GOAL[key],
           "stages": [{"stage": s, "status": st, "seconds": None if t == "–" else float(t.split()[0])}
                      for s, st, t in stages],
           "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
           "cpu_percent": int(cpu.group(1)) if cpu else None,
           "load_before": [round(v, 2) for v in load_before], "load_after": [round(v, 2) for v in load_after],
           "system": system_info()}
    prev = load_results("demo_time")
    # rows recorded before they were kept per host are keyed by their command alone
    runs = {run_key(v["command"], v["system"]): v for v in prev.get("runs", {}).values()}
    runs[run_key(row["command"], row["system"])] = row
    # the record of the former timing script (the demo then trained first, as `--train` does now)
    earlier = prev.get("earlier") or ({k: prev[k] for k in ("command", "when", "machine", "wall_s", "stages_s")}
                                      if "wall_s" in prev else None)
    save_results("demo_time", {"runs": runs, "earlier": earlier}, markdown)
    print((RESULTS / "demo_time.md").read_text())


if __name__ == "__main__":
    main()
