"""Where and how the networks run: device, distributed ranks, precision, compile, channels_last.

The trainer's implementation of the kit's ``Runtime`` (``i2i.kit.runtime``). Tasks never touch
torch.distributed, autocast or torch.compile; the kit asks the runtime, so the same task code
runs on one CPU, one GPU, or many GPUs under torchrun.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from i2i.core.device import autocast, check_precision, resolve_device, usable_precision
from i2i.core.errors import I2IError, one_line
from i2i.train.ema import GeneratorEMA


class Runtime:
    """Device, rank and numeric settings shared by the trainer and the task.

    ``compile`` runs the networks through torch.compile; ``graphs`` (default: with ``compile``
    on one CUDA device) also captures their passes as CUDA graphs (``mode="reduce-overhead"``),
    so that a step costs a few graph launches instead of thousands of kernel launches.
    """

    def __init__(
        self,
        device: str | None = "auto",
        precision: str = "fp32",
        compile: bool = False,
        graphs: bool | None = None,
    ) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.distributed = self.world_size > 1
        self.device = resolve_device(device)
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        if self.distributed and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
        # Stopping is agreed every step over the CPU (gloo), without a wait on the device: a
        # signal must stop every rank well within torchrun's 30 s before it kills them.
        self._stop_group = _gloo_group() if self.distributed else None
        self._stop_vote: tuple[Any, torch.Tensor] | None = None
        self.precision = usable_precision(self.device, precision)
        self.dtype = check_precision(self.precision)
        self.compile = compile
        cuda = self.device.type == "cuda"
        if graphs is None:
            # DDP's gradient all-reduce runs between the graphs: that pairing waits for a test
            # on devices, so it compiles without them.
            graphs = cuda and not self.distributed
        self.graphs = compile and graphs
        self.channels_last = cuda
        self.fused_optimizers = cuda
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        # The moving averages of the generators, updated at the end of every step (--ema-decay).
        self.ema: GeneratorEMA | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def prepare(self, net: nn.Module, *, distributed: bool = True) -> nn.Module:
        """Move a network to the device and wrap it for DDP / compile; returns what to call."""
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        if distributed and self.distributed and any(p.requires_grad for p in net.parameters()):
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        if self.compile:
            net = torch.compile(net, mode="reduce-overhead" if self.graphs else None)
        return net

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return autocast(self.device, self.precision)

    def end_step(self) -> None:
        if self.ema is not None:
            self.ema.update()
        if self.graphs:
            # The next step's graphs may overwrite this step's outputs (the losses it returned
            # were computed outside the graphs; the image pool keeps copies).
            torch.compiler.cudagraph_mark_step_begin()

    def agreed_stop(self, asked: bool) -> bool:
        """Whether every rank stops after this step: one process stops when asked; ranks
        stop together one step after any rank was asked. Each step sends this rank's vote and
        reads the previous step's result, which has long arrived, so no step waits."""
        if not self.distributed:
            return asked
        agreed = False
        if self._stop_vote is not None:
            work, votes = self._stop_vote
            work.wait()
            agreed = bool(votes.item() > 0)
        votes = torch.tensor([float(asked)])
        work = dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self._stop_group, async_op=True)
        self._stop_vote = (work, votes)
        return agreed

    def mean_across_ranks(self, t: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return t
        t = t.to(self._collective_device, torch.float64)
        dist.all_reduce(t)
        return t / self.world_size

    @property
    def _collective_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self._stop_vote is not None:  # the last step's vote, which every rank sent
            self._stop_vote[0].wait()
            self._stop_vote = None
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _gloo_group() -> Any:
    """A gloo group over the job's processes, which an NCCL job did not need before: where
    gloo cannot connect the machines (it picked an interface they do not share), say how to
    choose one."""
    try:
        return dist.new_group(backend="gloo")
    except RuntimeError as error:
        raise I2IError(
            f"the processes cannot connect over gloo, which they use to agree on stopping "
            f"({one_line(error, 160)}); set GLOO_SOCKET_IFNAME to the network interface the "
            f"machines share (as NCCL_SOCKET_IFNAME)"
        ) from None
