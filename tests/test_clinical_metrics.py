"""Clinical retention and calibration numbers against scikit-learn on fixed data."""

import numpy as np
import pytest
from sklearn.metrics import (
    brier_score_loss,
    multilabel_confusion_matrix,
    precision_score,
    recall_score,
)

from edgemed.errors import EdgemedError
from edgemed.metrics import (
    calibration,
    clinical_retention,
    decisions,
    threshold_for_sensitivity,
)

RNG = np.random.default_rng(7)
Y = RNG.integers(0, 3, 300)
LOGITS = RNG.normal(0, 1, (300, 3)) + 2.0 * np.eye(3)[Y]
P_REF = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
NOISY = LOGITS + RNG.normal(0, 0.8, LOGITS.shape)
P_ART = np.exp(NOISY) / np.exp(NOISY).sum(1, keepdims=True)
NAMES = ["a", "b", "c"]


def sklearn_rates(y, pred):
    mcm = multilabel_confusion_matrix(y, pred, labels=[0, 1, 2])
    tn, fp, fn = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0]
    return {"sensitivity": recall_score(y, pred, average=None, labels=[0, 1, 2]),
            "ppv": precision_score(y, pred, average=None, labels=[0, 1, 2]),
            "specificity": tn / (tn + fp), "npv": tn / (tn + fn)}


def test_rates_and_changes_match_scikit_learn():
    rows = clinical_retention(Y, P_REF, P_ART, NAMES, n_boot=200)
    ref, art = sklearn_rates(Y, P_REF.argmax(1)), sklearn_rates(Y, P_ART.argmax(1))
    for i, row in enumerate(rows):
        assert row["class"] == NAMES[i] and row["n"] == int((i == Y).sum())
        for rate in ("sensitivity", "specificity", "ppv", "npv"):
            assert row[rate]["reference"] == pytest.approx(ref[rate][i])
            assert row[rate]["value"] == pytest.approx(art[rate][i])
            assert row[rate]["difference"] == pytest.approx(art[rate][i] - ref[rate][i])
            lo, hi = row[rate]["ci"]
            assert lo <= hi and lo - 0.02 <= row[rate]["difference"] <= hi + 0.02


def test_identical_models_change_nothing_with_a_zero_interval():
    rows = clinical_retention(Y, P_REF, P_REF, NAMES, n_boot=200)
    assert all(r[rate]["difference"] == 0 and r[rate]["ci"] == [0.0, 0.0]
               for r in rows for rate in ("sensitivity", "specificity", "ppv", "npv"))


def test_threshold_and_target_sensitivity_fix_one_operating_point():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p1 = np.array([0.1, 0.2, 0.45, 0.6, 0.4, 0.55, 0.7, 0.9])
    p = np.stack([1 - p1, p1], 1)
    assert decisions(p, 0.5).tolist() == [0, 0, 0, 1, 0, 1, 1, 1]
    t = threshold_for_sensitivity(y, p, 1.0)  # every positive must be caught
    assert t == pytest.approx(0.4) and (p1[y == 1] >= t).all()
    assert threshold_for_sensitivity(y, p, 0.75) == pytest.approx(0.55)
    rows = clinical_retention(y, p, p, ["normal", "pneumonia"], threshold=t, n_boot=0)
    assert rows[1]["sensitivity"]["value"] == 1.0 and rows[1]["specificity"]["value"] == 0.5
    with pytest.raises(EdgemedError, match="two-class model"):
        decisions(P_REF, 0.5)


def test_brier_matches_scikit_learn_and_ece_is_what_the_bins_say():
    two = np.stack([1 - P_REF[:, 0], P_REF[:, 0]], 1)
    y2 = (Y == 0).astype(int)
    assert calibration(y2, two)["brier"] == pytest.approx(2 * brier_score_loss(y2, two[:, 1]))
    assert calibration(Y, P_REF)["brier"] == pytest.approx(brier_score_loss(Y, P_REF, labels=[0, 1, 2],
                                                                           scale_by_half=False))
    # 100 images all at confidence 0.9, half of them right: ECE = |0.5 - 0.9| = 0.4
    y = np.array([0] * 50 + [1] * 50)
    p = np.tile([0.9, 0.1], (100, 1))
    c = calibration(y, p)
    assert c["ece"] == pytest.approx(0.4) and len(c["bins"]) == 1 and c["bins"][0]["n"] == 100
    # perfectly confident and right: no calibration error
    assert calibration(y, np.eye(2)[y])["ece"] == pytest.approx(0.0)


def test_flipped_cases_count_every_change_and_keep_the_largest_first():
    from edgemed.metrics import flipped_cases

    y = np.array([0, 1, 1, 0, 1, 0])
    ref = np.array([[.9, .1], [.2, .8], [.45, .55], [.6, .4], [.1, .9], [.7, .3]])
    new = np.array([[.9, .1], [.7, .3], [.55, .45], [.3, .7], [.1, .9], [.7, .3]])
    f = flipped_cases(y, ref, new, ["normal", "pneumonia"], limit=2)
    assert f["count"] == 3 and f["n"] == 6  # images 1, 2 and 3 changed class
    assert [c["index"] for c in f["cases"]] == [1, 3]  # |Δp| 0.5, 0.3 (image 2: 0.1) and bounded at 2
    assert f["by_class"] == [{"class": "normal", "count": 1, "n": 3, "now_correct": 0},
                             {"class": "pneumonia", "count": 2, "n": 3, "now_correct": 0}]
    # at a threshold of 0.42 on pneumonia image 2 (0.55 → 0.45) stays positive: only 1 and 3 flip
    g = flipped_cases(y, ref, new, ["normal", "pneumonia"], threshold=0.42)
    assert {c["index"] for c in g["cases"]} == {1, 3} and [c["count"] for c in g["by_class"]] == [1, 1]
