"""An exponential moving average of the generators' weights.

Averaging the generator over the last few thousand steps removes much of the step-to-step
jitter of adversarial training: smoother, more stable pictures at no training cost (Yazici et
al., "The Unusual Effectiveness of Averaging in GAN Training", ICLR 2019; Karras et al.). The
averaged copies are what samples, eval and the exported model use.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from i2i.models.checkpoint import EMA_SUFFIX


class GeneratorEMA:
    """Averaged copies of some networks, updated after every optimisation step.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so
    the average follows the fast early changes instead of remembering the random init.
    """

    def __init__(self, nets: Mapping[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.live = dict(nets)
        self.averaged = {
            name: copy.deepcopy(net).requires_grad_(False) for name, net in self.live.items()
        }
        self.updates = 0

    def networks(self) -> dict[str, nn.Module]:
        """The averaged networks under their checkpoint names (``G_AB_ema``, ...)."""
        return {f"{name}{EMA_SUFFIX}": net for name, net in self.averaged.items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        decay = self.current_decay()
        for name, live in self.live.items():
            averaged = self.averaged[name]
            for mine, theirs in zip(averaged.parameters(), live.parameters(), strict=True):
                mine.lerp_(theirs.detach(), 1.0 - decay)
            for mine, theirs in zip(averaged.buffers(), live.buffers(), strict=True):
                mine.copy_(theirs)  # norm statistics and fixed filters follow the live network
        self.updates += 1

    @contextmanager
    @torch.no_grad()
    def swapped_in(self) -> Iterator[None]:
        """Run the live networks with the averaged weights inside the block (samples, eval)."""
        pairs = [
            (mine, theirs)
            for name, live in self.live.items()
            for mine, theirs in zip(
                self.averaged[name].parameters(), live.parameters(), strict=True
            )
        ]
        saved = [theirs.detach().clone() for _, theirs in pairs]
        for mine, theirs in pairs:
            theirs.copy_(mine)
        try:
            yield
        finally:
            for (_, theirs), value in zip(pairs, saved, strict=True):
                theirs.copy_(value)
