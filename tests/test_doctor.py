"""`edgemed doctor` in the full install and in a runtime-only one (torch and OpenVINO blocked)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

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
    text = CliRunner().invoke(app, ["doctor", "--data-dir", "/nonexistent-data"]).output
    assert "/nonexistent-data does not exist: check --data-dir" in text and text.count("does not exist") == 1


def test_doctor_in_a_runtime_only_install_names_what_to_install():
    r = run_without_torch(["doctor", "--json"])
    assert r.returncode == 0, r.stderr
    rt = {x["runtime"]: x for x in json.loads(r.stdout)["runtimes"]}
    # torch first, as the CPU build: pip would resolve edgemed[train]'s torch to CUDA packages
    assert rt["torch"]["devices"] == [] and rt["torch"]["install"] == (
        'pip install torch==2.13.0 (the CPU build) first, then pip install "edgemed[train]"')
    assert rt["openvino"]["devices"] == [] and "edgemed[openvino]" in rt["openvino"]["install"]
    assert rt["onnxruntime"]["devices"] == ["cpu"]


def test_extras_made_of_extras_count_theirs(monkeypatch):
    """`all` is missing whatever its parts miss (it said "installed" in a runtime-only install), and
    an extra that needs torch says to install the CPU torch first where torch is missing."""
    from importlib import metadata

    from edgemed import doctor

    real = metadata.version

    def version(pkg):
        if pkg in ("torch", "openvino"):
            raise metadata.PackageNotFoundError(pkg)
        return real(pkg)

    monkeypatch.setattr(doctor.metadata, "version", version)
    rows = {e["extra"]: e for e in doctor.extras()}
    assert not rows["all"]["complete"] and {"torch", "openvino"} <= set(rows["all"]["missing"])
    assert rows["onnx"]["missing"] == ["torch"] and rows["onnx"]["install"].startswith("pip install torch==2.13.0")
    assert rows["runtime"]["complete"] and rows["runtime-onnx"]["install"] is None
    assert all(not p["package"].startswith("edgemed[") for e in rows.values() for p in e["packages"])


def test_the_extras_said_to_need_torch_are_those_that_install_it():
    import tomllib

    from edgemed.errors import TORCH_EXTRAS

    extras = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def needs_torch(name):
        return any(re.match(r"torch([<>=!~; ]|$)", r) or
                   (r.startswith("edgemed[") and any(needs_torch(x) for x in r[8:-1].split(",")))
                   for r in extras[name])

    assert {e for e in extras if needs_torch(e)} == TORCH_EXTRAS


def test_the_cli_keeps_library_chatter_out_of_the_terminal():
    """A newcomer's first commands printed torchao's failed GPU-kernel loads and a torch deprecation
    line before any output of edgemed's (`--debug` shows them)."""
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TORCH_LOGS"}
    r = subprocess.run([sys.executable, "-c", "from edgemed.cli import main; main()", "doctor"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 0, r.stderr
    noise = [ln for ln in r.stderr.splitlines() if ln.startswith("Failed to load") or re.match(r"[WIE]\d{4} ", ln)]
    assert not noise, noise
