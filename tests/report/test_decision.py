"""The buyer's parts of the report: devices side by side (with price and power from a devices
file), every artifact's status, the CI gate's exit code, flipped cases and the timing verdict."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgemed.cli import app
from edgemed.report.decision import decision_rows, load_devices, parse_gates
from edgemed.report.merge import load_all
from tests.conftest import assert_clean_error
from tests.report.factory import real_results, variant, write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["report", *map(str, args)])


@pytest.fixture
def two_devices(tmp_path):
    """The real x86 run and the same bundle 'on a Pi' (5× slower), the Pi's run recommending tflite-fp32."""
    pi = variant(cpu="Cortex-A76", machine="aarch64", latency_scale=5.0)
    pi["bundle"]["recommended"] = "tflite-fp32"
    return [write(tmp_path / "x86.json", real_results()), write(tmp_path / "pi.json", pi)]


def _devices(tmp_path, text):
    return write(tmp_path / "devices.yaml", text)


def test_devices_side_by_side_with_price_and_power(tmp_path, two_devices):
    devices = load_devices(_devices(tmp_path, """
devices:
  - {match: Cortex-A76, name: Raspberry Pi 5, price: 80, currency: EUR, power_w: 8}
  - {match: R1, name: Workstation, price: 900, currency: EUR}
"""))
    merged = load_all(two_devices)
    records = {r["device"]: r for r in decision_rows(merged.sections[0], "accuracy", 0.5, devices)}
    assert set(records) == {"Raspberry Pi 5", "Workstation"}
    pi, ws = records["Raspberry Pi 5"], records["Workstation"]
    assert pi["row"] == "tflite-fp32" and pi["why"] == "the bundle's recommendation"
    # no recommendation in the x86 run: the fastest row within the bound
    x86_rows = [e for e in merged.sections[0].entries if e.source.run == "R1"]
    assert ws["row"] == min(x86_rows, key=lambda e: e.latency["p50"]).name and ws["why"] == "fastest within the bound"
    assert pi["img_s_per_1000_price"] == pytest.approx(1000 * pi["img_s"] / 80)
    assert pi["img_s_per_w"] == pytest.approx(pi["img_s"] / 8) and ws["img_s_per_w"] is None
    r = run(*two_devices, "--out", tmp_path / "rep", "--devices", tmp_path / "devices.yaml")
    assert r.exit_code == 0, r.output
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| Raspberry Pi 5 | tflite-fp32 | the bundle's recommendation |" in md
    assert "img/s per 1000 of price" in md and "80 EUR" in md


@pytest.mark.parametrize("text, fragment", [
    ("devices: []", "has no `devices` list"),
    ("devices: [{name: x}]", "needs `match`"),
    ("devices: [{match: x, price: -3}]", "price must be a number > 0"),
    ("devices: [{match: x, watts: 3}]", "unknown keys watts"),
    ("devices: [{match: x, price: .nan}]", "price must be a number > 0"),
])
def test_a_bad_devices_file_is_one_line(tmp_path, two_devices, text, fragment):
    assert_clean_error(run(*two_devices, "--out", tmp_path / "rep", "--devices", _devices(tmp_path, text)), fragment)
    assert not (tmp_path / "rep").exists()


def test_the_gate_exits_3_when_a_chosen_row_misses_and_0_when_all_meet(tmp_path, two_devices):
    merged = load_all(two_devices)
    accs = [e.metric("accuracy")[0] for e in merged.entries]
    low, high = min(accs) - 0.01, max(accs) + 0.01
    r = run(*two_devices, "--out", tmp_path / "pass", "--fail-below", f"accuracy={low:.4f}", "--fail-below", "img_s=1")
    assert r.exit_code == 0, r.output
    assert "CI gate passed: all 4 checks met" in r.output
    r = run(*two_devices, "--out", tmp_path / "fail", "--fail-below", f"accuracy={high:.4f}")
    assert r.exit_code == 3, r.output
    assert "CI gate failed: 2 of 2 checks missed" in r.output and "Traceback" not in r.output
    assert (tmp_path / "fail" / "report.html").exists()  # the report is written either way
    assert "CI gate failed" in (tmp_path / "fail" / "report.md").read_text()
    # the API says the same, without exiting
    from edgemed.report import report

    s = report(two_devices, tmp_path / "api", fail_below=[f"accuracy={high:.4f}"])
    assert s["gate_passed"] is False and {g["row"] for g in s["gate"]} <= {e.name for e in merged.entries}
    # a metric that was not measured fails the gate instead of passing it
    no_acc = real_results()
    for row in no_acc["rows"]:
        row.pop("accuracy")
    no_acc["settings"]["split"] = None
    r = run(write(tmp_path / "noacc.json", no_acc), "--out", tmp_path / "na", "--fail-below", "accuracy=0.1")
    assert r.exit_code == 3 and "accuracy not measured" in r.output


@pytest.mark.parametrize("spec, fragment", [
    ("accuracy", "write METRIC=VALUE"), ("f1=0.3", "write METRIC=VALUE"), ("accuracy=90", "0.9, not 90"),
    ("img_s=fast", "'fast' is not a number"), ("img_s=-1", "finite value ≥ 0"),
])
def test_bad_gates_are_one_line(tmp_path, two_devices, spec, fragment):
    assert_clean_error(run(*two_devices, "--out", tmp_path / "rep", "--fail-below", spec), fragment)
    with pytest.raises(Exception, match="--fail-below"):
        parse_gates([spec])


def test_status_lists_failed_exports_parity_and_what_a_device_skipped(tmp_path):
    r = real_results()
    r["bundle"]["failed"] = [{"format": "tflite", "precision": "int8", "error": "tflite-int8 failed parity with PyTorch: top-1 agreement 0.91 below 0.98"},
                             {"format": "openvino", "precision": "int8", "error": "converter crashed"}]
    r["skipped"] = [{"artifact": "executorch-fp32", "runtime": "executorch", "reason": "runtime executorch is not installed here"}]
    rep = tmp_path / "rep"
    assert run(write(tmp_path / "r.json", r), "--out", rep).exit_code == 0
    md = (rep / "report.md").read_text()
    assert "| all | tflite-int8 | exported, failed parity | tflite-int8 failed parity" in md
    assert "| all | openvino-int8 | failed to export | converter crashed |" in md
    assert "| executorch-fp32 | not run on this device | runtime executorch is not installed here |" in md
    assert "| torch-fp32 | passed (reference) |" in md


def _png(side: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((side, side), 200, np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_flipped_cases_gallery_shows_checked_thumbnails_only(tmp_path):
    r = real_results()
    row = next(x for x in r["rows"] if x["name"] == "tflite-fp32")
    row["accuracy"]["flips"] = {
        "count": 3, "n": 150,
        "by_class": [{"class": "normal", "count": 1, "n": 60, "now_correct": 0},
                     {"class": "pneumonia", "count": 2, "n": 90, "now_correct": 1}],
        "cases": [{"index": i, "label": 1, "reference_decision": 1, "decision": 0,
                   "reference_probs": [0.3, 0.7], "probs": [0.6, 0.4]} for i in (7, 8, 9)]}
    r["thumbnails"] = {"7": _png(28), "8": _png(300), "9": base64.b64encode(b"<svg onload=alert(1)>").decode()}
    rep = tmp_path / "rep"
    assert run(write(tmp_path / "r.json", r), "--out", rep).exit_code == 0
    md, html = (rep / "report.md").read_text(), (rep / "report.html").read_text()
    assert "3 of 150 images changed class against torch-fp32 (normal 1 of 60, pneumonia 2 of 90); 1 of them are now right, 2 now wrong" in md
    assert "#7 · true pneumonia · pneumonia → normal; p(normal) 0.30 → 0.60" in md
    assert sorted(p.name for p in (rep / "gallery").iterdir()) == ["R1_7.png"]  # too large and not-PNG dropped
    assert "![image 7](gallery/R1_7.png)" in md and "#8 · true pneumonia" in md and "(no thumbnail)" in md
    assert html.count('<img alt="image ') == 1 and "onload" not in html


def test_results_with_hostile_gallery_fields_are_refused(tmp_path):
    from edgemed.report.schema import ResultsError, validate

    r = real_results()
    r["thumbnails"] = {"../x": _png(28)}
    with pytest.raises(ResultsError, match="thumbnails must map"):
        validate(json.loads(json.dumps(r)))
    r = real_results()
    r["rows"][1]["accuracy"]["flips"] = {"count": 1, "n": 150, "cases": [{"index": 1, "label": 0}]}
    with pytest.raises(ResultsError, match="flips.cases"):
        validate(r)


def test_unstable_rows_are_marked_and_the_reader_told_to_rerun(tmp_path):
    r = real_results()
    for row in r["rows"]:  # steady rows (the real file has 50 calls a row and wide tails)
        lat = row["latency_ms"]
        lat.update(n=500, p99=2 * lat["p50"], std=0.1 * lat["mean"])
    r["rows"][2]["latency_ms"]["p99"] = r["rows"][2]["latency_ms"]["p50"] * 13.8
    r["load"] = {"other_processes_cpu_share": 0.02, "steal_share": 0.0, "cores": 2, "seconds": 10.0}
    rep = tmp_path / "rep"
    assert run(write(tmp_path / "r.json", r), "--out", rep).exit_code == 0
    md = (rep / "report.md").read_text()
    name = r["rows"][2]["name"]
    assert f"Timing of 1 of 4 rows is unstable: {name} (p99 is 13.8× p50 (more than 3×))" in md
    assert "Rerun them on a quiet machine" in md
    assert "other processes 2.0 % of 2 cores" in md  # the load record in "how measured"
    csv_text = (rep / "results.csv").read_text()
    assert csv_text.count(",unstable,") == 1


def test_hand_edited_fields_the_report_reads_fail_in_one_line_or_render(tmp_path):
    from edgemed.report.schema import ResultsError, validate

    r = real_results()
    r["rows"][1]["accuracy"]["metrics"]["per_class"] = [1, 2]
    with pytest.raises(ResultsError, match=r"per_class\[0\] is not an object"):
        validate(r)
    r = real_results()
    r["rows"][1]["compute"] = {"share_of_peak": 0.5}  # no peak named: shown as "–", not a crash
    assert run(write(tmp_path / "r.json", r), "--out", tmp_path / "rep").exit_code == 0
    assert_clean_error(run(write(tmp_path / "r2.json", real_results()), "--out", tmp_path / "rep2", "--devices",
                           _devices(tmp_path, "devices: [{match: x, price: " + "9" * 400 + "}]")),
                       "price must be a number > 0")


def test_devices_match_run_ids_exactly_and_the_longest_label_part(two_devices):
    from edgemed.report.decision import DeviceInfo, device_info

    merged = load_all(two_devices)
    pi = next(e for e in merged.entries if "Cortex" in e.device)
    x86 = next(e for e in merged.entries if "Cortex" not in e.device)
    devices = [DeviceInfo("Cortex-A7", "Pi 3"), DeviceInfo("Cortex-A76", "Pi 5"), DeviceInfo("R1", "Workstation")]
    assert device_info(pi, devices).name == "Pi 5" and device_info(x86, devices).name == "Workstation"
    assert device_info(pi, [DeviceInfo("R1", "Workstation")]) is None  # a run id is not a label part


def test_a_recommendation_outside_the_bound_is_not_deployed(tmp_path):
    from edgemed.report.decision import chosen_rows
    from tests.report.factory import set_retention

    r = real_results()
    r["bundle"]["recommended"] = "tflite-fp32"
    set_retention(next(x for x in r["rows"] if x["name"] == "tflite-fp32"), "accuracy", -0.02, [-0.04, -0.01])
    merged = load_all([write(tmp_path / "r.json", r)])
    (row, why), = chosen_rows(merged.sections[0], "accuracy", 0.5)
    assert row.name != "tflite-fp32" and why == "fastest within the bound"


def test_the_sensitivity_gate_reads_the_reference_at_the_runs_operating_point(tmp_path):
    from edgemed.report.decision import gate_value

    r = real_results()
    rate = {"reference": 0.7, "value": 0.6, "difference": -0.1, "ci": [-0.2, 0.0]}
    for row in r["rows"][1:]:
        row["accuracy"]["clinical"] = [{"class": c, "n": 75, "sensitivity": rate, "specificity": rate, "ppv": rate,
                                        "npv": rate} for c in ("normal", "pneumonia")]
    merged = load_all([write(tmp_path / "r.json", r)])
    ref = next(e for e in merged.entries if e.is_reference)
    other = next(e for e in merged.entries if not e.is_reference)
    assert gate_value(ref, "sensitivity") == 0.7 and gate_value(other, "sensitivity") == 0.6
