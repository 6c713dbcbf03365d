"""`edgemed doctor` in the full install and in a runtime-only one (torch and OpenVINO blocked)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from edgemed.cli import app
from tests.conftest import needs_data, run_without_torch


@needs_data
def test_doctor_reports_runtimes_extras_cpu_and_data():
    r = CliRunner().invoke(app, ["doctor", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    rt = {x["runtime"]: x for x in d["runtimes"]}
    assert "cpu" in rt["onnxruntime"]["devices"] and rt["onnxruntime"]["version"]
    assert d["cpu"]["cores"] >= 1 and isinstance(d["cpu"]["isa"], list)
    sets = {s["name"]: s for s in d["data"]["sets"]}
    assert sets["pneumoniamnist"]["found"].endswith("pneumoniamnist.npz")
    assert {e["extra"] for e in d["extras"]} >= {"train", "runtime", "quantize"}
    text = CliRunner().invoke(app, ["doctor"]).output
    assert "runtimes:" in text and "pneumoniamnist" in text


def test_doctor_in_a_runtime_only_install_names_what_to_install():
    r = run_without_torch(["doctor", "--json"])
    assert r.returncode == 0, r.stderr
    rt = {x["runtime"]: x for x in json.loads(r.stdout)["runtimes"]}
    assert rt["torch"]["devices"] == [] and rt["torch"]["install"] == 'pip install "edgemed[train]"'
    assert rt["openvino"]["devices"] == [] and "edgemed[openvino]" in rt["openvino"]["install"]
    assert rt["onnxruntime"]["devices"] == ["cpu"]
