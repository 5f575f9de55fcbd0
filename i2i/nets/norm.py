"""Normalisation layers by name, built exactly as the official CycleGAN/pix2pix code builds them."""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from i2i.core.checks import check_choice

NORMS = ("instance", "batch", "none")


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """A constructor taking the channel count, so network code can stay norm-agnostic.

    Instance norm has no affine parameters and no running statistics, and batch norm has both,
    as upstream: anything else would change the state-dict keys and break loading its checkpoints.
    """
    check_choice("norm", norm, NORMS)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return lambda channels: nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm gets a bias.

    Upstream gives one only for instance norm, so ``"none"`` gets no bias either. That is a quirk,
    but it is kept: a bias here would add state-dict keys that upstream checkpoints lack.
    """
    return norm == "instance"
