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


def test_vectorised_bootstrap_matches_sklearn_on_resamples():
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score

    from edgemed.metrics import _confusions, _rates

    y, p = fake(n=200, k=4, seed=3)
    pred = p.argmax(1)
    idx = np.random.default_rng(1).integers(0, 200, (5, 200))
    rates = _rates(_confusions(y, pred, 4, idx))
    for b in range(5):
        yb, pb = y[idx[b]], pred[idx[b]]
        assert rates["accuracy"][b] == pytest.approx(accuracy_score(yb, pb))
        assert rates["balanced_accuracy"][b] == pytest.approx(balanced_accuracy_score(yb, pb))
        np.testing.assert_allclose(rates["sensitivity"][b], recall_score(yb, pb, average=None, labels=range(4)))
        cm = confusion_matrix(yb, pb, labels=range(4))
        spec0 = cm[1:, 1:].sum() / cm[1:].sum()
        assert rates["specificity"][b, 0] == pytest.approx(spec0)


def test_vectorised_auc_matches_sklearn_on_resamples():
    from edgemed.metrics import _auc_resamples

    for k, seed in ((2, 4), (5, 5)):
        y, p = fake(n=150, k=k, seed=seed)
        if k == 2:
            p = np.round(p, 2)  # ties, which the rank form must average as scikit-learn does
        idx = np.random.default_rng(2).integers(0, 150, (6, 150))
        got = _auc_resamples(y, p, k, idx)
        for b in range(6):
            yb, pb = y[idx[b]], p[idx[b]]
            want = roc_auc_score(yb, pb[:, 1]) if k == 2 else roc_auc_score(yb, pb, multi_class="ovr", labels=range(k))
            assert got[b] == pytest.approx(want)
