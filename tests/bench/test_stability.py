"""The timing-stability rule, the machine-load record, and the per-image outputs and flipped
cases bench writes for the report."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from edgemed.bench.latency import MIN_QUERIES, stability
from edgemed.bench.load import Snapshot, load_between, snapshot


def _lat(n=500, p50=6.0, p99=9.0, mean=6.5, std=1.0):
    return {"n": n, "p50": p50, "p99": p99, "mean": mean, "std": std}


def test_a_tight_row_is_stable_and_each_disturbance_is_named():
    assert stability(_lat()) == {"p99_over_p50": 1.5, "cv": pytest.approx(0.154, abs=1e-3),
                                 "verdict": "stable", "reasons": []}
    # the disturbed run: p50 82 ms, p99 1,130 ms
    wide = stability(_lat(p50=82.0, p99=1130.0, mean=120.0, std=200.0))
    assert wide["verdict"] == "unstable" and wide["p99_over_p50"] == pytest.approx(13.78, abs=0.01)
    assert any("13.8× p50" in r for r in wide["reasons"]) and any("variation 1.67" in r for r in wide["reasons"])
    few = stability(_lat(n=MIN_QUERIES - 1))
    assert few["verdict"] == "unstable" and f"only {MIN_QUERIES - 1} timed calls" in few["reasons"][0]
    busy = stability(_lat(), {"other_processes_cpu_share": 0.45, "steal_share": 0.0})
    assert busy["reasons"] == ["other processes used 45 % of the cores while timing"]
    stolen = stability(_lat(), {"other_processes_cpu_share": 0.0, "steal_share": 0.2})
    assert stolen["reasons"] == ["the host stole 20 % of the CPU time while timing"]
    assert stability(_lat(), {"other_processes_cpu_share": None, "steal_share": None})["verdict"] == "stable"


def test_load_between_subtracts_our_own_cpu_time():
    before = Snapshot(0.0, own_cpu_s=1.0, involuntary_switches=10, busy_s=100.0, steal_s=5.0, cores=2,
                      loadavg=(0.5, 0.4, 0.3), freq_mhz=None)
    after = Snapshot(2.0, own_cpu_s=3.0, involuntary_switches=30, busy_s=103.0, steal_s=5.4, cores=2,
                     loadavg=(1.5, 0.6, 0.4), freq_mhz=None)
    load = load_between(before, after)
    # 3 s busy on 2 cores over 2 s, 2 s of it ours: others took 1 of 4 core-seconds
    assert load["other_processes_cpu_share"] == 0.25 and load["own_cpu_share"] == 0.5
    assert load["steal_share"] == pytest.approx(0.1) and load["involuntary_switches_per_s"] == 10.0
    assert load["loadavg_before"] == [0.5, 0.4, 0.3] and load["loadavg_after"][0] == 1.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_busy_neighbour_shows_in_the_load_record():
    burner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 4: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        before = snapshot()
        time.sleep(1.5)
        load = load_between(before, snapshot())
    finally:
        burner.kill()
    # one spinning process on this process's cores (2 here): at least a third of one core
    assert load["other_processes_cpu_share"] >= 0.3 / load["cores"]
    assert load["own_cpu_share"] < 0.1
    verdict = stability(_lat(), load)
    assert verdict["verdict"] == "unstable" and "other processes used" in verdict["reasons"][0]


def test_bench_records_load_stability_outputs_and_flips(tiny_bundle, tmp_path):
    from edgemed.bench.harness import bench
    from edgemed.metrics import decisions
    from edgemed.report.gallery import checked_png
    from edgemed.report.schema import validate

    r = bench(tiny_bundle, artifacts=["torch-fp32", "onnx-fp32", "tflite-fp16"], threads=1, duration=0.05,
              limit=64, n_boot=100, memory=False, progress=False)
    validate(r)
    assert r["settings"]["min_iterations"] == MIN_QUERIES
    assert r["load"]["seconds"] > 0 and 0 <= r["load"]["own_cpu_share"] <= 1
    for row in r["rows"]:  # a duration of 0.05 s still gets the minimum count of calls
        assert row["latency_ms"]["n"] >= MIN_QUERIES
        assert row["stability"] == stability(row["latency_ms"], r["load"])
    labels = np.array(r["outputs"]["labels"])
    assert len(labels) == 64 and set(r["outputs"]["probs"]) == {row["name"] for row in r["rows"]}
    from edgemed.data.datasets import load_dataset

    _, split_labels = load_dataset("pneumoniamnist").split("test")  # indexes name images of the whole split
    assert (split_labels[np.array(r["outputs"]["indexes"])] == labels).all()
    ref = np.array(r["outputs"]["probs"]["torch-fp32"])
    for row in r["rows"]:
        flips = row["accuracy"].get("flips")
        if row["name"] == "torch-fp32":
            assert flips is None
            continue
        mine = np.array(r["outputs"]["probs"][row["name"]])
        changed = np.flatnonzero(decisions(ref) != decisions(mine))
        assert flips["count"] == len(changed) and flips["n"] == 64
        assert sum(c["count"] for c in flips["by_class"]) == len(changed)
        cases = flips["cases"]
        in_split = np.array(r["outputs"]["indexes"])  # --limit took a subset: cases name split indexes
        assert len(cases) == min(24, len(changed)) and {c["index"] for c in cases} <= set(in_split[changed].tolist())
        margins = [np.abs(np.subtract(c["probs"], c["reference_probs"])).max() for c in cases]
        assert margins == sorted(margins, reverse=True)  # largest change first
        for c in flips["cases"]:
            png = checked_png(r["thumbnails"][str(c["index"])])
            assert png is not None and png.startswith(b"\x89PNG")
