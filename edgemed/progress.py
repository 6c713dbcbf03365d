"""Rich progress bars and console shared by long-running commands (on stderr, so `--json`
output on stdout stays clean)."""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def log_width(stream) -> int | None:
    """Rich wraps and truncates at 80 columns when it cannot ask a terminal; a log file has no
    width, so give it room for every number (COLUMNS still wins)."""
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return 160


console = Console(stderr=True, log_path=False, width=log_width(sys.stderr))


def progress_bar(enabled: bool = True, transient: bool = False) -> Progress:
    """A progress display with count, elapsed time and ETA; `task.fields['info']` shows live
    values such as loss and accuracy."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=transient,
    )
