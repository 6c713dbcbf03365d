"""What else the machine did while bench was timing: CPU time taken by other processes on the
cores this process may use, CPU steal (a virtual machine's host taking the cores back), this
process's involuntary context switches, load average and clock frequency. Linux /proc and
/sys only; elsewhere the fields are None and the verdict rests on the latency spread alone."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Snapshot:
    at: float  # time.monotonic()
    own_cpu_s: float  # this process, all its threads (the runtimes' worker threads included)
    involuntary_switches: int
    busy_s: float | None  # all processes, on the cores this process may run on
    steal_s: float | None
    cores: int
    loadavg: tuple[float, float, float] | None
    freq_mhz: float | None


def _cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _proc_stat(cores: set[int]) -> tuple[float, float] | tuple[None, None]:
    """(busy seconds, steal seconds) summed over `cores`' lines of /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None, None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = steal = 0
    seen = False
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores):
            continue
        ticks = [int(x) for x in fields[:8]] + [0] * max(0, 8 - len(fields))
        user, nice, system, _idle, _iowait, irq, softirq, st = ticks[:8]
        busy += user + nice + system + irq + softirq  # guest time is already inside user
        steal += st
        seen = True
    return (busy / hz, steal / hz) if seen else (None, None)


def _freq_mhz(cores: set[int]) -> float | None:
    values = []
    for c in sorted(cores)[:64]:
        try:
            values.append(int(Path(f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq").read_text()) / 1e3)
        except (OSError, ValueError):
            continue
    return round(sum(values) / len(values), 1) if values else None


def snapshot() -> Snapshot:
    cores = _cores()
    try:
        import resource  # Unix only

        use = resource.getrusage(resource.RUSAGE_SELF)
        own, switches = use.ru_utime + use.ru_stime, use.ru_nivcsw
    except ImportError:
        times = os.times()
        own, switches = times.user + times.system, 0
    busy, steal = _proc_stat(cores)
    try:
        load = tuple(round(x, 2) for x in os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return Snapshot(time.monotonic(), own, switches, busy, steal, len(cores),
                    load, _freq_mhz(cores))


def load_between(before: Snapshot, after: Snapshot) -> dict:
    """The machine's load over the interval, as a results-file object (shares of the cores
    this process may use, so 0.25 on 2 cores is half a core)."""
    seconds = max(after.at - before.at, 1e-9)
    capacity = seconds * before.cores
    other = steal = None
    if before.busy_s is not None and after.busy_s is not None:
        # the ticks count every process on these cores; ours are subtracted (both are sampled
        # at tick resolution, so a small negative remainder is rounding, not load)
        other = round(min(1.0, max(0.0, (after.busy_s - before.busy_s - (after.own_cpu_s - before.own_cpu_s))
                                   / capacity)), 4)
        steal = round(min(1.0, max(0.0, (after.steal_s - before.steal_s) / capacity)), 4)
    return {"seconds": round(seconds, 3), "cores": before.cores,
            "other_processes_cpu_share": other, "steal_share": steal,
            "own_cpu_share": round(min(1.0, (after.own_cpu_s - before.own_cpu_s) / capacity), 4),
            "involuntary_switches_per_s": round((after.involuntary_switches - before.involuntary_switches) / seconds, 1),
            "loadavg_before": list(before.loadavg) if before.loadavg else None,
            "loadavg_after": list(after.loadavg) if after.loadavg else None,
            "freq_mhz_before": before.freq_mhz, "freq_mhz_after": after.freq_mhz}
