"""The one progress bar of i2i (rich, on stderr): training, apply and video all use it."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(
    enabled: bool = True,
    *,
    label: str = "{task.description}",
    extra: tuple[ProgressColumn, ...] = (),
    console: Console | None = None,
) -> Progress:
    """Label, bar, done/total, elapsed, ETA, then ``extra`` columns; off when not ``enabled``.

    Pass ``console`` to share one with other output (training prints loss lines above the bar).
    """
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        *extra,
        console=console or Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


__all__ = ["progress_bar"]
