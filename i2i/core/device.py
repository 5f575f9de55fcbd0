"""Where networks run: device names, precisions, and the plain module under wrappers.

Shared by training and inference, so that loading a model never imports the trainer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from i2i.core.errors import InvalidArgumentError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; a named device that is absent is a user error."""
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise InvalidArgumentError(
            f"unknown device {name!r}; use auto, cpu, cuda or cuda:N"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError(f"device {name!r} asked for, but CUDA is not available here")
    return device


def check_precision(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise InvalidArgumentError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}"
        )
    return PRECISIONS[precision]


def unwrap(net: Any) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers (for saving, sampling, features)."""
    while True:
        if hasattr(net, "_orig_mod"):
            net = net._orig_mod
        elif isinstance(net, nn.parallel.DistributedDataParallel):
            net = net.module
        else:
            return net
