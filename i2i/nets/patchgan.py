"""PatchGAN discriminators: a conv stack that classifies each overlapping patch as real or fake.

Judging patches rather than whole images penalises structure only at the patch scale, which
needs fewer parameters and works on any image size. Module structure follows upstream's
``NLayerDiscriminator`` and ``PixelDiscriminator`` exactly, so its checkpoints load.
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from i2i.core.errors import InvalidArgumentError
from i2i.nets.init import init_weights
from i2i.nets.norm import conv_bias, norm_layer

Disc = TypeVar("Disc", bound=nn.Module)


def with_spectral_norm(net: Disc) -> Disc:
    """Put a spectral-norm parametrization on every conv of ``net`` (Miyato et al. 2018).

    Dividing each weight by its largest singular value keeps the discriminator roughly
    1-Lipschitz, which steadies GAN training. The weight is then stored as
    ``parametrizations.weight.original`` (plus the power-iteration vectors ``_u``/``_v``), so
    the state-dict keys differ from the official layout: that is why it is off by default.
    Applied after ``init_weights``, which writes the raw weights.
    """
    for conv in [m for m in net.modules() if isinstance(m, nn.Conv2d)]:
        _spectral_norm(conv)
    return net


class NLayerDiscriminator(nn.Module):
    """``n_layers`` stride-2 convs, one stride-1 conv and a 1-channel logit conv (all 4x4).

    The receptive field of each output logit is 16, 34, 70, 142, 286 px for n_layers 1 to 5.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise InvalidArgumentError(f"n_layers must be an integer >= 1; got {n_layers!r}")
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        # The first conv has no norm after it, and keeps its bias whatever the norm (upstream).
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 convs only: each logit sees one pixel, so only colour statistics are judged."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            make_norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _finish(net: Disc, init: str, init_gain: float, spectral_norm: bool) -> Disc:
    if not isinstance(spectral_norm, bool):
        raise InvalidArgumentError(f"spectral_norm must be true or false; got {spectral_norm!r}")
    net = init_weights(net, init, init_gain)
    return with_spectral_norm(net) if spectral_norm else net


def patchgan(
    in_channels: int = 3,
    ndf: int = 64,
    norm: str = "instance",
    init: str = "normal",
    init_gain: float = 0.02,
    spectral_norm: bool = False,
) -> NLayerDiscriminator:
    """70x70 PatchGAN discriminator: the CycleGAN and pix2pix default.

    Three stride-2 layers; for a 256x256 input it returns a 30x30 map of logits. Use
    ``in_channels`` = input + output channels for a conditional (pix2pix) discriminator.
    ``spectral_norm`` normalises every conv (see :func:`with_spectral_norm`).
    """
    return _finish(NLayerDiscriminator(in_channels, ndf, 3, norm), init, init_gain, spectral_norm)


def nlayer(
    in_channels: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    init: str = "normal",
    init_gain: float = 0.02,
    spectral_norm: bool = False,
) -> NLayerDiscriminator:
    """PatchGAN discriminator with n_layers stride-2 layers (receptive field 16/34/70/142/286 px).

    More layers judge larger structures; inputs must be large enough for the n_layers + 2
    4x4 convs to leave at least one logit. ``spectral_norm`` normalises every conv.
    """
    net = NLayerDiscriminator(in_channels, ndf, n_layers, norm)
    return _finish(net, init, init_gain, spectral_norm)


def pixel(
    in_channels: int = 3,
    ndf: int = 64,
    norm: str = "instance",
    init: str = "normal",
    init_gain: float = 0.02,
    spectral_norm: bool = False,
) -> PixelDiscriminator:
    """1x1 PixelGAN discriminator: judges colour per pixel, not spatial structure.

    Returns one logit per input pixel; useful where only colour realism should be enforced.
    ``spectral_norm`` normalises every conv.
    """
    return _finish(PixelDiscriminator(in_channels, ndf, norm), init, init_gain, spectral_norm)
