"""Classification metrics with bootstrap confidence intervals (scikit-learn; no torch), shared
by training, evaluation and the benchmark harness on devices."""

from __future__ import annotations

import numpy as np

from edgemed.errors import EdgemedError

METRICS = ("accuracy", "balanced_accuracy", "auc", "sensitivity", "specificity")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _auc(y: np.ndarray, probs: np.ndarray, num_classes: int) -> float | None:
    from sklearn.metrics import roc_auc_score  # imported here: scipy is slow to load on a Pi

    if len(np.unique(y)) < num_classes:
        return None  # AUC is undefined when a class is absent from the sample
    if num_classes == 2:
        return float(roc_auc_score(y, probs[:, 1]))
    return float(roc_auc_score(y, probs, multi_class="ovr", average="macro", labels=list(range(num_classes))))


def _point(y: np.ndarray, probs: np.ndarray, num_classes: int) -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

    pred = probs.argmax(axis=1)
    cm = confusion_matrix(y, pred, labels=list(range(num_classes)))
    tp = np.diag(cm).astype(float)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = cm.sum() - tp - fn - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "auc": _auc(y, probs, num_classes),
        "sensitivity": sens,
        "specificity": spec,
        "cm": cm,
    }


def _ci(samples: list[float], level: float) -> list[float] | None:
    s = np.asarray([v for v in samples if v is not None and np.isfinite(v)], dtype=float)
    if len(s) == 0:
        return None
    a = (1.0 - level) / 2.0
    return [float(np.quantile(s, a)), float(np.quantile(s, 1.0 - a))]


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
        raise EdgemedError("cannot compute metrics on an empty split")
    k = p.shape[1]
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    point = _point(y, p, k)
    boots: dict[str, list] = {m: [] for m in ("accuracy", "balanced_accuracy", "auc")}
    sens_b, spec_b = [], []
    if n_boot:
        rng = np.random.default_rng(seed)
        for _ in range(n_boot):
            idx = rng.integers(0, len(y), len(y))
            b = _point(y[idx], p[idx], k)
            for m in boots:
                boots[m].append(b[m])
            sens_b.append(b["sensitivity"])
            spec_b.append(b["specificity"])
    n = len(y)
    out = {"n": n, "n_boot": n_boot, "ci_level": level}
    for m in boots:
        out[m] = {"value": point[m], "ci": _ci(boots[m], level) if n_boot else None}
    counts = np.bincount(y, minlength=k)
    per_class = []
    for i, name in enumerate(names):
        sens = point["sensitivity"][i]
        spec = point["specificity"][i]
        per_class.append({
            "class": name,
            "n": int(counts[i]),
            "sensitivity": {"value": None if np.isnan(sens) else float(sens),
                            "ci": _ci([s[i] for s in sens_b], level) if n_boot else None},
            "specificity": {"value": None if np.isnan(spec) else float(spec),
                            "ci": _ci([s[i] for s in spec_b], level) if n_boot else None},
        })
    out["per_class"] = per_class
    out["confusion_matrix"] = point["cm"].tolist()
    return out


def metric_value(metrics: dict, name: str, positive_class: int | None = None) -> float | None:
    """One scalar from `classification_metrics` output: accuracy, balanced_accuracy, auc, or
    sensitivity (of the positive class for binary tasks; mean over classes otherwise)."""
    if name in ("accuracy", "balanced_accuracy", "auc"):
        return metrics[name]["value"]
    if name in ("sensitivity", "specificity"):
        vals = [c[name]["value"] for c in metrics["per_class"]]
        if len(vals) == 2:
            return vals[1 if positive_class is None else positive_class]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else None
    raise EdgemedError(f"unknown metric {name!r}: use one of {', '.join(METRICS)}")


def paired_difference(y_true, probs_a, probs_b, metric: str = "accuracy", n_boot: int = 1000,
                      seed: int = 0, level: float = 0.95) -> dict:
    """metric(b) − metric(a) on the same images with a paired bootstrap CI, plus the flip rate
    (share of images whose predicted class differs between a and b)."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    pa, pb = np.asarray(probs_a, float), np.asarray(probs_b, float)
    k = pa.shape[1]

    def value(idx):
        ma = metric_value({**_wrap(_point(y[idx], pa[idx], k))}, metric)
        mb = metric_value({**_wrap(_point(y[idx], pb[idx], k))}, metric)
        return None if ma is None or mb is None else mb - ma

    full = np.arange(len(y))
    rng = np.random.default_rng(seed)
    samples = [value(rng.integers(0, len(y), len(y))) for _ in range(n_boot)]
    flips = pa.argmax(1) != pb.argmax(1)
    return {"metric": metric, "difference": value(full), "ci": _ci(samples, level),
            "flip_rate": float(flips.mean()), "flips": int(flips.sum()), "n": int(len(y))}


def _wrap(point: dict) -> dict:
    """`_point` output in `classification_metrics`' shape, for metric_value."""
    per_class = [{"sensitivity": {"value": None if np.isnan(s) else float(s)},
                  "specificity": {"value": None if np.isnan(t) else float(t)}}
                 for s, t in zip(point["sensitivity"], point["specificity"])]
    return {"accuracy": {"value": point["accuracy"]},
            "balanced_accuracy": {"value": point["balanced_accuracy"]},
            "auc": {"value": point["auc"]}, "per_class": per_class}
