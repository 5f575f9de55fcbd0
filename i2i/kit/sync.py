"""Host reads of tensor values, recorded: each one makes the host wait for the device.

A training step on a GPU runs asynchronously only while nothing reads a tensor's value back to
the host (``loss.item()``, ``float(x)``, ``if x > 0:``, printing a tensor...). The trainer reads
the losses every ``--log-every`` steps, outside the step; inside it, such a read stalls the GPU
and stops CUDA graphs from helping. ``recorded_host_reads`` finds them on any device, the CPU
included, so a test on a machine without a GPU proves a step free of them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

# Tensor methods that read values to the host. ``.to("cpu")`` is one too, but on a CPU it cannot
# be told from an ordinary copy, so it is left to a test on a device.
HOST_READS = (
    "item",
    "tolist",
    "numpy",
    "cpu",
    "__bool__",
    "__int__",
    "__float__",
    "__complex__",
    "__index__",
    "__array__",
    "__format__",
    "__repr__",
)

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep


@contextmanager
def recorded_host_reads() -> Iterator[list[str]]:
    """Within the block, each host read by code outside torch is recorded (and still done) as
    ``"Tensor.item at path:line"`` in the list the block receives.

    Reads inside torch itself are left out: its optimizers read their CPU step counters, which
    is no device sync, and a CPU-only test could not tell those from device reads.
    """
    found: list[str] = []
    originals = {name: torch.Tensor.__dict__.get(name) for name in HOST_READS}

    def recording(name: str) -> Any:
        method = getattr(torch.Tensor, name)

        def read(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1)
            if not caller.f_code.co_filename.startswith(_TORCH_DIR):
                found.append(f"Tensor.{name} at {caller.f_code.co_filename}:{caller.f_lineno}")
            return method(self, *args, **kwargs)

        return read

    for name in HOST_READS:
        setattr(torch.Tensor, name, recording(name))
    try:
        yield found
    finally:
        for name, original in originals.items():
            if original is None:
                delattr(torch.Tensor, name)  # it was inherited from torch's C base class
            else:
                setattr(torch.Tensor, name, original)
