"""The meets-bound rule (accuracy and AUC) and the Pareto front."""

import pytest

from edgemed.bounds import pareto_front
from edgemed.report.compare import check_bound, pareto_flags
from edgemed.report.merge import merge
from tests.report.factory import real_results, set_retention


def entries(results):
    return {e.name: e for e in merge([("r.json", results)]).entries}


@pytest.mark.parametrize("metric, difference, ci, max_drop, status, ci_status, drop", [
    # accuracy in percentage points: drop = −100 × difference
    ("accuracy", -0.004, [-0.02, 0.01], 0.5, "yes", "no", 0.4),
    ("accuracy", -0.006, [-0.02, 0.01], 0.5, "no", "no", 0.6),
    ("accuracy", -0.005, [-0.005, 0.0], 0.5, "yes", "yes", 0.5),  # on the bound counts as within
    ("accuracy", 0.01, [0.0, 0.02], 0.0, "yes", "yes", -1.0),  # a gain always meets it
    ("accuracy", -0.02, [-0.03, -0.01], 3.0, "yes", "yes", 2.0),
    # AUC in AUC points ×100: a bound of 0.5 is 0.005 AUC
    ("auc", -0.004, [-0.006, 0.0], 0.5, "yes", "no", 0.4),
    ("auc", -0.006, [-0.008, -0.004], 0.5, "no", "no", 0.6),
    ("auc", -0.004, None, 0.5, "yes", "n/a", 0.4),
    ("auc", None, None, 0.5, "n/a", "n/a", None),  # AUC undefined (a class absent)
])
def test_meets_bound(metric, difference, ci, max_drop, status, ci_status, drop):
    r = real_results()
    set_retention(r["rows"][1], metric, difference, ci)
    b = check_bound(entries(r)["onnx-fp32"], metric, max_drop)
    assert (b.status, b.ci_status) == (status, ci_status)
    assert b.drop == pytest.approx(drop) if drop is not None else b.drop is None
    if ci:
        assert b.drop_ci == pytest.approx((-100 * ci[1], -100 * ci[0]))


def test_reference_and_unmeasured_rows():
    r = real_results()
    del r["rows"][2]["accuracy"]
    e = entries(r)
    assert check_bound(e["torch-fp32"], "accuracy").status == "reference"
    assert check_bound(e["onnx-fp32@openvino"], "accuracy").status == "n/a"


def test_pareto_front():
    assert pareto_front([(1, 0.9), (2, 0.95), (3, 0.9), (2, 0.95)]) == [True, True, False, True]
    assert pareto_front([(5, 0.5)]) == [True]


def test_pareto_flags_per_device_and_metric():
    r = real_results()
    r["rows"][3]["accuracy"]["metrics"]["auc"]["value"] = 0.99  # tflite: slower than onnx but best AUC
    es = list(entries(r).values())
    by_name = {e.name: e for e in es}
    auc = pareto_flags(es, "auc")
    acc = pareto_flags(es, "accuracy")
    assert auc[id(by_name["tflite-fp32"])] and not acc[id(by_name["tflite-fp32"])]
    assert acc[id(by_name["onnx-fp32"])] and not acc[id(by_name["torch-fp32"])]
