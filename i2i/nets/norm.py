"""Normalisation layers by name, built exactly as the official CycleGAN/pix2pix code builds them."""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from i2i.core.checks import check_choice

NORMS = ("instance", "batch", "layer", "none")


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """A constructor taking the channel count, so network code can stay norm-agnostic.

    Instance norm has no affine parameters and no running statistics, and batch norm has both,
    as upstream: anything else would change the state-dict keys and break loading its checkpoints.
    ``layer`` (not upstream) normalises each image over all its channels and positions at once
    (``GroupNorm`` with one group): unlike instance norm it keeps how the channels differ, so
    a critic still sees an image's colour balance and contrast, and unlike batch norm it does
    not depend on the batch.
    """
    check_choice("norm", norm, NORMS)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "layer":
        return functools.partial(nn.GroupNorm, 1)
    return lambda channels: nn.Identity()


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm gets a bias.

    Upstream gives one only for instance norm, so ``"none"`` gets no bias either. That is a quirk,
    but it is kept: a bias here would add state-dict keys that upstream checkpoints lack.
    """
    return norm == "instance"
