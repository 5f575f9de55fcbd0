"""SIGINT/SIGTERM ask the training loop to save and stop; a second signal stops at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StopFlag:
    def __init__(self) -> None:
        self.signum: int | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @property
    def raised(self) -> bool:
        return self.signum is not None

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """The handlers, while the block runs (only the main thread may install them)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
