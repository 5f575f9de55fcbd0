"""FLOP counts and the machine's measured peak, shared by the benchmark scripts.

A speed figure says little on its own: 3 s/iter is fast on two CPU cores and slow on a GPU. So
every benchmark counts the floating-point operations of what it times (``torch.utils.
flop_counter``: matmuls and convolutions, forward and backward, which is where a GAN's time goes)
and divides the achieved rate by two peaks measured in the same process, on the same device and
dtype, a moment earlier:

* ``peak_matmul_gflops``: a large square matmul, the most a device does with dense maths;
* ``peak_conv_gflops``: a 3x3, 256-channel convolution at 64x64, the layer that dominates the
  ResNet generators, with the same memory format the trainer uses (channels_last on CUDA).

``of_peak_conv`` near 1 means the networks run as fast as this device runs their main layer;
the remaining gap to ``of_peak_matmul`` is the convolution kernels' own, not the project's.
Half-precision lines also carry ``of_fp32_peak_conv``: the same work against the fp32
convolution peak, which says what switching precision buys against the fp32 limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of one call of ``fn`` (matmuls and convolutions, fwd + bwd)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def task_step_flops(task: Any, make_step: Callable[[], Any], batch: Any) -> int:
    """FLOPs of one training step of ``task``, counted on its networks before ``torch.compile``
    (the counter cannot see inside compiled graphs; the maths, and so the count, is the same).

    ``make_step`` builds the step function while the plain networks are in place, for steps that
    capture the networks when they are made.
    """
    prepared = {name: getattr(task, name) for name in task.nets}
    for name, net in task.nets.items():
        setattr(task, name, net)
    try:
        return count_flops(lambda: make_step()(batch))
    finally:
        for name, net in prepared.items():
            setattr(task, name, net)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(fn: Callable[[], Any], device: torch.device, repeats: int, rounds: int) -> float:
    """Seconds per call: the best of ``rounds`` timed blocks of ``repeats`` calls, after one
    untimed call; the best block is the one least disturbed by other work on the machine."""
    fn()
    synchronize(device)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        synchronize(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def measure_peak(device: torch.device | str, precision: str, quick: bool = False) -> dict[str, Any]:
    """GFLOP/s of a matmul and of a ResNet-block convolution on ``device`` in ``precision``.

    Sizes are large enough to reach the device's plateau (a 4096 or 8192 matmul on CUDA,
    1024 on the CPU) and small enough to take about a second; ``quick`` shrinks them for
    smoke tests, where the figures only need to exist.
    """
    device = torch.device(device)
    dtype = DTYPES[precision]
    cuda = device.type == "cuda"
    if quick:
        n, batch, channels, side, repeats, rounds = 256, 1, 32, 32, 2, 2
    elif cuda:
        n, batch, channels, side, repeats, rounds = 8192, 32, 256, 64, 10, 3
    else:
        n, batch, channels, side, repeats, rounds = 1024, 1, 256, 64, 2, 3
    generator = torch.Generator(device=device).manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device).to(dtype)

    a, b = rand(n, n), rand(n, n)
    x, w = rand(batch, channels, side, side), rand(channels, channels, 3, 3)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        matmul_s = best_seconds(lambda: a @ b, device, repeats, rounds)
        conv_flops = count_flops(lambda: F.conv2d(x, w, padding=1))

        def conv_gflops(x: torch.Tensor, w: torch.Tensor) -> float:
            seconds = best_seconds(lambda: F.conv2d(x, w, padding=1), device, repeats, rounds)
            return round(conv_flops / seconds / 1e9, 1)

        peak = {
            "peak_precision": precision,
            "peak_matmul_gflops": round(2 * n**3 / matmul_s / 1e9, 1),
            "peak_conv_gflops": conv_gflops(x, w),
        }
        if dtype != torch.float32:
            peak["peak_conv_gflops_fp32"] = conv_gflops(x.float(), w.float())
    return peak


def rate_fields(
    flops_per_iter: int, s_per_iter: float, peak: dict[str, Any], per: str = "iter"
) -> dict[str, Any]:
    """The achieved FLOP rate of a timed loop and its fractions of the measured peaks; ``per``
    names the unit of work in the FLOP field (``gflop_per_iter``, ``gflop_per_image``)."""
    achieved = flops_per_iter / s_per_iter / 1e9
    return {
        f"gflop_per_{per}": round(flops_per_iter / 1e9, 3),
        "gflops": round(achieved, 2),
        **peak,
        "of_peak_matmul": round(achieved / peak["peak_matmul_gflops"], 3),
        "of_peak_conv": round(achieved / peak["peak_conv_gflops"], 3),
        **(
            {"of_fp32_peak_conv": round(achieved / peak["peak_conv_gflops_fp32"], 3)}
            if "peak_conv_gflops_fp32" in peak
            else {}
        ),
    }
