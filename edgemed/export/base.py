"""What every format exporter returns, and how an export failure is reported (naming the op)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OP_PATTERNS = (
    re.compile(r"OpOverload\(op='([\w.]+)', overload='(\w+)'"),  # torch.onnx dispatch errors
    re.compile(r"target=torch\.ops\.([\w.]+)"),
    re.compile(r"((?:aten|prims)[.:]{1,2}[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)"),
    re.compile(r"(?:[Uu]nsupported|not supported|no (?:conversion|converter|lowering) for)[^'\"`]*['\"`]([A-Za-z0-9_.:]+)['\"`]"),
)


@dataclass
class ExportedFiles:
    files: list[Path]  # primary file first
    input_layout: str = "NCHW"
    static_batch: int | None = None
    details: dict = field(default_factory=dict)


def unsupported_op(exc: BaseException) -> str | None:
    """The operator an exporter choked on, read from its error message, if it names one."""
    text = _ANSI.sub("", f"{exc}\n{exc.__cause__ or ''}")
    for pattern in _OP_PATTERNS:
        m = pattern.search(text)
        if m:
            return ".".join(g for g in m.groups() if g).replace("::", ".")
    return None


def describe_failure(fmt: str, exc: BaseException) -> str:
    op = unsupported_op(exc)
    first = (_ANSI.sub("", str(exc)).strip().splitlines() or [exc.__class__.__name__])[0][:300]
    if op:
        return f"{fmt} cannot take op {op} ({exc.__class__.__name__}: {first})"
    return f"{fmt} export failed ({exc.__class__.__name__}: {first})"
