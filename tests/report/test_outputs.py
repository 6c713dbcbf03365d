"""What `report` writes: the CSV, the Markdown and the self-contained HTML."""

import csv
import re

import pytest

import edgemed
from edgemed.report.csvfile import COLUMNS
from tests.report.factory import real_results, set_retention, variant, write

OTHER_SHA = "e" * 64


def pi_results() -> dict:
    """The same bundle on an ARM board without torch: onnx-fp32 is the reference there, and an
    INT8 row loses 1.33 points."""
    r = variant(cpu="Raspberry Pi 5 Model B Rev 1.0", machine="aarch64", latency_scale=4.0)
    r["rows"] = [row for row in r["rows"] if row["format"] != "torch"]
    for row in r["rows"]:
        for m in ("accuracy", "auc", "balanced_accuracy"):
            set_retention(row, m, 0.0, [0.0, 0.0])
        row["accuracy"]["retention"]["reference"] = "onnx-fp32"
    del r["rows"][0]["accuracy"]["retention"]  # onnx-fp32 is the reference
    int8 = r["rows"][2]
    int8.update(artifact="tflite-int8", name="tflite-int8", precision="int8", size_bytes=2_400_000)
    set_retention(int8, "accuracy", -0.0133, [-0.0333, 0.0067])
    set_retention(int8, "auc", -0.003, [-0.009, 0.001])
    return r


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("rep")
    files = [write(d / "nuc.json", real_results()), write(d / "pi.json", pi_results()),
             write(d / "other.json", variant(bundle_sha=OTHER_SHA, cpu="Intel Core i5"))]
    summary = edgemed.report(files, d / "report", max_drop=0.5)
    return d / "report", summary


def test_summary_counts(made):
    out, summary = made
    assert [s["rows"] for s in summary["sections"]] == [7, 4]
    assert summary["meets_bound"] == {"reference": 3, "yes": 7, "no": 1}
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "S1_latency.png", "S1_pareto.png", "S1_size.png", "S2_latency.png", "S2_pareto.png", "S2_size.png"]


def test_csv_has_one_row_per_result_row_and_flat_columns(made):
    out, _ = made
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 11 and list(rows[0]) == COLUMNS
    for col in ("cpu", "runtime", "format", "precision", "artifact", "threads", "batch", "latency_p50_ms",
                "latency_p99_ms", "throughput_ips", "large_batch_throughput_ips", "load_s", "peak_rss_mb",
                "size_bytes", "accuracy_ci_low", "auc_ci_high", "retention_accuracy_pt", "flip_rate",
                "meets_bound", "bundle_sha256", "dataset", "split", "timestamp", "source_file"):
        assert col in COLUMNS
    int8 = next(r for r in rows if r["artifact"] == "tflite-int8")
    assert (int8["meets_bound"], int8["ci_within_bound"]) == ("no", "no")
    assert float(int8["retention_accuracy_pt"]) == pytest.approx(-1.33)
    assert int8["cpu"] == "Raspberry Pi 5 Model B Rev 1.0" and int8["section"] == "S1"
    assert {r["section"] for r in rows if r["bundle_sha256"] == OTHER_SHA} == {"S2"}
    assert {r["meets_bound"] for r in rows if r["name"] == "torch-fp32"} == {"reference"}


def test_markdown_has_the_summary_table(made):
    out, _ = made
    md = (out / "report.md").read_text()
    assert md.startswith("# Edge inference benchmark: mednext_small on pneumoniamnist")
    assert "| Device | Artifact | Format | Precision | Runtime |" in md
    assert "Meets bound (drop ≤ 0.5)" in md and "point estimate of the drop is ≤ 0.5" in md
    int8 = next(ln for ln in md.splitlines() if "| tflite-int8 |" in ln)
    assert "Raspberry Pi 5" in int8 and "-1.33 [-3.33, +0.67]" in int8 and "| no | no |" in int8
    # the two bundles are separate tables under separate headings
    assert md.count("### S1:") == 3 and md.count("### S2:") == 3
    assert "![pareto](plots/S1_pareto.png)" in md


def test_html_is_self_contained_with_images_and_tables(made):
    out, _ = made
    html = (out / "report.html").read_text()
    for forbidden in ('src="http', "<script", "<link", "href=\"http", "url("):
        assert forbidden not in html
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]+">', html)) == 6
    assert html.index("<h2>Summary</h2>") < html.index("<h2>Plots</h2>") < html.index(
        "<h2>How the numbers were measured</h2>")
    assert html.count("<table") == 9  # per section: decision, summary, status, details; 1 measurement table
    assert "<td>tflite-int8</td>" in html and '<td class="no">no</td>' in html
    assert "avx512_vnni" in html and "Warm-up calls (excluded)" in html and "onnxruntime 1.32.0" in html
    assert "separate comparisons" in html


def test_auc_metric_and_rows_without_samples(tmp_path):
    r = real_results()
    for row in r["rows"]:
        row.pop("latency_samples_ms")  # plots fall back to the stored percentiles
    set_retention(r["rows"][1], "auc", -0.006, [-0.01, -0.002])
    summary = edgemed.report([write(tmp_path / "r.json", r)], tmp_path / "rep", metric="auc", max_drop=0.5)
    assert summary["meets_bound"] == {"reference": 1, "no": 1, "yes": 2}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "AUC [95% CI]" in md and "Δ AUC ×100 vs ref [95% CI]" in md and "(= 0.005 AUC)" in md
    assert "-0.60 [-1.00, -0.20]" in md


def test_runs_without_accuracy_get_their_own_section(tmp_path):
    r = real_results()
    r["settings"]["split"] = None
    for row in r["rows"]:
        del row["accuracy"]
    files = [write(tmp_path / "speed.json", r), write(tmp_path / "full.json", real_results())]
    summary = edgemed.report(files, tmp_path / "rep")
    assert [s["title"] for s in summary["sections"]] == [
        "mednext_small (bundle 25d48edd0f09; accuracy not measured)",
        "mednext_small on pneumoniamnist test split, n = 150 (bundle 25d48edd0f09)"]
    assert summary["meets_bound"] == {"n/a": 4, "reference": 1, "yes": 3}
    assert sorted(p.name for p in (tmp_path / "rep" / "plots").iterdir())[:2] == ["S1_latency.png", "S1_size.png"]


def test_clinical_retention_and_calibration_sections(tmp_path):
    """The buyer's decision line (largest sensitivity loss with its CI) and the per-class table
    come from the results' clinical records; calibration from each row's ECE and Brier."""
    import numpy as np

    from edgemed.bench.accuracy import accuracy_report
    from edgemed.report import report
    from tests.report.factory import real_results, write

    r = real_results()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 150)
    ref = np.clip(np.eye(2)[y] * 0.8 + 0.1, 0, 1)
    worse = ref.copy()
    worse[np.flatnonzero(y == 1)[:10]] = [0.7, 0.3]  # ten positives missed
    names = r["bundle"]["class_names"]
    r["settings"]["operating_point"] = {"rule": "most probable class", "threshold": None,
                                        "target_sensitivity": None, "fixed_on": r["rows"][0]["name"],
                                        "positive_class": None}
    for i, row in enumerate(r["rows"]):
        probs = ref if i == 0 else worse
        row["accuracy"] = accuracy_report(y, probs, names, None if i == 0 else ref, r["rows"][0]["name"], n_boot=100)
    src = write(tmp_path / "r.json", r)
    report([src], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    positives = int((y == 1).sum())
    drop = 100 * 10 / positives
    assert "## Clinical retention and calibration" in md
    assert f"sensitivity for {names[1]} drops by {drop:.1f} pt" in md
    assert "Δ sens. pt [95% CI]" in md and "| ECE |" in md.replace("ECE |", "ECE |")
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Clinical retention and calibration" in html and f"drops by {drop:.1f} pt" in html
