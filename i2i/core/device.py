"""Where networks run: device names, precisions, and the plain module under wrappers.

Shared by training and inference, so that loading a model never imports the trainer.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

import torch
from torch import nn

from i2i.core.errors import I2IWarning, InvalidArgumentError
from i2i.core.ranks import Ranks

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` means CUDA when present, else CPU; a named device that is absent is a user error.

    Under torchrun, ``auto`` and ``cuda`` mean this process's own GPU, ``cuda:LOCAL_RANK``, so
    the processes on a machine share its GPUs instead of all crowding onto the first.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise InvalidArgumentError(
            f"unknown device {name!r}; use auto, cpu, cuda or cuda:N"
        ) from error
    if device.type == "meta":
        raise InvalidArgumentError(
            "device 'meta' holds shapes only and computes nothing; use auto, cpu, cuda or cuda:N"
        )
    if device.type != "cpu" and not _available(device.type):
        kind = "CUDA" if device.type == "cuda" else device.type
        raise InvalidArgumentError(
            f"device {name!r} asked for, but {kind} is not available here; use auto or cpu"
        )
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", Ranks.from_env().local_rank)
    return device


def _available(kind: str) -> bool:
    """Whether this torch build and machine have a device of ``kind`` (cuda, mps, xpu, ...):
    torch names more device types than any one machine has, and using an absent one fails deep
    inside the first network call."""
    backend = getattr(torch.backends, kind, None) if kind == "mps" else getattr(torch, kind, None)
    is_available = getattr(backend, "is_available", None)
    return bool(is_available()) if callable(is_available) else False


def check_precision(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise InvalidArgumentError(
            f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}"
        )
    return PRECISIONS[precision]


def native_half(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``device`` computes in ``dtype`` with its own instructions.

    GPUs do. CPUs differ: with AVX512-BF16 or AMX, oneDNN runs bf16 convolutions at about twice
    the fp32 rate; without them, bf16 and fp16 are emulated and slower than fp32.
    """
    if device.type != "cpu" or dtype == torch.float32:
        return True
    cpu = torch.cpu
    if dtype == torch.bfloat16:
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    else:
        probes = ("_is_amx_fp16_supported",)
    return any(getattr(cpu, probe, lambda: False)() for probe in probes)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for the networks on ``device``; fp32 runs as written."""
    dtype = check_precision(precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def usable_precision(device: torch.device, precision: str) -> str:
    """``precision``, or fp32 with a warning where this CPU only emulates it.

    Emulated half precision is slower than fp32, not faster (fp16 on a CPU without AMX-FP16 ran
    resnet9 40x slower), and nobody asks for a half precision to be slower.
    """
    dtype = check_precision(precision)
    if native_half(device, dtype):
        return precision
    instructions = "AVX512-BF16 or AMX" if dtype == torch.bfloat16 else "AMX-FP16"
    warnings.warn(
        f"this CPU has no {precision} instructions ({instructions}), where {precision} runs "
        "slower than fp32; running fp32 instead",
        I2IWarning,
        stacklevel=3,
    )
    return "fp32"


def unwrap(net: Any) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers (for saving, sampling, features)."""
    while True:
        if hasattr(net, "_orig_mod"):
            net = net._orig_mod
        elif isinstance(net, nn.parallel.DistributedDataParallel):
            net = net.module
        else:
            return net
