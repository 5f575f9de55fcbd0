"""The training step under ``--compile``: what was compiled and captured, and when it was not.

Each network is compiled on its own (``Runtime.prepare``); on one CUDA device its forward and
backward passes are also captured as CUDA graphs (``mode="reduce-overhead"``), and Adam runs
fused, so each pass costs one graph launch instead of a kernel launch per operation. The step's
own glue (losses, the image pool, optimizer steps) runs as it is between the graphs, and
``Runtime.end_step`` tells the graphs where a step ends.

CUDA graphs replay what they recorded, so the step must not read tensor values on the host: on
the device, the first step runs eagerly with those reads recorded, and a task that has any
trains with the eager step, saying where it read. Warm-up (the steps that compiled) is reported
once, and so is every later recompilation, which costs the same again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch._dynamo.utils import counters

from i2i.core.errors import first_of
from i2i.kit.sync import recorded_host_reads
from i2i.kit.task import Batch, Task
from i2i.train.runtime import Runtime


def compiled_graphs() -> int:
    """Graphs compiled so far in this process (each compilation and recompilation adds one)."""
    return counters["stats"]["unique_graphs"]


class CompiledStep:
    """``task.train_step`` with compiled networks, reporting through ``say``."""

    def __init__(self, task: Task, runtime: Runtime, say: Callable[[str], None]) -> None:
        self.task, self.runtime, self.say = task, runtime, say
        self.probed = not runtime.graphs  # host reads matter only to graphs
        self.eager = False
        self.warm_start: float | None = None
        self.warm = False
        self.shapes: set[tuple[int, ...]] = set()
        self.counted = compiled_graphs(), counters["inductor"]["cudagraph_skips"]
        if runtime.device.type == "cuda" and runtime.distributed:
            say(
                "warning: --compile under torchrun compiles without CUDA graphs (DDP's all-reduce "
                "between graphs waits for a test on devices)"
            )

    def __call__(self, batch: Batch) -> Batch:
        if not self.probed:
            return self._probe(batch)
        if self.eager:
            with torch.compiler.set_stance("force_eager"):
                return self.task.train_step(batch)
        before, start = compiled_graphs(), time.perf_counter()
        self.warm_start = self.warm_start or start
        losses = self.task.train_step(batch)
        shape = tuple(batch["A"].shape)
        self._report(compiled_graphs() - before, start, shape)
        self.shapes.add(shape)
        return losses

    def _probe(self, batch: Batch) -> Batch:
        """The first step, eager, with the host reads of the task's step recorded."""
        self.probed = True
        with recorded_host_reads() as reads, torch.compiler.set_stance("force_eager"):
            losses = self.task.train_step(batch)
        if reads:
            self.eager = True
            self.say(
                f"warning: the step of {self.task.name} reads tensor values on the host "
                f"({first_of(reads)}), which CUDA graphs cannot replay; training with the eager "
                f"step"
            )
        return losses

    def _report(self, new_graphs: int, start: float, shape: tuple[int, ...]) -> None:
        if not self.warm:
            if new_graphs == 0 and self.warm_start is not None:
                self.warm = True
                graphs = compiled_graphs() - self.counted[0]
                self.say(
                    f"compiled the step: {start - self.warm_start:.1f} s of warm-up, "
                    f"{graphs} graph(s)"
                )
                skipped = counters["inductor"]["cudagraph_skips"] - self.counted[1]
                if self.runtime.graphs and skipped:
                    self.say(
                        f"warning: CUDA graphs could not capture {skipped} of the compiled "
                        f"graphs, which run without them (TORCH_LOGS=perf_hints says why)"
                    )
            return
        if new_graphs:
            why = (
                f"a batch of a new shape, {list(shape)}"
                if shape not in self.shapes
                else "a Python value the networks read changed (TORCH_LOGS=recompiles says which)"
            )
            self.say(
                f"warning: --compile compiled the step again ({new_graphs} new graph(s)) for "
                f"{why}; each new shape or value costs a warm-up"
            )
