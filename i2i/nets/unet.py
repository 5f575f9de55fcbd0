"""The U-Net generator of pix2pix, built recursively from skip-connection blocks.

Module structure follows upstream's ``UnetGenerator`` and ``UnetSkipConnectionBlock`` exactly
(nested ``model`` Sequentials), so its checkpoints load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from i2i.core.checks import check_input_size
from i2i.core.errors import InvalidArgumentError
from i2i.nets.init import init_weights
from i2i.nets.norm import conv_bias, norm_layer


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: downsample, run ``submodule`` (the deeper levels), upsample, concatenate.

    The innermost level (no submodule) has no norm after its downsampling conv: its output is
    1x1 at the smallest allowed input, and normalising a 1x1 map over space (instance norm, or
    batch norm at batch size 1) would zero it.
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        submodule: nn.Module | None,
        norm: str,
        dropout: bool = False,
        outermost: bool = False,
        in_channels: int | None = None,
    ):
        super().__init__()
        self.outermost = outermost
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        in_channels = outer_channels if in_channels is None else in_channels
        # The outermost conv gets the norm's bias rule too, though no norm follows it (upstream).
        down = nn.Conv2d(in_channels, inner_channels, 4, stride=2, padding=1, bias=bias)
        # In place on purpose: the tensor concatenated in forward() is then the activated one,
        # which is what upstream computes and what its trained weights expect.
        down_act = nn.LeakyReLU(0.2, True)
        up_act = nn.ReLU(True)
        if outermost:
            up = nn.ConvTranspose2d(inner_channels * 2, outer_channels, 4, stride=2, padding=1)
            layers = [down, submodule, up_act, up, nn.Tanh()]
        elif submodule is None:
            up = nn.ConvTranspose2d(
                inner_channels, outer_channels, 4, stride=2, padding=1, bias=bias
            )
            layers = [down_act, down, up_act, up, make_norm(outer_channels)]
        else:
            up = nn.ConvTranspose2d(
                inner_channels * 2, outer_channels, 4, stride=2, padding=1, bias=bias
            )
            layers = [down_act, down, make_norm(inner_channels), submodule]
            layers += [up_act, up, make_norm(outer_channels)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """A U-Net with ``num_downs`` stride-2 levels; the bottleneck is 1x1 at 2**num_downs px.

    Each level halves the size and the skip connections need the halves to be exact, so height
    and width must be multiples of 2**num_downs. Dropout, when on, sits only in the
    ``num_downs - 5`` ngf*8 levels between the bottleneck and the ngf*4 level, as upstream.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = True,
    ):
        super().__init__()
        if num_downs < 5:
            raise InvalidArgumentError(f"num_downs must be an integer >= 5; got {num_downs!r}")
        self.arch = f"unet{2**num_downs}"
        self.size_multiple = 2**num_downs

        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, None, norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, block, norm, dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, block, norm)
        self.model = UnetSkipConnectionBlock(
            out_channels, ngf, block, norm, outermost=True, in_channels=in_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.arch, self.size_multiple, self.size_multiple)
        return self.model(x)


def unet256(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = True,
    init: str = "normal",
    init_gain: float = 0.02,
) -> UnetGenerator:
    """U-Net generator, 8 levels: pix2pix's default for 256x256 images.

    Takes height and width that are multiples of 256.
    """
    net = UnetGenerator(in_channels, out_channels, 8, ngf, norm, dropout)
    return init_weights(net, init, init_gain)


def unet128(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "batch",
    dropout: bool = True,
    init: str = "normal",
    init_gain: float = 0.02,
) -> UnetGenerator:
    """U-Net generator, 7 levels: for 128x128 images.

    Takes height and width that are multiples of 128.
    """
    net = UnetGenerator(in_channels, out_channels, 7, ngf, norm, dropout)
    return init_weights(net, init, init_gain)
