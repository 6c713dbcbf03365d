"""The device's peak throughput per runtime and each row's share of it."""

from __future__ import annotations

import pytest

from edgemed.bench.peak import PEAK_DIR, compute_share, measure_peaks, peak_precision, probe_info


def test_the_probe_files_ship_with_the_package_and_say_their_macs():
    info = probe_info()
    assert info["macs_per_call"] == 2 * 256 * 256 * 56 * 56
    for precision in ("fp32", "int8"):
        for name in info["files"][precision].values():
            assert (PEAK_DIR / name).stat().st_size > 10_000


def test_peaks_are_measured_through_each_runtime_and_int8_probes_really_are_int8():
    from edgemed.runtime import available_devices

    runtimes = [r for r in ("onnxruntime", "openvino", "litert") if available_devices(r)]
    if not runtimes:
        pytest.skip("no runtime with a probe is installed")
    peaks = measure_peaks(runtimes, threads=1, duration=0.2)
    assert peaks["errors"] == {}  # the static-batch probe opens on OpenVINO too (it once did not)
    for r in runtimes:
        fp32, int8 = peaks["runtimes"][r]["fp32"], peaks["runtimes"][r]["int8"]
        assert 0.05 < fp32 < 10_000 and 0.05 < int8 < 10_000
    # only runtimes with a probe are measured
    assert set(measure_peaks(["torch", "executorch"], threads=1, duration=0.05)["runtimes"]) == set()


def test_a_rows_share_of_the_peak_is_achieved_macs_over_the_peak_for_its_precision():
    peaks = {"runtimes": {"litert": {"fp32": 40.0, "int8": 160.0}}}
    row = {"batch": 2, "precision": "int8", "runtime": "litert", "latency_ms": {"p50": 4.0}}
    share = compute_share(row, 80_000_000, peaks)  # 2 × 80 M MACs in 4 ms = 40 GMAC/s
    assert share == {"macs_per_image": 80_000_000, "achieved_gmacs": 40.0, "peak_precision": "int8",
                     "peak_gmacs": 160.0, "share_of_peak": 0.25}
    assert compute_share({**row, "precision": "fp16"}, 80_000_000, peaks)["share_of_peak"] == 1.0
    assert compute_share({**row, "runtime": "torch"}, 80_000_000, peaks)["share_of_peak"] is None
    assert compute_share(row, None, peaks) is None
    assert peak_precision("mixed") == "int8" and peak_precision("fp32") == "fp32"


def test_export_records_the_models_macs_per_image():
    torch = pytest.importorskip("torch")
    from edgemed.export.exporter import macs_per_image

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 28 * 28, 2))
    expected = 8 * 9 * 784 + 8 * 9 * 784 + 8 * 784 * 2  # conv, depth-wise conv, linear
    assert macs_per_image(model, torch.zeros(4, 1, 28, 28)) == expected


def test_bench_reports_each_rows_share_of_the_device_peak(tiny_bundle):
    from edgemed.bench.harness import bench
    from edgemed.export.bundle import load_bundle
    from edgemed.report.schema import validate

    macs = load_bundle(tiny_bundle).manifest["model"]["macs_per_image"]
    assert isinstance(macs, int) and macs > 0
    r = bench(tiny_bundle, artifacts=["onnx-fp32", "tflite-fp32"], threads=1, iterations=20, accuracy=False,
              memory=False, progress=False)
    validate(r)
    for row in r["rows"]:
        c = row["compute"]
        assert c["macs_per_image"] == macs and c["peak_gmacs"] == r["peak"]["runtimes"][row["runtime"]]["fp32"]
        assert c["share_of_peak"] == pytest.approx(c["achieved_gmacs"] / c["peak_gmacs"], rel=1e-3)
    assert bench(tiny_bundle, artifacts=["onnx-fp32"], threads=1, iterations=5, accuracy=False, memory=False,
                 progress=False, peak=False)["peak"] is None
