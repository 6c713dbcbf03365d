import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from edgemed.metrics import classification_metrics, metric_value, paired_difference, softmax


def fake(n=400, k=2, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, noise, (n, k))
    logits[np.arange(n), y] += 1.5
    return y, softmax(logits)


def test_binary_matches_sklearn_and_ci_brackets_value():
    y, p = fake()
    m = classification_metrics(y, p, ["neg", "pos"], n_boot=300)
    assert m["accuracy"]["value"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert m["balanced_accuracy"]["value"] == pytest.approx(balanced_accuracy_score(y, p.argmax(1)))
    assert m["auc"]["value"] == pytest.approx(roc_auc_score(y, p[:, 1]))
    for name in ("accuracy", "auc"):
        lo, hi = m[name]["ci"]
        assert lo <= m[name]["value"] <= hi and hi - lo < 0.2
    pos = m["per_class"][1]
    tp = ((p.argmax(1) == 1) & (y == 1)).sum()
    assert pos["sensitivity"]["value"] == pytest.approx(tp / (y == 1).sum())
    assert pos["n"] == int((y == 1).sum())
    assert np.array(m["confusion_matrix"]).sum() == len(y)


def test_multiclass_auc_is_ovr_macro():
    y, p = fake(k=5, seed=1)
    m = classification_metrics(y, p, n_boot=0)
    assert m["auc"]["value"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert m["accuracy"]["ci"] is None


def test_auc_undefined_for_a_single_present_class():
    y = np.zeros(10, int)
    p = softmax(np.random.default_rng(0).normal(size=(10, 2)))
    m = classification_metrics(y, p, n_boot=50)
    assert m["auc"]["value"] is None and m["per_class"][1]["sensitivity"]["value"] is None


def test_paired_difference_of_identical_predictions_is_zero():
    y, p = fake()
    d = paired_difference(y, p, p, "accuracy", n_boot=100)
    assert d["difference"] == 0 and d["flip_rate"] == 0 and d["ci"] == [0.0, 0.0]
    worse = p.copy()
    worse[:50] = worse[:50, ::-1]
    d = paired_difference(y, p, worse, "accuracy", n_boot=200)
    assert d["difference"] < 0 and d["flips"] > 0 and d["ci"][0] <= d["difference"] <= d["ci"][1]


def test_metric_value_sensitivity_is_positive_class_for_binary():
    y, p = fake()
    m = classification_metrics(y, p, n_boot=0)
    assert metric_value(m, "sensitivity") == m["per_class"][1]["sensitivity"]["value"]
