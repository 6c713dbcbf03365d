"""Classification metrics with bootstrap confidence intervals, in numpy alone (no torch, no
scikit-learn or scipy: the benchmark harness runs them on devices with the small runtime-only
install), shared by training, evaluation and bench.

The confusion matrix is one bincount (accuracy, balanced accuracy, sensitivity and specificity
are read from it as scikit-learn defines them); AUC is the Mann–Whitney form of scikit-learn's
roc_auc_score on tie-averaged ranks. The bootstrap resamples images with replacement, vectorised
over resamples. tests/test_metrics.py checks point and resampled values against scikit-learn.
"""

from __future__ import annotations

import numpy as np

from edgemed.errors import EdgemedError

METRICS = ("accuracy", "balanced_accuracy", "auc", "sensitivity", "specificity")
# The smallest evaluation that accuracy control may decide a bound on: below it one image moves
# accuracy by > 3 points and an AUC of two images is meaningless, so "bound met" would be noise.
MIN_CONTROL_IMAGES = 32
MIN_CONTROL_PER_CLASS = 5  # for the metrics that look at every class (auc, sensitivity, balanced)


def check_evaluable(y, metric: str, class_names: list[str], option: str = "--val-limit") -> None:
    """Refuse an accuracy-control evaluation too small to decide a bound (one rule, used by
    quantize and optimize)."""
    from edgemed.errors import DataError

    y = np.asarray(y)
    if len(y) < MIN_CONTROL_IMAGES:
        raise DataError(f"accuracy control cannot decide a bound on {len(y)} validation image(s): it needs at least "
                        f"{MIN_CONTROL_IMAGES}; raise {option} or leave it out")
    if metric != "accuracy":
        counts = np.bincount(y.astype(int), minlength=len(class_names))
        thin = [f"{class_names[i]} ({c})" for i, c in enumerate(counts) if c < MIN_CONTROL_PER_CLASS]
        if thin:
            raise DataError(f"{metric} needs at least {MIN_CONTROL_PER_CLASS} validation images of every class; "
                            f"too few of {', '.join(thin)}: raise {option}, or use --metric accuracy")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def auc_score(y: np.ndarray, probs: np.ndarray, num_classes: int) -> float | None:
    """ROC AUC (one-vs-rest macro for multi-class), as scikit-learn's `roc_auc_score` computes it
    (tests/test_metrics.py compares them); None when a class is absent from `y`."""
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if len(np.unique(y)) < num_classes:
        return None
    return float(_auc_resamples(y, np.asarray(probs, dtype=np.float64), num_classes, np.arange(len(y))[None])[0])


def _tie_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks along axis 1 with ties given their average rank (scipy's `rankdata`), in
    numpy: metrics run on devices without scipy."""
    a = np.asarray(a)
    order = np.argsort(a, axis=1, kind="mergesort")
    sorted_a = np.take_along_axis(a, order, axis=1)
    # a run of equal values (within one row) is one group; every member gets the group's mean position
    new = np.ones(a.shape, dtype=bool)
    new[:, 1:] = sorted_a[:, 1:] != sorted_a[:, :-1]
    group = np.cumsum(new.ravel()) - 1
    position = np.tile(np.arange(1, a.shape[1] + 1, dtype=np.float64), a.shape[0])
    mean = np.bincount(group, weights=position) / np.bincount(group)
    ranks = np.empty(a.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, mean[group].reshape(a.shape), axis=1)
    return ranks


def _auc_resamples(y: np.ndarray, probs: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """AUC of each resample row of idx (B, N), the same quantity as roc_auc_score (one-vs-rest
    macro for k > 2), via the Mann–Whitney statistic on tie-averaged ranks, vectorised over
    resamples; NaN where a class is absent from the resample."""
    classes = [1] if k == 2 else range(k)
    per_class = []
    for c in classes:
        pos = y[idx] == c  # (B, N)
        ranks = _tie_ranks(probs[:, c][idx])
        n_pos = pos.sum(axis=1).astype(np.float64)
        n_neg = idx.shape[1] - n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            u = (ranks * pos).sum(axis=1) - n_pos * (n_pos + 1) / 2
            per_class.append(np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan))
    aucs = np.stack(per_class, axis=1)
    # scikit-learn's one-vs-rest needs every class present; so does this (NaN otherwise)
    return aucs.mean(axis=1)


def _rates(cms: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of a stack of confusion matrices (B, K, K) → arrays of shape (B,) or (B, K)."""
    cms = cms.astype(np.float64)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    support = cms.sum(axis=2)
    predicted = cms.sum(axis=1)
    total = cms.sum(axis=(1, 2))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(support > 0, tp / support, np.nan)
        negatives = total - support
        spec = np.where(negatives > 0, (total - support - predicted + tp) / negatives, np.nan)
        balanced = np.nanmean(sens, axis=1)  # scikit-learn: mean recall over classes present
    return {"accuracy": tp.sum(axis=1) / total[:, 0], "balanced_accuracy": balanced,
            "sensitivity": sens, "specificity": spec}


def _confusions(y: np.ndarray, pred: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """Confusion matrices of resamples idx (B, N) in one bincount."""
    b = idx.shape[0]
    flat = (np.arange(b)[:, None] * k * k + y[idx] * k + pred[idx]).ravel()
    return np.bincount(flat, minlength=b * k * k).reshape(b, k, k)


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, (n_boot, n))


def _ci(samples, level: float) -> list[float] | None:
    s = np.asarray([v for v in np.ravel(samples) if v is not None and np.isfinite(v)], dtype=float)
    if len(s) == 0:
        return None
    a = (1.0 - level) / 2.0
    return [float(np.quantile(s, a)), float(np.quantile(s, 1.0 - a))]


def _value(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def classification_metrics(y_true, probs, class_names: list[str] | None = None, n_boot: int = 1000,
                           seed: int = 0, level: float = 0.95) -> dict:
    """Accuracy, balanced accuracy, AUC (one-vs-rest macro for multi-class), per-class
    sensitivity/specificity and the confusion matrix, each with n and a percentile bootstrap CI.

    `probs` are class probabilities (N, K) (use `softmax` on logits). n_boot=0 skips the CIs.
    """
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y):
        raise EdgemedError(f"predictions of shape {p.shape} do not match {len(y)} labels")
    if len(y) == 0:
        raise EdgemedError("cannot compute metrics on an empty split: choose a split that has images (--split)")
    k = p.shape[1]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    pred = p.argmax(axis=1)
    if y.min() < 0 or y.max() >= k:
        raise EdgemedError(f"labels run from {int(y.min())} to {int(y.max())} but the model has {k} classes: "
                           "check the data set and the model's class count")
    # numpy, not scikit-learn: a device's runtime-only install has no scikit-learn/scipy (the
    # tests compare these with scikit-learn's accuracy, balanced accuracy and confusion matrix)
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    point = _rates(cm[None])
    out = {"n": int(len(y)), "n_boot": n_boot, "ci_level": level,
           "accuracy": {"value": float(point["accuracy"][0]), "ci": None},
           "balanced_accuracy": {"value": float(point["balanced_accuracy"][0]), "ci": None},
           "auc": {"value": auc_score(y, p, k), "ci": None}}
    boot = None
    if n_boot:
        idx = _resamples(len(y), n_boot, seed)
        boot = _rates(_confusions(y, pred, k, idx))
        out["accuracy"]["ci"] = _ci(boot["accuracy"], level)
        out["balanced_accuracy"]["ci"] = _ci(boot["balanced_accuracy"], level)
        if out["auc"]["value"] is not None:
            out["auc"]["ci"] = _ci(_auc_resamples(y, p, k, idx), level)
    counts = np.bincount(y, minlength=k)
    out["per_class"] = [{
        "class": name, "n": int(counts[i]),
        "sensitivity": {"value": _value(point["sensitivity"][0, i]),
                        "ci": _ci(boot["sensitivity"][:, i], level) if boot is not None else None},
        "specificity": {"value": _value(point["specificity"][0, i]),
                        "ci": _ci(boot["specificity"][:, i], level) if boot is not None else None},
    } for i, name in enumerate(names)]
    out["confusion_matrix"] = cm.tolist()
    return out


def metric_value(metrics: dict, name: str, positive_class: int | None = None) -> float | None:
    """One scalar from `classification_metrics` output: accuracy, balanced_accuracy, auc, or
    sensitivity/specificity (of the positive class for binary tasks; mean over classes otherwise)."""
    if name in ("accuracy", "balanced_accuracy", "auc"):
        return metrics[name]["value"]
    if name in ("sensitivity", "specificity"):
        vals = [c[name]["value"] for c in metrics["per_class"]]
        if len(vals) == 2:
            return vals[1 if positive_class is None else positive_class]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None
    raise EdgemedError(f"unknown metric {name!r}: use one of {', '.join(METRICS)}")


def _scalar(y, probs, k, metric: str, idx: np.ndarray | None = None) -> np.ndarray:
    """metric for the full set (idx None) or for each resample row of idx."""
    idx = np.arange(len(y))[None] if idx is None else idx
    if metric == "auc":
        return _auc_resamples(y, probs, k, idx)
    r = _rates(_confusions(y, probs.argmax(1), k, idx))
    if metric in ("accuracy", "balanced_accuracy"):
        return r[metric]
    if metric in ("sensitivity", "specificity"):
        return r[metric][:, 1] if k == 2 else np.nanmean(r[metric], axis=1)
    raise EdgemedError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")


def paired_difference(y_true, probs_a, probs_b, metric: str = "accuracy", n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95) -> dict:
    """metric(b) − metric(a) on the same images with a paired bootstrap CI (both scored on the
    same resamples), plus the flip rate: share of images whose predicted class differs."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    pa, pb = np.asarray(probs_a, float), np.asarray(probs_b, float)
    k = pa.shape[1]
    diff = float(_scalar(y, pb, k, metric)[0] - _scalar(y, pa, k, metric)[0])
    ci = None
    if n_boot:
        idx = _resamples(len(y), n_boot, seed)
        ci = _ci(_scalar(y, pb, k, metric, idx) - _scalar(y, pa, k, metric, idx), level)
    flips = pa.argmax(1) != pb.argmax(1)
    return {"metric": metric, "difference": None if not np.isfinite(diff) else diff, "ci": ci,
            "flip_rate": float(flips.mean()), "flips": int(flips.sum()), "n": int(len(y))}


# --- clinical retention and calibration (what a buyer reads before approving a compressed model)

CLINICAL = ("sensitivity", "specificity", "ppv", "npv")


def decisions(probs: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Predicted classes at an operating point: the most probable class; for two classes with a
    `threshold`, class 1 when its probability is ≥ threshold."""
    p = np.asarray(probs, dtype=np.float64)
    if threshold is None:
        return p.argmax(axis=1)
    if p.shape[1] != 2:
        raise EdgemedError(f"--threshold needs a two-class model; this one has {p.shape[1]} classes: "
                           "leave it out (the most probable class is the decision)")
    return (p[:, 1] >= threshold).astype(np.int64)


def threshold_for_sensitivity(y_true, probs, target: float) -> float:
    """The highest threshold on class 1's probability whose sensitivity is ≥ `target` (binary):
    the operating point the reference model is fixed at, then applied to every artifact."""
    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[1] != 2:
        raise EdgemedError(f"--target-sensitivity needs a two-class model; this one has {p.shape[1]} classes")
    if not 0 < target <= 1:
        raise EdgemedError(f"--target-sensitivity must be in (0, 1], got {target}")
    scores = np.sort(p[y == 1, 1])[::-1]
    if len(scores) == 0:
        raise EdgemedError("--target-sensitivity needs positive cases in the split: there are none")
    k = int(np.ceil(target * len(scores)))  # that many positives must score ≥ the threshold
    return float(scores[k - 1])


def _clinical(cms: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class sensitivity, specificity, PPV, NPV (one class vs the rest) of confusion matrices
    (B, K, K) → arrays (B, K); NaN where a rate has no denominator."""
    cms = cms.astype(np.float64)
    tp = np.diagonal(cms, axis1=1, axis2=2)
    actual, predicted = cms.sum(axis=2), cms.sum(axis=1)
    total = cms.sum(axis=(1, 2))[:, None]
    fn, fp = actual - tp, predicted - tp
    tn = total - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"sensitivity": tp / actual, "specificity": tn / (tn + fp),
                "ppv": tp / predicted, "npv": tn / (tn + fn)}


def clinical_retention(y_true, reference_probs, probs, class_names: list[str], *, threshold: float | None = None,
                       n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> list[dict]:
    """Per class: sensitivity, specificity, PPV and NPV of the reference and of the artifact at the
    same operating point, and the change with a paired bootstrap CI (both scored on the same
    resamples of the same images)."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    k = len(class_names)
    ref, art = decisions(reference_probs, threshold), decisions(probs, threshold)
    whole = np.arange(len(y))[None]
    r0, a0 = _clinical(_confusions(y, ref, k, whole)), _clinical(_confusions(y, art, k, whole))
    if n_boot:
        idx = _resamples(len(y), n_boot, seed)
        rb, ab = _clinical(_confusions(y, ref, k, idx)), _clinical(_confusions(y, art, k, idx))
    counts = np.bincount(y, minlength=k)
    out = []
    for i, name in enumerate(class_names):
        row = {"class": name, "n": int(counts[i])}
        for rate in CLINICAL:
            ref_v, v = _value(r0[rate][0, i]), _value(a0[rate][0, i])
            row[rate] = {"reference": ref_v, "value": v,
                         "difference": None if ref_v is None or v is None else v - ref_v,
                         "ci": _ci(ab[rate][:, i] - rb[rate][:, i], level) if n_boot else None}
        out.append(row)
    return out


def calibration(y_true, probs, bins: int = 15) -> dict:
    """Expected calibration error (top-label confidence in `bins` equal-width bins: Σ n_b/N ×
    |accuracy_b − confidence_b|), the multi-class Brier score (mean over images of Σ_k (p_k −
    1[y = k])², Brier 1950; for two classes twice scikit-learn's `brier_score_loss` of class 1),
    and the reliability diagram's bins."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            acc, conf = float(correct[m].mean()), float(confidence[m].mean())
            ece += m.sum() / len(y) * abs(acc - conf)
            table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(m.sum()),
                          "accuracy": acc, "confidence": conf})
    onehot = np.eye(p.shape[1])[y]
    return {"ece": float(ece), "brier": float(((p - onehot) ** 2).sum(axis=1).mean()), "bins": table,
            "n_bins": bins}


def flipped_cases(y_true, reference_probs, probs, class_names: list[str], *, threshold: float | None = None,
                  limit: int = 24) -> dict:
    """The images whose decision changed against the reference (at its operating point): how
    many, per true class, and the `limit` with the largest change in probability first (the
    failure cases a reviewer looks at).

    Example: `flipped_cases([1, 0], [[.2, .8], [.9, .1]], [[.7, .3], [.9, .1]], ["a", "b"])["count"] == 1`.
    """
    y = np.asarray(y_true)
    ref, p = np.asarray(reference_probs, dtype=np.float64), np.asarray(probs, dtype=np.float64)
    d_ref, d = decisions(ref, threshold), decisions(p, threshold)
    flipped = np.flatnonzero(d_ref != d)
    margin = np.abs(p - ref).max(axis=1)
    order = flipped[np.argsort(-margin[flipped], kind="stable")][:limit]
    per_class = np.bincount(y[flipped], minlength=len(class_names)) if flipped.size else np.zeros(len(class_names), int)
    return {"count": int(flipped.size), "n": int(y.size),
            "by_class": [{"class": c, "count": int(k), "n": int((y == i).sum()),
                          "now_correct": int(((d == y) & (d_ref != y))[flipped][y[flipped] == i].sum())}
                         for i, (c, k) in enumerate(zip(class_names, per_class, strict=True))],
            "cases": [{"index": int(i), "label": int(y[i]), "reference_decision": int(d_ref[i]),
                       "decision": int(d[i]), "reference_probs": [round(float(v), 5) for v in ref[i]],
                       "probs": [round(float(v), 5) for v in p[i]]} for i in order]}
