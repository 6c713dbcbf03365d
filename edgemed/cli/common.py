"""Printing helpers shared by the command files."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from edgemed.progress import log_width

out = Console(width=log_width(sys.stdout))  # results on stdout
err = Console(stderr=True)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def fmt_ci(m: dict | None, digits: int = 4) -> str:
    if not m or m.get("value") is None:
        return "n/a"
    ci = m.get("ci")
    v = f"{m['value']:.{digits}f}"
    return f"{v} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else v


def metrics_tables(metrics: dict, title: str = "") -> list[Table]:
    """Summary, per-class and confusion-matrix tables of classification_metrics output."""
    level = int(round(100 * metrics.get("ci_level", 0.95)))
    summary = Table(title=title or None, title_justify="left")
    summary.add_column("metric")
    summary.add_column(f"value [{level}% CI]")
    summary.add_column("n", justify="right")
    for name in ("accuracy", "balanced_accuracy", "auc"):
        summary.add_row(name, fmt_ci(metrics[name]), str(metrics["n"]))
    per_class = Table(title="per class", title_justify="left")
    for col in ("class", "n", "sensitivity", "specificity"):
        per_class.add_column(col, justify="right" if col == "n" else "left")
    for c in metrics["per_class"]:
        per_class.add_row(c["class"], str(c["n"]), fmt_ci(c["sensitivity"], 3), fmt_ci(c["specificity"], 3))
    cm = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    names = [c["class"] for c in metrics["per_class"]]
    cm.add_column("")
    for i, _ in enumerate(names):
        cm.add_column(str(i), justify="right")
    for i, row in enumerate(metrics["confusion_matrix"]):
        cm.add_row(f"{i} {names[i]}", *[str(v) for v in row])
    return [summary, per_class, cm]


def parse_json_option(value: str | None, option: str) -> dict:
    from edgemed.errors import EdgemedError

    if not value:
        return {}
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as e:
        raise EdgemedError(f"{option} must be a JSON object, e.g. '{{\"drop_path\": 0.1}}' ({e})") from None
    if not isinstance(obj, dict):
        raise EdgemedError(f"{option} must be a JSON object, e.g. '{{\"drop_path\": 0.1}}'")
    return obj
