"""The results format: a real results file passes both the documented JSON Schema and the
runtime validator; malformed files fail the validator with the problem named."""

import json
from pathlib import Path

import pytest

from edgemed.report.schema import MAX_CLASSES, SCHEMA_VERSION, ResultsError, load_results, validate
from tests.report.factory import REAL, real_results, write

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "edgemed" / "report" / "results.schema.json"


def test_real_results_file_matches_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(real_results()))
    assert not errors, [e.message for e in errors]
    assert schema["properties"]["schema_version"]["description"].endswith("version 1.")


def test_real_results_file_passes_the_runtime_validator():
    obj = load_results(REAL)
    assert obj["schema_version"] == SCHEMA_VERSION and len(obj["rows"]) == 4


@pytest.mark.parametrize("edit, fragment", [
    (lambda r: r.update(schema_version=SCHEMA_VERSION + 1), "newer than this edgemed reads"),
    (lambda r: r.update(schema="something-else"), "not an edgemed bench results file"),
    (lambda r: r.pop("system"), "lacks system"),
    (lambda r: r.update(rows=[]), "has no result rows"),
    (lambda r: r["rows"][1]["latency_ms"].update(p50="fast"), "row 1: latency_ms holds a value that is not a number"),
    (lambda r: r["rows"][0].pop("runtime"), "row 0 lacks runtime"),
    (lambda r: r["rows"][2]["accuracy"]["metrics"].pop("auc"), "row 2: accuracy.metrics lacks"),
    (lambda r: r["rows"].__setitem__(0, [1, 2]), "row 0 is not an object"),
    (lambda r: r["rows"][1]["accuracy"].update(clinical=[{"class": "a", "n": 3, "sensitivity": {"value": "all"},
                                                          "specificity": {}, "ppv": {}, "npv": {}}]),
     "0].sensitivity: value must be a number in"),
    (lambda r: r["rows"][1]["accuracy"].update(clinical=[{"class": "a"}] * (MAX_CLASSES + 1)), f"at most {MAX_CLASSES} classes"),
    (lambda r: r["rows"][0]["accuracy"].update(calibration={"ece": 7, "brier": 0.1}), "ece must be a number in"),
    (lambda r: r["settings"].update(operating_point={"threshold": "high"}), "threshold must be a number in"),
])
def test_validator_names_the_problem(edit, fragment):
    r = real_results()
    edit(r)
    with pytest.raises(ResultsError, match=fragment.replace(".", r"\.")):
        validate(r, "x.json")


def test_load_results_refuses_non_json(tmp_path):
    with pytest.raises(ResultsError, match="corrupt: not valid JSON"):
        load_results(write(tmp_path / "r.json", '{"schema": "edgemed-bench-res'))
