"""Which process of a ``torchrun`` job this is, and its share of a list of work.

torchrun (one node or many) starts one process per GPU and tells each its place through the
environment: ``RANK`` of ``WORLD_SIZE`` processes in all, ``LOCAL_RANK`` on its own machine.
Work that needs no communication (``i2i apply`` over a folder) is split by these alone: every
process lists the same inputs in the same order and takes every ``WORLD_SIZE``-th of them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from i2i.core.errors import InvalidArgumentError

T = TypeVar("T")

# How long a process that finished its share waits for the slowest one in ``sum_over_ranks``:
# shards of videos can differ by hours, and a process that dies closes its connections, so the
# others hear of it at once instead of waiting this long.
_WAIT_FOR_OTHERS = timedelta(days=7)


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world_size`` processes, and its ``local_rank`` on its
    machine (its GPU there)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise InvalidArgumentError(
                f"rank {self.rank} of {self.world_size} processes (local rank "
                f"{self.local_rank}) is impossible; check RANK, WORLD_SIZE and LOCAL_RANK"
            )

    @classmethod
    def from_env(cls) -> Ranks:
        """The ranks torchrun set, or the one process of a plain run."""
        try:
            return cls(
                rank=int(os.environ.get("RANK", "0")),
                world_size=int(os.environ.get("WORLD_SIZE", "1")),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            )
        except ValueError as error:
            raise InvalidArgumentError(
                f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers ({error})"
            ) from None

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def prefix(self) -> str:
        """What starts this process's lines when there are several: ``"rank 1/4: "``."""
        return f"rank {self.rank}/{self.world_size}: " if self.distributed else ""

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share: every ``world_size``-th item from its ``rank``.

        Interleaving, not cutting into blocks, so shards differ by at most one item and sorted
        inputs of mixed sizes (a folder of small images, then one of large ones) spread evenly.
        """
        return list(items[self.rank :: self.world_size])


@contextlib.contextmanager
def joined(ranks: Ranks) -> Iterator[None]:
    """The job's processes connected (gloo) for the length of the block, from its start: a
    process that dies later closes its connections, so the others hear of it at once. Joined
    only at the end, one that had died was waited for as long as a slow one (7 days)."""
    import torch.distributed as dist

    if not ranks.distributed or dist.is_initialized():
        yield
        return
    _join(ranks)
    try:
        yield
    except KeyboardInterrupt:
        raise  # left as it is: a destroy would wait for a collective the others never reach
    except BaseException:
        dist.destroy_process_group()
        raise
    dist.destroy_process_group()


def _join(ranks: Ranks) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", rank=ranks.rank, world_size=ranks.world_size, timeout=_WAIT_FOR_OTHERS
    )


def sum_over_ranks(ranks: Ranks, counts: Sequence[int]) -> list[int]:
    """``counts`` summed over all processes, waiting for the slowest (gloo, on the CPU).

    Also what keeps a process that found a bad input from exiting with an error while the
    others still work: torchrun stops the whole job when one process fails. The wait is
    polled, so that Ctrl-C stops it (gloo's own wait cannot be interrupted).
    """
    if not ranks.distributed:
        return list(counts)
    import torch
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        _join(ranks)
    try:
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"  # a caller's own group
        total = torch.tensor(list(counts), dtype=torch.int64, device=device)
        work = dist.all_reduce(total, async_op=True)
        try:
            while not work.is_completed():
                time.sleep(0.05)
        except KeyboardInterrupt:
            owned = False  # a destroy would wait for the others to reach the collective
            raise
        work.wait()  # raises what the collective met (a process that died)
        return total.tolist()
    finally:
        if owned:
            dist.destroy_process_group()


__all__ = ["Ranks", "joined", "sum_over_ranks"]
