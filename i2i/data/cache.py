"""Decoded images kept in memory, so that after the first epoch nothing is decoded at all.

Worth it with in-process loading (``num_workers=0`` plus ``prefetch``): worker processes would
each keep a copy, and lose it when the loader is rebuilt.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Callable
from typing import Any

Decoded = Any  # a uint8 tensor, or a tuple of them for an aligned pair


def _nbytes(value: Decoded) -> int:
    tensors = value if isinstance(value, tuple) else (value,)
    return sum(t.numel() * t.element_size() for t in tensors)


class DecodedCache:
    """Decoded images kept in memory, up to ``max_bytes``; once full, later images are decoded
    each time as usual. Values are never modified (``collate`` stacks copies), so one decoded
    image can serve every epoch. Safe to use from the prefetch thread and the main thread."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._values: dict[Any, Decoded] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Any, decode: Callable[[], Decoded]) -> Decoded:
        """The value kept for ``key``, or ``decode()`` (kept when it fits; errors propagate)."""
        value = self._values.get(key)
        if value is not None:
            return value
        value = decode()
        size = _nbytes(value)
        with self._lock:
            if key not in self._values and self.bytes + size <= self.max_bytes:
                self._values[key] = value
                self.bytes += size
        return value


def default_cache_bytes() -> int:
    """How much memory decoded images may take in one training process: a quarter of what is
    available, shared among the processes torchrun starts on this machine, at most 4 GiB."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux: assume little
        available = 4 * 2**30
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(4 * 2**30, available // (4 * max(processes, 1)))


class KeepsDecoded(abc.ABC):
    """What the folder datasets share: an optional ``DecodedCache`` and the estimate that
    decides whether the whole dataset fits in it."""

    cache: DecodedCache | None = None

    @abc.abstractmethod
    def _images(self) -> int:
        """How many decoded images the whole dataset holds."""

    @abc.abstractmethod
    def _probe(self, count: int) -> list[Decoded]:
        """Decode the first ``count`` entries (kept in the cache when one is set); ``None``
        for unreadable ones."""

    def keep_decoded(self, max_bytes: int, probe: int = 8) -> bool:
        """Keep every decoded image in memory if the dataset fits in ``max_bytes``.

        The size is measured, not guessed: the first ``probe`` entries are decoded and their
        mean size scaled to the whole dataset (images of one folder are usually alike). Returns
        whether the dataset is kept; when it is not, nothing changes.
        """
        self.cache = DecodedCache(max_bytes)
        decoded = [value for value in self._probe(probe) if value is not None]
        images = sum(len(v) if isinstance(v, tuple) else 1 for v in decoded)
        per_image = sum(_nbytes(v) for v in decoded) / max(images, 1)
        if per_image * self._images() > max_bytes:
            self.cache = None
        return self.cache is not None


def keep_decoded(dataset: Any, max_bytes: int | None = None) -> bool:
    """Keep ``dataset``'s decoded images in memory when they all fit (``default_cache_bytes()``
    unless given); returns whether it does. Datasets other than the built-in folder datasets
    are left alone (``False``).

    Worth it with in-process loading (``num_workers=0`` plus ``prefetch``): worker processes
    would each keep a copy, and lose it when the loader is rebuilt.
    """
    if not isinstance(dataset, KeepsDecoded):
        return False
    return dataset.keep_decoded(default_cache_bytes() if max_bytes is None else max_bytes)
