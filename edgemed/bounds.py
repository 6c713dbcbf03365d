"""The two rules every verb judges candidates by, in one place: "meets the bound" and the
latency–metric Pareto front. quantize, optimize and report all call these, so they cannot
disagree on the same numbers."""

from __future__ import annotations

import math

EPS = 1e-9  # drops are ratios of counts: 0.5 may come out as 0.5000000001


def check_max_drop(max_drop, option: str = "--max-drop") -> None:
    """A bound is a finite number of points ≥ 0 (None: no bound). NaN would fail every comparison
    silently and be written into JSON as the invalid NaN."""
    from edgemed.errors import EdgemedError

    if max_drop is None:
        return
    if isinstance(max_drop, bool) or not isinstance(max_drop, (int, float)) or not math.isfinite(max_drop) or max_drop < 0:
        raise EdgemedError(f"{option} must be a finite number of points ≥ 0, e.g. 0.5; got {max_drop!r}")


def meets_bound(drop_points: float, max_drop_points: float) -> bool:
    """A drop (reference − candidate, in points; positive = a loss) meets the bound when it is
    at most `max_drop_points`."""
    return drop_points <= max_drop_points + EPS


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which (latency, score) points no other point beats: lower-or-equal latency and
    higher-or-equal score with one strictly better. Identical points are both on the front.

    Example: `pareto_front([(1, 0.9), (2, 0.95), (3, 0.9)]) == [True, True, False]`.
    """
    out = []
    for i, (lat, score) in enumerate(points):
        dominated = any(lat2 <= lat and s2 >= score and (lat2 < lat or s2 > score)
                        for j, (lat2, s2) in enumerate(points) if j != i)
        out.append(not dominated)
    return out
