"""The mean-shift term at a run's first step, written out from its docstring
(``i2i/kit/shift.py``) for the tasks' objective tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def first_step_shift_loss(
    real: torch.Tensor, fake: torch.Tensor, set_A: torch.Tensor, set_B: torch.Tensor, source: str
) -> torch.Tensor:
    """The unweighted term of the generator that made ``fake`` from ``real`` (domain
    ``source``), when ``set_A`` and ``set_B`` are all the images seen so far, each distinct."""

    def cells(x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x, 4)

    # The sets' difference, shrunk by its noise (the standard error of the difference).
    a, b = cells(set_A), cells(set_B)
    gap = b.mean(0) - a.mean(0)
    noise = a.var(0, unbiased=False) / len(a) + b.var(0, unbiased=False) / len(b)
    wanted = gap * (1 - noise / gap**2).clamp(min=0) * (1 if source == "A" else -1)
    shift = (cells(fake) - cells(real)).mean(0)
    # The average holds 2% of this shift after one step, and all of its gradient.
    averaged = 0.02 * shift.detach() + (shift - shift.detach())
    return ((averaged - wanted) ** 2).mean()
