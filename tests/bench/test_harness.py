"""The benchmark harness: statistics, interleaving, results that follow the schema, bad input."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgemed.bench.latency import LatencyStats, interleaved
from edgemed.cli import app
from edgemed.errors import EdgemedError
from edgemed.report.schema import validate
from tests.conftest import assert_clean_error, needs_data, run_without_torch


def test_latency_stats_are_numpy_percentiles_in_ms():
    rng = np.random.default_rng(1)
    s = rng.lognormal(-6, 0.5, 1000)
    st = LatencyStats.from_seconds(s)
    ms = s * 1e3
    assert st.n == 1000 and st.min == pytest.approx(ms.min()) and st.max == pytest.approx(ms.max())
    for p, v in ((50, st.p50), (90, st.p90), (95, st.p95), (99, st.p99)):
        assert v == pytest.approx(np.percentile(ms, p))
    assert st.mean == pytest.approx(ms.mean()) and st.std == pytest.approx(ms.std(ddof=1))
    assert st.min <= st.p50 <= st.p90 <= st.p95 <= st.p99 <= st.max


def test_interleaved_alternates_and_excludes_warmup():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    samples = interleaved(calls, warmup=3, iterations=5, turn_seconds=0)
    assert order == ["a", "b"] * 8  # 3 warm-up rounds, then 5 measured, strictly A B A B …
    assert {k: len(v) for k, v in samples.items()} == {"a": 5, "b": 5}


def test_interleaved_duration_counts_only_measured_time():
    now = [0.0]

    def clock():
        return now[0]

    def slow():
        now[0] += 0.125  # binary-exact steps: no rounding at the boundary

    def fast():
        now[0] += 0.015625

    samples = interleaved({"slow": slow, "fast": fast}, warmup=2, duration=0.5, min_iterations=10, clock=clock,
                          turn_seconds=0)
    # stops once BOTH have spent the duration: the fast one needs 32 rounds; the slow one runs as many
    assert len(samples["fast"]) == len(samples["slow"]) == 32
    assert samples["slow"][0] == 0.125 and samples["fast"][0] == 0.015625


def test_interleaved_turns_settle_after_each_switch_unmeasured():
    now, log = [0.0], []

    def make(name, dt):  # binary-exact steps: no rounding at the boundaries
        def call():
            log.append(name)
            now[0] += dt
        return call

    samples = interleaved({"a": make("a", 1 / 64), "b": make("b", 1 / 32)}, warmup=1, iterations=8,
                          clock=lambda: now[0], turn_seconds=1 / 16, settle_seconds=0.02)
    # a turn: settle until 0.02 s passed (a: 2 calls, b: 1), then 1/16 s of measured calls (a: 4, b: 2)
    assert log[:2 + 6 + 3] == ["a", "b"] + ["a"] * 6 + ["b"] * 3
    assert samples == {"a": [1 / 64] * 8, "b": [1 / 32] * 8}
    # one call alone has no switches: no settling, every call after warm-up is measured
    log.clear()
    assert len(interleaved({"a": make("a", 1 / 64)}, warmup=0, iterations=5, clock=lambda: now[0])["a"]) == 5
    assert log == ["a"] * 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(duration=0), "--duration must be > 0"), (dict(iterations=0), "--iterations must be ≥ 1"),
    (dict(iterations=3, warmup=-1), "--warmup cannot be negative"), (dict(), "give a duration"),
])
def test_interleaved_rejects_bad_settings(kwargs, message):
    with pytest.raises(EdgemedError, match=message):
        interleaved({"a": lambda: None}, **kwargs)


@needs_data
def test_bench_measures_latency_memory_and_retention(tiny_bundle, tmp_path):
    from edgemed.bench.harness import bench

    out = tmp_path / "r.json"
    r = bench(tiny_bundle, artifacts=["torch-fp32", "onnx-fp32", "tflite-fp16"], threads=1, iterations=30,
              limit=64, n_boot=200, out=out, progress=False)
    assert validate(json.loads(out.read_text())) and r["baseline"] == "torch-fp32"
    assert r["settings"]["split"]["n"] == 64 and r["settings"]["split"]["matches_training_data"] is True
    assert r["system"]["cpu"] and r["system"]["cores_available"] >= 1
    for row in r["rows"]:
        lat = row["latency_ms"]
        assert lat["n"] == 30 and 0 < lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]
        assert row["throughput_ips"]["value"] == pytest.approx(1e3 / lat["p50"])
        assert row["cold"]["peak_rss_mb"] > 0 and row["cold"]["load_s"] > 0 and row["cold"]["first_inference_ms"] > 0
        assert row["preprocess_ms_per_image"] > 0 and row["size_bytes"] > 0
        m = row["accuracy"]["metrics"]
        assert m["n"] == 64 and m["accuracy"]["ci"][0] <= m["accuracy"]["value"] <= m["accuracy"]["ci"][1]
    by = {row["name"]: row for row in r["rows"]}
    assert by["torch-fp32"]["ratio_to_baseline"]["speedup_p50"] == 1.0
    ret = by["onnx-fp32"]["accuracy"]["retention"]
    assert ret["reference"] == "torch-fp32" and ret["flip_rate"] == 0.0  # FP32 export == PyTorch
    assert 0.0 <= by["tflite-fp16"]["accuracy"]["retention"]["flip_rate"] <= 0.05


@needs_data
def test_bench_takes_a_data_set_by_name(tiny_bundle):
    from edgemed.bench.harness import bench

    r = bench(tiny_bundle, artifacts=["onnx-fp32"], iterations=3, dataset="pneumoniamnist", split="val", limit=16,
              memory=False, n_boot=50, progress=False)
    assert r["settings"]["split"]["name"] == "pneumoniamnist" and r["settings"]["split"]["n"] == 16
    assert r["rows"][0]["accuracy"]["metrics"]["n"] == 16


@needs_data
def test_bench_bad_inputs_are_one_clean_line(tiny_bundle, tmp_path):
    runner = CliRunner()
    base = ["bench", str(tiny_bundle), "--artifacts", "onnx-fp32", "--iterations", "3", "--no-memory"]
    assert_clean_error(runner.invoke(app, ["bench", str(tiny_bundle), "--duration", "0"]), "--duration must be > 0")
    assert_clean_error(runner.invoke(app, base + ["--split", "nosuch"]), "nosuch")
    assert_clean_error(runner.invoke(app, base + ["--device", "npu7"]), "available devices are")
    assert_clean_error(runner.invoke(app, ["bench", str(tiny_bundle), "--artifacts", "tflite-fp32", "--batch", "4",
                                           "--iterations", "3"]), "static batch")
    existing = tmp_path / "keep.json"
    existing.write_text("{}")
    assert_clean_error(runner.invoke(app, base + ["--out", str(existing)]), "--force")
    assert existing.read_text() == "{}"


@needs_data
def test_bench_runs_in_the_runtime_only_install(tiny_bundle):
    r = run_without_torch(["bench", str(tiny_bundle), "--artifacts", "onnx-fp32,tflite-fp32", "--iterations", "5",
                           "--no-memory", "--limit", "32", "--json"])
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["baseline"] == "onnx-fp32" and validate(result)
    assert {row["runtime"] for row in result["rows"]} == {"onnxruntime", "litert"}


@needs_data
def test_a_device_benches_what_it_can_run_and_lists_the_rest(tiny_bundle):
    """The README's Raspberry Pi command on a bundle that also holds OpenVINO and torch artifacts:
    the runtime-only install benches ONNX and TFLite, and says what it skipped and why."""
    r = run_without_torch(["bench", str(tiny_bundle), "--iterations", "5", "--no-memory", "--limit", "32",
                           "--large-batch", "0", "--json"])
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert {row["runtime"] for row in result["rows"]} == {"onnxruntime", "litert"} and validate(result)
    skipped = {s["artifact"]: s["reason"] for s in result["skipped"]}
    assert {"openvino-fp32", "openvino-fp16"} <= set(skipped)
    assert 'pip install "edgemed[openvino]"' in skipped["openvino-fp32"]
    # named explicitly, an artifact that cannot run here is still an error
    r = run_without_torch(["bench", str(tiny_bundle), "--artifacts", "openvino-fp32", "--iterations", "5"])
    assert r.returncode == 2 and "openvino is not installed here" in r.stderr
