"""The learning-rate schedule: a pure function of the epoch and step, so a resumed run continues
exactly where it stopped."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def lr_factor(epoch: int, epochs: int, epochs_decay: int, step: int = 0, warmup: int = 0) -> float:
    """The official CycleGAN "linear" policy: constant, then linear decay towards zero; with
    ``warmup`` steps, a linear ramp from ``1/warmup`` over the first steps."""
    decay = 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return decay * min(1.0, (step + 1) / warmup) if warmup else decay


def remember_initial_lr(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    """Keep each group's configured rate as ``initial_lr``, which the factor scales."""
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])


def set_learning_rate(optimizers: Iterable[torch.optim.Optimizer], factor: float) -> float:
    """Scale every group's initial rate by ``factor``; returns the last rate set (for the log)."""
    lr = 0.0
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["lr"] = lr = group["initial_lr"] * factor
    return lr
