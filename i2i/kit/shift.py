"""The mean shift a translation makes, held to the shift between the two training sets.

A generator that maps A's images onto B's distribution moves the average of its outputs onto
B's average: in each region of the picture, the mean colour of G(a) over A differs from A's mean
by as much as B's mean does. The critic asks for this only loosely. On the known-answer flaws,
translations drifted in brightness where the truth keeps it (``noise``: 0.037 darker), and
half-applied looks that darken corners or skies (benchmarks/README.md, "The mean shift").
This term holds the first moment to the sets' own.

Both averages are made quiet enough at one image a step. The sets' difference does not change
during a run, so it is averaged over every image seen so far. The generator's shift,
``mean(G(a)) - mean(a)`` per cell, changes as the generator learns, so it is an exponential
average over about 50 steps. The image's content cancels in that difference, so it is far
quieter than either mean alone. The loss is the squared gap between the two. Its gradient
reaches the generator through the current images' shift only, so every image is moved by the
population's gap, and none is pulled toward the average picture.

Two sets of a few hundred photos differ in their means by chance: at 300 a set, by about 0.016
of the range per cell, as much as a subtle look changes them. Asked for that, the term moved
every look's outputs by the same chance error of one split ("The mean shift" in
benchmarks/README.md). So each cell asks only for what the sets can tell: its difference is
shrunk towards no shift by its own noise, d * (1 - se^2 / d^2) (the positive-part James-Stein
factor), where se^2 is the variance of the cell's mean over each set's images divided by how
many *different* images the set has. A cell whose difference is within its noise asks the
generator to keep the mean (the drift is still taken away); a clear shift is asked for whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from i2i.kit.options import OptionGroup, option

GRID = 4
"""Cells per side: a vignette, a graduated sky or a warm corner has its own mean."""

DECAY = 0.98
"""Of the generators' average shift per step: it follows about the last 50 steps."""


def told_by_sets(gap: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What two sets tell of a difference ``gap`` between their means, whose chance error has
    variance ``noise`` (elementwise): ``gap`` shrunk towards zero by the positive-part
    James-Stein factor, ``1 - noise / gap^2``."""
    return gap * (1 - noise / gap.square().clamp(min=1e-12)).clamp(min=0)


@dataclass(frozen=True)
class MeanShiftOptions(OptionGroup):
    """The term's weight, for a task whose generator maps A onto B (CycleGAN, CUT, FastCUT,
    UNSB): subclass it in the task's own group, so that the flag means the same in each."""

    lambda_shift: float = option(
        0.0,
        "Weight of the mean-shift term: averaged over the run, the A->B generator (and "
        "CycleGAN's B->A) changes the mean colour of each region (4x4 grid) by as much as the "
        "two training sets differ there beyond chance.",
        minimum=0,
    )


class MeanShift:
    """The running averages of one pair of domains; all on the training device, read by no one
    on the host (the step stays free of synchronisation), and saved with every checkpoint."""

    def __init__(self, channels: int, device: torch.device, set_sizes: tuple[int, int]) -> None:
        """``set_sizes``: how many different images A and B have; a set seen twice over tells
        its mean no better than once."""
        cells = (channels, GRID, GRID)
        # Sums over every A image and every B image, in float64: a long run adds millions.
        self.set_sums = torch.zeros(2, *cells, device=device, dtype=torch.float64)
        self.set_squares = torch.zeros(2, *cells, device=device, dtype=torch.float64)
        self.seen = torch.zeros(2, 1, 1, 1, device=device, dtype=torch.float64)
        self.sizes = torch.tensor(set_sizes, dtype=torch.float64, device=device).view(2, 1, 1, 1)
        self.shifts = torch.zeros(2, *cells, device=device)  # G_AB's, G_BA's (averaged)
        self.wanted = torch.zeros(*cells, device=device)  # A to B: target(), once a step

    @staticmethod
    def cells(images: torch.Tensor) -> torch.Tensor:
        """Mean colour of each cell, one grid per image, in float32 under any precision."""
        return F.adaptive_avg_pool2d(images.float(), GRID)

    def observe(self, real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        """Add this step's real images to the sets' averages."""
        with torch.no_grad():
            for i, real in enumerate((real_A, real_B)):
                cells = self.cells(real).double()
                self.set_sums[i] += cells.sum(0)
                self.set_squares[i] += cells.square().sum(0)
                self.seen[i] += real.shape[0]
            self.wanted.copy_(self.target())

    def target(self) -> torch.Tensor:
        """The shift from A to B per cell that the sets tell: their difference, shrunk by its
        noise; zero before both sets have been observed."""
        seen = self.seen.clamp(min=1)
        means = self.set_sums / seen
        spread = (self.set_squares / seen - means.square()).clamp(min=0)  # over each set's images
        noise = (spread / torch.minimum(seen, self.sizes)).sum(0)  # of the difference, squared
        return (told_by_sets(means[1] - means[0], noise) * (self.seen.amin() > 0)).float()

    def loss(self, real: torch.Tensor, fake: torch.Tensor, source: str) -> torch.Tensor:
        """Squared gap between the averaged shift of the generator that made ``fake`` from
        ``real`` (domain ``source``: "A" or "B") and the sets' shift from ``source`` to the
        other domain; zero before both sets have been observed."""
        i = "AB".index(source)
        wanted = self.wanted if i == 0 else -self.wanted
        shift = (self.cells(fake) - self.cells(real).detach()).mean(0)
        with torch.no_grad():
            self.shifts[i].lerp_(shift, 1 - DECAY)
        averaged = self.shifts[i] + shift - shift.detach()  # its value, this step's gradient
        return F.mse_loss(averaged, wanted)

    def state_dict(self) -> dict[str, Any]:
        names = ("set_sums", "set_squares", "seen", "shifts")
        return {name: getattr(self, name).cpu() for name in names}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        for name, saved in state.items():
            getattr(self, name).copy_(saved.to(device))
        self.wanted.copy_(self.target())
