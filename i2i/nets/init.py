"""Weight initialisation exactly as in the official CycleGAN/pix2pix code.

GAN training from scratch is sensitive to the starting scale of the weights; matching upstream
keeps results comparable with the papers and with models trained by the reference code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from i2i.core.checks import check_choice

_WEIGHT_INITS: dict[str, Callable[[torch.Tensor, float], object]] = {
    "normal": lambda weight, gain: nn.init.normal_(weight, 0.0, gain),
    "xavier": lambda weight, gain: nn.init.xavier_normal_(weight, gain=gain),
    # Upstream ignores the gain for Kaiming; so does this, to draw the same distribution.
    "kaiming": lambda weight, gain: nn.init.kaiming_normal_(weight, a=0, mode="fan_in"),
    "orthogonal": lambda weight, gain: nn.init.orthogonal_(weight, gain=gain),
}
INITS = tuple(_WEIGHT_INITS)

Net = TypeVar("Net", bound=nn.Module)


def init_weights(net: Net, init: str = "normal", gain: float = 0.02) -> Net:
    """Initialise ``net`` in place and return it.

    Layers are picked by class name, as upstream does, so conv and linear layers of any class
    (a plugin's own included) get the scheme; batch-norm scales start near 1 so that the network
    begins close to an identity normalisation.
    """
    check_choice("init", init, INITS)
    init_weight = _WEIGHT_INITS[init]

    def init_module(module: nn.Module) -> None:
        name = type(module).__name__
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            return
        if "Conv" in name or "Linear" in name:
            init_weight(weight, gain)
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                nn.init.zeros_(bias)
        elif "BatchNorm2d" in name:
            nn.init.normal_(weight, 1.0, gain)
            nn.init.zeros_(module.bias)

    net.apply(init_module)
    return net
