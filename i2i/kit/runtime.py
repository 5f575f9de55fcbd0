"""What a task sees of the run it is part of: the device, the ranks, the precision, and where its
networks go.

The kit and the tasks see only this interface; the trainer implements it
(``i2i.train.runtime.Runtime``), so nothing under ``i2i.kit`` imports the trainer, and a test or a
third party's runner can supply its own.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class Runtime(Protocol):
    """Where and how a task's networks run, as the kit uses it."""

    device: torch.device
    rank: int
    world_size: int
    # The fp16 loss scale (disabled at other precisions); the kit scales, steps and updates it.
    scaler: torch.amp.GradScaler
    # Whether Adam runs fused (one kernel per step, no host sync under fp16 scaling).
    fused_optimizers: bool

    def prepare(self, net: nn.Module, *, distributed: bool = True) -> nn.Module:
        """``net`` on the device and wrapped to be called in training (DDP, torch.compile).

        ``distributed=False`` leaves DDP out: for a network called with its parameters frozen
        (a critic judging the generator's output), which DDP would wait on for gradients.
        """
        ...

    def autocast(self) -> AbstractContextManager[Any]:
        """The run's mixed precision for the networks (a no-op at fp32)."""
        ...

    def end_step(self) -> None:
        """Once per training step, after every optimizer stepped (the trainer updates the moving
        averages of the generators here)."""
        ...
