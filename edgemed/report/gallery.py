"""Flipped cases: the test images whose decision changed under compression, as the failure
analysis reviewers ask for. Bench keeps the largest changes of each row (24) with thumbnails;
the report checks every thumbnail is a small PNG before it shows it."""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field

from edgemed.report.merge import Section

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 256
SHOWN = 24  # per row


@dataclass
class Case:
    index: int
    caption: str
    png: bytes | None  # None: no (valid) thumbnail in the results file


@dataclass
class FlipRow:
    device: str
    name: str
    reference: str
    summary: str
    run: str
    cases: list[Case] = field(default_factory=list)


def checked_png(b64: str | None) -> bytes | None:
    """The PNG bytes of a thumbnail, or None unless it decodes to a PNG at most 256 px a side
    (read from its header; nothing else is decoded)."""
    if not b64:
        return None
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(PNG_SIGNATURE):
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            if max(img.size) > MAX_SIDE:
                return None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return data


def _name(names: list, i: int) -> str:
    return str(names[i]) if 0 <= i < len(names) else f"class {i}"


def unchanged_rows(section: Section) -> list[str]:
    """Names of the compressed rows under which no image changed class."""
    return [f"{e.device} · {e.name}" for e in section.entries if not e.is_reference
            and ((e.row.get("accuracy") or {}).get("flips") or {}).get("count") == 0]


def flip_rows(section: Section) -> list[FlipRow]:
    """Per compressed row with flips: a summary line and its largest-change cases."""
    out = []
    for e in section.entries:
        flips = (e.row.get("accuracy") or {}).get("flips")
        if not flips or not flips["count"] or e.is_reference:
            continue
        names = e.source.bundle.get("class_names") or []
        per_class = ", ".join(f"{c['class']} {c['count']} of {c['n']}" for c in flips.get("by_class") or [] if c["count"])
        better = sum(c["now_correct"] for c in flips.get("by_class") or [])
        summary = (f"{flips['count']} of {flips['n']} images changed class against {e.source.reference}"
                   + (f" ({per_class}); {better} of them are now right, {flips['count'] - better} now wrong"
                      if flips["count"] else ""))
        thumbs = e.source.results.get("thumbnails") or {}
        cases = []
        for c in (flips.get("cases") or [])[:SHOWN]:
            ref_p, p = c["reference_probs"], c["probs"]
            was, now = c["reference_decision"], c["decision"]
            caption = (f"#{c['index']} · true {_name(names, c['label'])} · {_name(names, was)} → {_name(names, now)}; "
                       f"p({_name(names, now)}) {ref_p[now] if now < len(ref_p) else float('nan'):.2f} → "
                       f"{p[now] if now < len(p) else float('nan'):.2f}")
            cases.append(Case(c["index"], caption, checked_png(thumbs.get(str(c["index"])))))
        out.append(FlipRow(e.device, e.name, e.source.reference or "reference", summary, e.source.run, cases))
    return out
