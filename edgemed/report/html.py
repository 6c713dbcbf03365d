"""report.html: one self-contained file (inline CSS, plots as base64 PNG, no scripts, no links
out) that opens in any browser and can be mailed or archived as is."""

from __future__ import annotations

import base64
import re
from html import escape

from edgemed.report import text
from edgemed.report.gallery import flip_rows, unchanged_rows
from edgemed.report.merge import Merged
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

CSS = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d232a; margin: 0; background: #f5f6f8; }
main { max-width: 1500px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #2b6cb0; }
h3 { font-size: 16px; margin: 24px 0 6px; }
.sub { color: #555; margin: 0 0 16px; }
.guide { background: #f0f5fb; border-left: 4px solid #2b6cb0; padding: 8px 16px; margin: 12px 0; }
.guide li { margin: 3px 0; }
.warn { background: #fff6e0; border-left: 4px solid #d69e2e; padding: 8px 16px; margin: 12px 0; }
.meta { color: #555; font-size: 12.5px; margin: 2px 0 8px; }
.scroll { overflow-x: auto; margin: 6px 0 8px; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d9dee5; padding: 4px 7px; vertical-align: top; }
td { white-space: nowrap; }
td:first-child { white-space: normal; min-width: 110px; }
th { background: #eef1f5; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
td.yes { background: #e3f4e8 !important; color: #1e6b34; font-weight: 600; }
td.no { background: #fbe5e5 !important; color: #9b2226; font-weight: 600; }
td.ref { color: #555; font-style: italic; }
table.measure td:first-child { font-weight: 600; white-space: nowrap; background: #f4f6f9; }
table.measure td { max-width: 520px; word-break: break-word; white-space: normal; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; border: 1px solid #e2e6eb; }
figcaption { color: #555; font-size: 12.5px; max-width: 980px; }
ul.notes { font-size: 12.5px; color: #444; margin: 4px 0 0; }
footer { margin-top: 36px; color: #666; font-size: 12px; }
code { background: #f0f2f5; padding: 0 3px; border-radius: 3px; }
.brief { background: #f7faf2; border-left: 4px solid #2f855a; padding: 8px 16px; margin: 12px 0; font-size: 15px; }
.brief li { margin: 4px 0; }
.gate-pass { background: #e3f4e8; border-left: 4px solid #1e6b34; padding: 8px 16px; margin: 12px 0; }
.gate-fail { background: #fbe5e5; border-left: 4px solid #9b2226; padding: 8px 16px; margin: 12px 0; }
table.decision th { background: #dde8f5; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 16px; }
.gallery figure { margin: 0; width: 150px; font-size: 11.5px; color: #333; }
.gallery img { width: 128px; height: 128px; image-rendering: pixelated; border: 1px solid #ccd; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { background: #fff; font-size: 10.5px; }
  main { max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  table { font-size: 9px; page-break-inside: auto; }
  tr, figure, .gallery figure { page-break-inside: avoid; }
  thead { display: table-header-group; }
  h2 { page-break-after: avoid; }
  h2.major { page-break-before: always; }
  td.yes, td.no, .gate-pass, .gate-fail, th { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

_STATUS = {"yes": "yes", "no": "no", "reference": "ref", "n/a": "ref", "stable": "yes", "unstable": "no",
           "passed": "yes", "passed (reference)": "yes", "failed the bound": "no", "failed to export": "no",
           "exported, failed parity": "no", "not run on this device": "ref", "measured (no accuracy)": "ref"}


def _inline(s: str) -> str:
    """Escape, then render the **bold**, *italic* and `code` marks of the shared texts (never of
    data from a results file: escape() alone is used for that)."""
    s = escape(s)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    s = re.sub(r"\*(.+?)\*", r"<em>\1</em>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def html_table(t: Table, status_cols: tuple[int, ...] = (), cls: str = "") -> str:
    """A <table>; cells of `status_cols` are coloured by yes/no. Example: `html_table(Table(["a"], [["1"]]))`."""
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = []
    for row in t.rows:
        cells = []
        for i, c in enumerate(row):
            classes = ["num"] if i in t.right else []
            if i in status_cols:
                classes.append(_STATUS.get(c, ""))
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{escape(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return (f'<div class="scroll"><table{cls_attr}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def html_report(merged: Merged, plots: dict[str, dict[str, bytes]], *, metric: str, max_drop: float,
                created: str, version: str, devices=None, gates=None) -> str:
    """The whole report.html; `plots` maps section id → plot name → PNG bytes; `devices`: a
    devices file's entries; `gates`: check_gates' results."""
    title = text.title(merged)
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="sub">{escape(text.subtitle(merged, created, version))}</p>']
    if gates:
        failed = any(not g["passed"] for g in gates)
        parts.append(f'<div class="{"gate-fail" if failed else "gate-pass"}">' +
                     "<br>".join(escape(line) for line in text.gate_lines(gates)) + "</div>")
    warning = text.sections_warning(merged)
    if warning:
        parts.append(f'<div class="warn"><strong>Note:</strong> {_inline(warning)}</div>')
    brief = "".join(f"<li>{escape(line)}</li>" for line in text.executive_summary(merged, metric, max_drop, devices))
    parts.append(f'<div class="brief"><strong>In brief</strong><ul>{brief}</ul></div>')
    guide = "".join(f"<li>{_inline(line)}</li>" for line in text.reading_guide(metric, max_drop))
    parts.append(f'<div class="guide"><strong>How to read this report</strong><ul>{guide}</ul></div>')

    parts.append("<h2>Summary</h2>")
    for s in merged.sections:
        t = summary_table(s, metric, max_drop)
        notes = "".join(f"<li>{escape(n)}</li>" for n in section_notes(s))  # data: no marks rendered
        parts += [f'<h3 id="{escape(s.id)}">{escape(s.id)}: {escape(s.title)}</h3>',
                  f'<p class="meta">Bundle sha256 <code>{escape(s.bundle_sha256)}</code> · devices: '
                  f"{escape(', '.join(s.devices))}</p>",
                  html_table(decision_table(s, metric, max_drop, devices), status_cols=(9, 10), cls="decision"),
                  html_table(t, status_cols=(len(t.columns) - 4, len(t.columns) - 3, len(t.columns) - 2)),
                  f'<ul class="notes">{notes}</ul>' if notes else "",
                  html_table(status_table(s, metric, max_drop), status_cols=(2,))]

    cards = text.model_cards(merged)
    if cards:
        parts.append('<h2 class="major">Model card</h2>')
        parts.append(f"<p>{_inline(text.CARD_GUIDE)}</p>")
        for title, card in cards:
            parts.append(f"<h3>{escape(title)}</h3>")
            for sec in card["sections"]:
                rows = "".join(f"<tr><td>{escape(i['label'])}</td><td>{escape(i['value'])}</td></tr>" for i in sec["items"])
                parts.append(f'<h4>{escape(sec["title"])}</h4><div class="scroll"><table class="measure"><tbody>{rows}'
                             "</tbody></table></div>")
    clinical = [(s, clinical_lines(s), clinical_table(s), calibration_table(s)) for s in merged.sections]
    if any(c[1] or c[2] or c[3] for c in clinical):
        parts.append("<h2>Clinical retention and calibration</h2>")
        for s, lines, table, cal in clinical:
            parts.append(f"<h3>{escape(s.id)}: {escape(s.title)}</h3>")
            if lines:
                parts.append('<ul class="decision">' + "".join(f"<li><strong>{escape(line)}</strong></li>"
                                                              for line in lines) + "</ul>")
            parts += [html_table(table)] if table else []
            parts += [html_table(cal)] if cal else []

    flips = [(s, flip_rows(s), unchanged_rows(s)) for s in merged.sections]
    if any(rows or same for _, rows, same in flips):
        parts.append('<h2 class="major">Flipped cases</h2>')
        parts.append(f"<p>{_inline(text.FLIPS_GUIDE)}</p>")
        for s, rows, same in flips:
            if not rows and not same:
                continue
            parts.append(f"<h3>{escape(s.id)}: {escape(s.title)}</h3>")
            if same:
                parts.append(f"<p>No test image changed class under {escape(', '.join(same))}.</p>")
            for r in rows:
                parts.append(f"<h4>{escape(r.device)} · {escape(r.name)} ({escape(r.run)})</h4><p>{escape(r.summary)}</p>")
                figures = "".join(
                    f"<figure>{_img(c.png, f'image {c.index}') if c.png else '<div>no thumbnail</div>'}"
                    f"<figcaption>{escape(c.caption)}</figcaption></figure>" for c in r.cases)
                parts.append(f'<div class="gallery">{figures}</div>' if figures else "")

    parts.append("<h2>Plots</h2>")
    for s in merged.sections:
        parts.append(f"<h3>{escape(s.id)}: {escape(s.title)}</h3>")
        for name, png in plots.get(s.id, {}).items():
            caption = text.PLOT_CAPTIONS[name].format(metric="AUC" if metric == "auc" else "accuracy",
                                                      good="good")
            parts.append(f"<figure>{_img(png, f'{s.id} {name} plot')}<figcaption>{_inline(caption)}"
                         "</figcaption></figure>")

    parts.append("<h2>All measurements</h2>")
    for s in merged.sections:
        parts += [f"<h3>{escape(s.id)}: {escape(s.title)}</h3>", html_table(details_table(s, metric))]

    parts.append("<h2>How the numbers were measured</h2>")
    parts.append("<ul>" + "".join(f"<li>{_inline(m)}</li>" for m in text.METHOD) + "</ul>")
    parts.append(html_table(measurement_table(merged.sources), cls="measure"))
    if merged.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in merged.notes) + "</ul>")
    parts.append("<footer>Beside this file: <code>report.md</code> (the same tables), "
                 "<code>results.csv</code> (one row per measurement) and <code>plots/</code>. "
                 "Results format: edgemed/report/results.schema.json.</footer>")
    body = "\n".join(p for p in parts if p)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body><main>\n{body}\n"
            f"</main></body>\n</html>\n")
