"""Rich progress bars and console shared by long-running commands (on stderr, so `--json`
output on stdout stays clean)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, log_path=False)


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
