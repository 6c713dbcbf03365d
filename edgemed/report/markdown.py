"""report.md: the report's tables in Markdown, plots linked from the plots/ folder beside it."""

from __future__ import annotations

from edgemed.report import text
from edgemed.report.merge import Merged
from edgemed.report.tables import (
    Table,
    details_table,
    measurement_table,
    section_notes,
    summary_table,
)


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    """A pipe table. Example: `md_table(Table(["a"], [["1"]]))`."""
    head = "| " + " | ".join(_cell(c) for c in t.columns) + " |"
    rule = "|" + "|".join("---:" if i in t.right else "---" for i in range(len(t.columns))) + "|"
    body = ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join([head, rule, *body])


def markdown_report(merged: Merged, plot_files: dict[str, dict[str, str]], *, metric: str,
                    max_drop: float, created: str, version: str) -> str:
    """The whole report.md; `plot_files` maps section id → plot name → relative PNG path."""
    out = [f"# {text.title(merged)}", "", text.subtitle(merged, created, version), ""]
    warning = text.sections_warning(merged)
    if warning:
        out += [f"> **Note:** {warning}", ""]
    out += ["## How to read this report", ""] + [f"- {line}" for line in text.reading_guide(metric, max_drop)]
    out += ["", "## Summary", ""]
    for s in merged.sections:
        out += [f"### {s.id}: {s.title}", "", f"Bundle sha256 `{s.bundle_sha256}`; devices: "
                f"{', '.join(s.devices)}.", "", md_table(summary_table(s, metric, max_drop)), ""]
        out += [f"- {n}" for n in section_notes(s)] + [""]
    out += ["## Plots", ""]
    for s in merged.sections:
        out += [f"### {s.id}: {s.title}", ""]
        for name, path in plot_files.get(s.id, {}).items():
            caption = text.PLOT_CAPTIONS[name].format(metric="AUC" if metric == "auc" else "accuracy",
                                                      good="good")
            out += [f"![{name}]({path})", "", f"*{caption}*", ""]
    out += ["## All measurements", ""]
    for s in merged.sections:
        out += [f"### {s.id}: {s.title}", "", md_table(details_table(s, metric)), ""]
    out += ["## How the numbers were measured", ""] + [f"- {line}" for line in text.METHOD] + [""]
    out += [md_table(measurement_table(merged.sources)), ""]
    if merged.notes:
        out += ["Notes:", ""] + [f"- {n}" for n in merged.notes] + [""]
    return "\n".join(out)
