"""Rich output shared by the commands: tables and progress bars on stdout, notes on stderr."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def out() -> Console:
    """stdout, resolved when called (so a redirected or captured sys.stdout is honoured)."""
    return Console(highlight=False, soft_wrap=True)


def err() -> Console:
    return Console(stderr=True, highlight=False)


NARROW: int = 100


def table(title: str, *columns: str, **options: Any) -> Table:
    """A table whose first column (the name an operator types next) never wraps; on a terminal narrower than
    NARROW columns without side borders, so that the text keeps the width (80 columns stay readable)."""
    if out().width < NARROW:
        options = {"box": box.SIMPLE_HEAD, "collapse_padding": True, "pad_edge": False} | options
    result = Table(title=title, title_justify="left", **options)
    for index, column in enumerate(columns):
        result.add_column(column, no_wrap=index == 0, overflow="fold")
    return result


def progress() -> Progress:
    """A progress bar on stderr (stdout stays clean for what the command prints), e.g. over messages or campaigns;
    none when stderr is not a terminal (a log), where Rich would leave an empty line behind."""
    console = err()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
