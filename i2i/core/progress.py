"""The one progress bar of i2i (rich, on stderr): training, apply and video all use it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

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
    prefix: str = "",
) -> Progress | ProgressLines:
    """Label, bar, done/total, elapsed, ETA, then ``extra`` columns; off when not ``enabled``.

    Pass ``console`` to share one with other output (training prints loss lines above the bar).
    A ``prefix`` (``"rank 1/4: "``) says this is one of several processes sharing a terminal or
    a log file: their live bars would overwrite each other, so each prints lines instead.
    """
    if prefix:
        return ProgressLines(prefix, enabled)
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


@dataclass
class _Task:
    description: str
    total: float | None
    start: float
    done: float = 0
    shown: float = 0  # what the last line said
    last: float = 0.0  # when


class ProgressLines:
    """Progress as a line every ``every`` seconds and one at the end of each task, on stderr:
    ``rank 1/4: translating 30/120, 12 s, about 36 s left``. Takes the part of ``Progress``'s
    interface that apply and video use (``add_task``, ``advance``)."""

    def __init__(self, prefix: str, enabled: bool = True, every: float = 10.0) -> None:
        self.prefix = prefix
        self.enabled = enabled
        self.every = every
        self.tasks: list[_Task] = []

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            for task in self.tasks:
                if task.shown != task.done:
                    self._print(task)

    def add_task(self, description: str, total: float | None = None) -> int:
        now = time.perf_counter()
        self.tasks.append(_Task(description, total, start=now, last=now))
        return len(self.tasks) - 1

    def advance(self, task_id: int, advance: float = 1) -> None:
        task = self.tasks[task_id]
        task.done += advance
        if time.perf_counter() - task.last >= self.every or task.done == task.total:
            self._print(task)

    def _print(self, task: _Task) -> None:
        now = time.perf_counter()
        task.last, task.shown = now, task.done
        if not self.enabled:
            return
        done, total, elapsed = task.done, task.total, now - task.start
        line = f"{self.prefix}{task.description} {done:g}" + (f"/{total:g}" if total else "")
        line += f", {elapsed:.0f} s"
        if total and 0 < done < total:
            line += f", about {elapsed * (total - done) / done:.0f} s left"
        print(line, file=sys.stderr, flush=True)


__all__ = ["ProgressLines", "progress_bar"]
