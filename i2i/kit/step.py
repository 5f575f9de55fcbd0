"""The optimisation step of the task kit: a task says what to optimise, the kit does the rest.

A task's ``step`` holds its maths; each update is a block::

    with self.optimizing("G") as g:  # the other optimizers' networks frozen, G's grads zeroed
        fake = self.G(real)  # the maths, under the run's precision
        g.minimize(self.fool("D", fake) + l1)  # backward (fp16: scaled), in full precision
    # leaving the block: G's optimizer steps, the frozen networks thaw

``minimize`` may be called several times in one block (CycleGAN frees each cycle's activations
before computing the next): the gradients add up and each optimizer steps once, on leaving. A
block may name several optimizers (CUT's generator and its patch head). Networks outside every
optimizer (a fixed feature extractor) are never touched. ``Task.train_step`` runs a task's
``step`` under autocast and ends it with the once-per-step bookkeeping: the fp16 loss scale's
update and the moving averages of the generators. Nothing here reads a tensor's value, so the
step never waits for the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

import torch

from i2i.core.errors import I2IError
from i2i.kit.runtime import Runtime


class Optimizing:
    """One update of some of a task's parameters, as a ``with`` block (``Task.optimizing``)."""

    def __init__(
        self,
        runtime: Runtime,
        names: Sequence[str],
        optimizers: Sequence[torch.optim.Optimizer],
        frozen: Sequence[torch.nn.Parameter],
    ) -> None:
        self._runtime = runtime
        self._names = names
        self._optimizers = optimizers
        self._frozen = frozen
        self._minimized = False
        self._were_trained: list[bool] = []

    def __enter__(self) -> Optimizing:
        self._were_trained = [p.requires_grad for p in self._frozen]
        for p in self._frozen:
            p.requires_grad_(False)  # no gradients computed for the critics
        for optimizer in self._optimizers:
            optimizer.zero_grad(set_to_none=True)
        return self

    def minimize(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` into the parameters of the block's optimizers."""
        # Backward outside autocast: it runs each op in the dtype its forward used.
        with torch.autocast(self._runtime.device.type, enabled=False):
            self._runtime.scaler.scale(loss).backward()
        self._minimized = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                if not self._minimized:
                    raise I2IError(
                        f"the block optimizing {', '.join(self._names)} minimized no loss; "
                        f"call .minimize(loss) inside it"
                    )
                for optimizer in self._optimizers:
                    self._runtime.scaler.step(optimizer)
        finally:
            for p, trained in zip(self._frozen, self._were_trained, strict=True):
                p.requires_grad_(trained)
