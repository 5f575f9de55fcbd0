"""A run's loss log, ``losses.jsonl``: one JSON record per line, appended while training.

The log is never rewritten in place. A resumed run trims the records after its checkpoint
through a temporary file and a rename, so a kill at any moment leaves the old log or the new
one. A line that does not parse (the torn last line of a killed run) is dropped with a
warning by every reader, so a crash never blocks resume, export or plots.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from i2i.core.errors import writing
from i2i.core.files import atomic_write_text
from i2i.models.safefiles import regular_file

LOSS_LOG = "losses.jsonl"
# What to do when a file of a training run cannot be written (not a full disk).
RUN_WAY_OUT = "make the run folder writable, then --resume the run"

Warn = Callable[[str], None]


def _ignore(message: str) -> None:
    del message


def read_records(path: Path, warn: Warn = _ignore) -> list[dict[str, Any]]:
    """The log's records in order; lines that are not a JSON record with a step are dropped
    (each with a warning)."""
    path = Path(path)
    if not path.is_file():
        return []
    regular_file(path, path.parent, "loss log")  # nothing outside the run folder
    records, torn = [], []
    for number, line in enumerate(path.read_bytes().decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
        else:
            torn.append(number)
    if torn:
        warn(
            f"warning: {path} line(s) {', '.join(map(str, torn))} are not complete records "
            f"(a run killed while writing?); ignored"
        )
    return records


def trim_after(path: Path, step: int, warn: Warn = _ignore) -> None:
    """Keep the records up to ``step`` (a resumed run repeats the steps after its checkpoint),
    dropping torn lines; written atomically, so the old log survives a kill."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [r for r in read_records(path, warn) if r["step"] <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def append(path: Path, record: dict[str, Any]) -> None:
    """Add one record as one write of one line (a kill or a full disk tears at most this line,
    which every reader drops)."""
    with writing(path, RUN_WAY_OUT), open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
