"""Accuracy control shared by every INT8 route: what is kept (`AccuracyTarget`: a metric on the
validation split within a bound) and the search that keeps it (`revert_until_within`: layers back
to float until the bound holds), a pure function over a "build and score with these layers float"
callable. Routes with their own search (NNCF's `quantize_with_accuracy_control`) take the
`AccuracyTarget` directly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgemed.bounds import meets_bound
from edgemed.metrics import classification_metrics, metric_value, softmax

PRESETS = ("performance", "mixed")
MODEL_TYPES = ("cnn", "transformer")


@dataclass
class AccuracyTarget:
    """What accuracy control keeps: `metric` on validation images within `max_drop` (metric units)."""

    x: np.ndarray
    y: np.ndarray
    metric: str
    max_drop: float
    class_names: list[str]
    reference: float | None = None
    batch: int = 32

    def score(self, logits: np.ndarray, y: np.ndarray | None = None) -> float:
        y = self.y if y is None else y
        v = metric_value(classification_metrics(y, softmax(logits), self.class_names, n_boot=0), self.metric)
        return float(v) if v is not None else 0.0  # undefined on a one-class slice (NNCF probes one item)

    def evaluate(self, run, items) -> tuple[float, None]:
        """NNCF's validation_fn contract: (metric over the items, no per-item values)."""
        logits, ys = [], []
        for x, y in items:
            logits.append(run(x))
            ys.append(y)
        return self.score(np.concatenate(logits), np.concatenate(ys)), None

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.x[i:i + self.batch], self.y[i:i + self.batch]) for i in range(0, len(self.y), self.batch)]

    def restorer_options(self, nncf) -> dict:
        """NNCF ranks every quantizer group by re-running the ranking subset with it reverted; by
        default that subset is the whole validation split, which at 224² took minutes per model
        here. Large inputs rank on 64 images (two batches); the final check still uses them all."""
        if self.x.shape[-1] * self.x.shape[-2] <= 64 * 64:
            return {}
        from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

        items = max(1, -(-64 // self.batch))
        return {"advanced_accuracy_restorer_parameters": AdvancedAccuracyRestorerParameters(ranking_subset_size=items)}


MAX_REVERT_FRACTION = 0.25  # the search keeps at most this share of the quantized layers float


@dataclass
class Search:
    float_layers: list[str]  # the best build's float layers (the caller's `keep` included)
    score: float
    result: object  # what `build` returned alongside the score for those layers
    attempts: list[dict] = field(default_factory=list)


def revert_until_within(build: Callable[[list[str]], tuple[float, object]], *, keep: list[str],
                        first: tuple[float, object], reference: float, max_drop: float,
                        ranked: Callable[[], tuple[list[str], int]], learned: list[str] | None = None) -> Search:
    """Bring `reference − score` within `max_drop` (metric units) by keeping layers float.

    `build(float_layers)` quantizes with those layers float and returns (score, result); the last
    call is the one on disk. `first` is the plain build with `keep` float. Tried in order: the
    layers another route's accuracy control reverted (`learned`, one build when it suffices), then
    the most sensitive layers 1, 2, 4, … at a time; `ranked()` (called only if needed) returns
    (layers, most sensitive first; how many may be reverted). The best build is returned, rebuilt
    if a later attempt overwrote it.
    """
    attempts: list[dict] = []
    best = Search(list(keep), first[0], first[1], attempts)
    on_disk = list(keep)

    def attempt(layers: list[str], by: str) -> bool:
        nonlocal on_disk
        score, result = build(layers)
        on_disk = layers
        attempts.append({"float_layers": layers, "metric": score, "drop": reference - score, "by": by})
        met = meets_bound(100 * (reference - score), 100 * max_drop)
        # a build within the bound is kept even when it only ties the best so far (it is on disk)
        if score > best.score or (met and score == best.score):
            best.float_layers, best.score, best.result = layers, score, result
        return met

    learned = [layer for layer in learned or [] if layer not in keep]
    if learned and attempt(keep + learned, "layers NNCF's accuracy control reverted for another format"):
        return best  # the learned build: within the bound, and the file on disk
    order, limit = ranked()
    order = [layer for layer in order if layer not in keep]
    k = 1
    while k <= min(limit, len(order)):
        if attempt(keep + order[:k], "sensitivity-ranked revert"):
            break
        k *= 2
    if on_disk != best.float_layers:  # later attempts overwrote the file: rebuild the best one
        best.score, best.result = build(best.float_layers)
    return best


def revert_limit(quantized_layers: int) -> int:
    return max(1, int(MAX_REVERT_FRACTION * quantized_layers))
