"""Loading ahead of the consumer in a background thread (``prefetch``).

Decoding (Pillow releases the GIL), collation and pinning then run while the main thread steps
the networks, without worker processes to start every epoch or copies of the dataset in each.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import torch

from i2i.core.errors import InvalidArgumentError

T = TypeVar("T")
_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``batches`` in a background thread, up to ``depth`` items ahead of the consumer.

    Meant for a DataLoader with ``num_workers=0``: decoding (Pillow releases the GIL), collation
    and pinning then run while the main thread steps the networks, without worker processes to
    start every epoch or copies of the dataset in each. Items arrive in order; an exception in
    the loader is raised in the consumer at the item where it happened; stopping early (``break``,
    an error, Ctrl-C) stops the thread after the item it is on. The consumer still moves pinned
    batches to the device itself (``non_blocking=True``), on its own CUDA stream.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidArgumentError(f"prefetch depth must be a positive integer, got {depth!r}")
    return _prefetched(batches, depth)


def _prefetched(batches: Iterable[T], depth: int) -> Iterator[T]:
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    threads = torch.get_num_threads()

    def produce() -> None:
        # Torch work here (collation, resizing) would run its own OpenMP team beside the step's,
        # and on a CPU with few cores the two teams' threads wait on each other: on 2 cores the
        # step ran 1.8x slower. One thread here leaves the cores to the networks. This also sets
        # the count that threads starting meanwhile take up; restoring it from the consumer
        # right away (rather than here, at the end) measured the 1.8x slowdown again.
        torch.set_num_threads(1)
        try:
            for item in batches:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # handed over and raised in the consumer
            put(_Raised(error))
        finally:
            torch.set_num_threads(threads)  # threads started later get the process's count

    thread = threading.Thread(target=produce, name="i2i-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()
