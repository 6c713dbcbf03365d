"""Reports from bench results: the versioned results schema (schema.py, results.schema.json),
merging many devices and runs (merge.py), the meets-bound rule and Pareto front (compare.py),
tables (tables.py) written as Markdown, HTML and CSV, and matplotlib plots (plots.py).

    import edgemed
    edgemed.report(["pi5.json", "nuc.json"], "report/", max_drop=0.5)
"""

from __future__ import annotations

__all__ = ["report"]


def __getattr__(name: str):
    # imported on first use: the bench harness imports edgemed.report.schema on every run
    if name == "report":
        from edgemed.report.build import report

        return report
    raise AttributeError(f"module 'edgemed.report' has no attribute {name!r}")


from edgemed._verbs import callable_package  # noqa: E402

callable_package(__name__, "edgemed.report.build:report")
