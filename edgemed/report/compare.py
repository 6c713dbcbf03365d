"""How rows are judged: the accuracy-drop bound ("meets bound") and the latency–accuracy
Pareto front (the rules themselves: edgemed/bounds.py).

Meets bound: the drop is reference − candidate on the same images, in points (accuracy in
percentage points; AUC × 100, so a bound of 0.5 is 0.005 AUC). A row meets the bound when the
point estimate of its drop is ≤ the bound. It is also reported whether the worse end of the
paired 95 % bootstrap CI of the drop is within the bound (the stricter reading: even the
pessimistic end of the interval stays inside).
"""

from __future__ import annotations

from dataclasses import dataclass

from edgemed.bounds import meets_bound, pareto_front
from edgemed.report.merge import Entry

METRICS = ("accuracy", "auc")


@dataclass(frozen=True)
class BoundCheck:
    """A row against the bound. `status` and `ci_status`: yes, no, reference or n/a."""

    status: str
    ci_status: str
    drop: float | None = None  # points, positive = a loss
    drop_ci: tuple[float, float] | None = None  # (better end, worse end), points

    @property
    def delta(self) -> float | None:
        """Signed change vs the reference in points (negative = a loss), as tables show it."""
        return None if self.drop is None else -self.drop


def check_bound(entry: Entry, metric: str = "accuracy", max_drop: float = 0.5) -> BoundCheck:
    """Judge one row's retention of `metric` against `max_drop` points.

    Example: `check_bound(entry, "auc", 0.5).status  # "yes" when AUC fell by ≤ 0.005`.
    """
    if entry.is_reference:
        return BoundCheck("reference", "reference", 0.0, (0.0, 0.0))
    ret = entry.retention(metric)
    if not ret or ret.get("difference") is None:
        return BoundCheck("n/a", "n/a")
    drop = -100.0 * ret["difference"]
    status = "yes" if meets_bound(drop, max_drop) else "no"
    ci = ret.get("ci")
    if not ci:
        return BoundCheck(status, "n/a", drop)
    drop_ci = (-100.0 * ci[1], -100.0 * ci[0])
    return BoundCheck(status, "yes" if meets_bound(drop_ci[1], max_drop) else "no", drop, drop_ci)


def front_group(entry: Entry) -> tuple[str, int]:
    """Rows whose latencies may be compared for the front: one device, one batch size."""
    return entry.device, entry.row["batch"]


def pareto_flags(entries: list[Entry], metric: str = "accuracy") -> dict[int, bool]:
    """id(entry) → on its device's latency–`metric` front (rows without the metric are left out)."""
    groups: dict[tuple, list[Entry]] = {}
    for e in entries:
        if e.metric(metric)[0] is not None:
            groups.setdefault(front_group(e), []).append(e)
    flags: dict[int, bool] = {}
    for group in groups.values():
        marks = pareto_front([(e.latency["p50"], e.metric(metric)[0]) for e in group])
        flags.update({id(e): m for e, m in zip(group, marks, strict=True)})
    return flags
