"""Wall time and peak memory of a command run as a child process, its own children included.

Two memory figures, because a program's workers share most of their pages with it:

* ``max_rss_mb``: the largest resident set of the child or of any descendant it waited for, as
  the kernel reports it on ``os.wait4`` (``ru_maxrss``); one process, never a sum.
* ``peak_pss_mb`` (Linux): the largest sum, over the child and every descendant alive at that
  moment, of their proportional set sizes (``/proc/PID/smaps_rollup``), sampled every
  ``interval`` seconds: a page shared by n processes counts 1/n in each, so the sum is what the
  whole tree holds, data-loader workers included. ``None`` where ``/proc`` has no such file.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def _pss_kb(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return None


class _TreePss(threading.Thread):
    """Samples the summed PSS of a process tree until ``stop``; ``peak_kb`` is the largest."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb: int | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            sizes = [_pss_kb(pid) for pid in _tree(self.pid)]
            known = [size for size in sizes if size is not None]
            if known:
                self.peak_kb = max(self.peak_kb or 0, sum(known))
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def run_measured(
    cmd: Sequence[str],
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    interval: float = 0.2,
) -> dict[str, Any]:
    """Run ``cmd`` (output to ``log``); its exit code, wall seconds and the memory figures."""
    with open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = _TreePss(proc.pid, interval)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "max_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "peak_pss_mb": None if sampler.peak_kb is None else sampler.peak_kb / 1024,
    }
