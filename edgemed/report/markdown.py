"""report.md: the report's tables in Markdown, plots linked from the plots/ folder beside it."""

from __future__ import annotations

import re

from edgemed.report import text
from edgemed.report.gallery import flip_rows, unchanged_rows
from edgemed.report.merge import Merged, Section
from edgemed.report.tables import (
    Table,
    calibration_table,
    clinical_lines,
    clinical_table,
    decision_table,
    details_table,
    measurement_table,
    section_notes,
    status_table,
    summary_table,
)

# backslashes first, so data cannot cancel an escape added after it
_MD_ESCAPES = (("\\", "\\\\"), ("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`"))
_LINK_END = re.compile(r"\](?=\s*[(\[])")  # the `](` of [text](url) and `][` of [text][ref]


def md_text(value) -> str:
    """Text from a results file as inert Markdown on one line: no HTML, no code span, no table
    cell break, and no link or image (its `](` is escaped, other brackets stay readable).

    Example: `md_text("<b>|![x](http://y)") == "&lt;b&gt;\\\\|![x\\\\](http://y)"`.
    """
    s = " ".join(str(value).splitlines())  # \n, \r\n, \r and the other line breaks
    for old, new in _MD_ESCAPES:
        s = s.replace(old, new)
    return _LINK_END.sub(r"\\]", s)


def md_table(t: Table) -> str:
    """A pipe table. Example: `md_table(Table(["a"], [["1"]]))`."""
    head = "| " + " | ".join(md_text(c) for c in t.columns) + " |"
    rule = "|" + "|".join("---:" if i in t.right else "---" for i in range(len(t.columns))) + "|"
    body = ["| " + " | ".join(md_text(c) for c in row) + " |" for row in t.rows]
    return "\n".join([head, rule, *body])


def gallery_path(run: str, index: int) -> str:
    """Where report.md finds a flipped case's thumbnail (build.py writes it there)."""
    return f"gallery/{run}_{index}.png"


def _heading(s: Section) -> str:
    return f"### {s.id}: {md_text(s.title)}"


def markdown_report(merged: Merged, plot_files: dict[str, dict[str, str]], *, metric: str,
                    max_drop: float, created: str, version: str, devices=None, gates=None) -> str:
    """The whole report.md; `plot_files` maps section id → plot name → relative PNG path;
    `devices`: a devices file's entries; `gates`: check_gates' results."""
    out = [f"# {md_text(text.title(merged))}", "", md_text(text.subtitle(merged, created, version)), ""]
    if gates:
        out += [f"> **{md_text(line)}**" for line in text.gate_lines(gates)] + [""]
    warning = text.sections_warning(merged)
    if warning:
        out += [f"> **Note:** {warning}", ""]
    out += ["## In brief", ""] + [f"- {md_text(line)}" for line in text.executive_summary(merged, metric, max_drop, devices)]
    out += ["", "## How to read this report", ""] + [f"- {line}" for line in text.reading_guide(metric, max_drop)]
    out += ["", "## Summary", ""]
    for s in merged.sections:
        # the sha256 may sit in a code span: the schema allows only hex digits there
        out += [_heading(s), "", f"Bundle sha256 `{s.bundle_sha256}`; devices: "
                f"{md_text(', '.join(s.devices))}.", "", md_table(decision_table(s, metric, max_drop, devices)), "",
                md_table(summary_table(s, metric, max_drop)), ""]
        out += [f"- {md_text(n)}" for n in section_notes(s)] + [""]
        out += [md_table(status_table(s, metric, max_drop)), ""]
    cards = text.model_cards(merged)
    if cards:
        out += ["## Model card", "", text.CARD_GUIDE, ""]
        for title, card in cards:
            out += [f"### {md_text(title)}", ""]
            for sec in card["sections"]:
                out += [f"**{md_text(sec['title'])}**", ""] + [
                    f"- {md_text(i['label'])}: {md_text(i['value'])}" for i in sec["items"]] + [""]
    clinical = [(s, clinical_lines(s), clinical_table(s), calibration_table(s)) for s in merged.sections]
    if any(c[1] or c[2] or c[3] for c in clinical):
        out += ["## Clinical retention and calibration", ""]
        for s, lines, table, cal in clinical:
            out += [_heading(s), ""] + [f"- **{md_text(line)}**" for line in lines] + [""]
            out += [md_table(table), ""] if table else []
            out += [md_table(cal), ""] if cal else []
    flips = [(s, flip_rows(s), unchanged_rows(s)) for s in merged.sections]
    if any(rows or same for _, rows, same in flips):
        out += ["## Flipped cases", "", text.FLIPS_GUIDE, ""]
        for s, rows, same in flips:
            if not rows and not same:
                continue
            out += [_heading(s), ""]
            if same:
                out += [f"No test image changed class under {md_text(', '.join(same))}.", ""]
            for r in rows:
                out += [f"#### {md_text(r.device)} · {md_text(r.name)} ({md_text(r.run)})", "", md_text(r.summary), ""]
                out += [f"- ![image {c.index}]({gallery_path(r.run, c.index)}) {md_text(c.caption)}" if c.png
                        else f"- {md_text(c.caption)} (no thumbnail)" for c in r.cases]
                out += [""]
    out += ["## Plots", ""]
    for s in merged.sections:
        out += [_heading(s), ""]
        for name, path in plot_files.get(s.id, {}).items():
            caption = text.PLOT_CAPTIONS[name].format(metric="AUC" if metric == "auc" else "accuracy",
                                                      good="good")
            out += [f"![{name}]({path})", "", f"*{caption}*", ""]
    out += ["## All measurements", ""]
    for s in merged.sections:
        out += [_heading(s), "", md_table(details_table(s, metric)), ""]
    out += ["## How the numbers were measured", ""] + [f"- {line}" for line in text.METHOD] + [""]
    out += [md_table(measurement_table(merged.sources)), ""]
    if merged.notes:
        out += ["Notes:", ""] + [f"- {md_text(n)}" for n in merged.notes] + [""]
    return "\n".join(out)
