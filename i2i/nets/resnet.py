"""The ResNet generator of CycleGAN (Johnson et al. style: downsample, residual blocks, upsample).

Module structure and attribute names follow upstream's ``ResnetGenerator`` and ``ResnetBlock``
exactly, so its checkpoints load with ``strict=True``; with ``antialias=True`` they follow the
official CUT generator (blur-pool down, binomial up), so CUT's checkpoints load too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2i.core.checks import check_choice, check_input_size
from i2i.core.errors import InvalidArgumentError
from i2i.nets.antialias import Downsample, Upsample
from i2i.nets.init import init_weights
from i2i.nets.norm import conv_bias, norm_layer

PADDINGS = ("reflect", "replicate", "zero")
# Inputs are clamped into (-1, 1) before atanh, which is infinite at +-1.
_EDGE = 1 - 1e-3
COLOUR_CURVE_WIDTH = 16
"""Hidden units of the colour curve (``colour_curve``): each bends the colour map once, at one
level along one direction of colour."""
REGION_GRID = 4
"""Cells per side of the colour path's regional map (``colour_regions``), as the mean-shift
term's (``i2i.kit.shift.GRID``): a vignette, a graduated sky, a haze that thickens upwards."""


def _padded_conv3x3(channels: int, padding: str, bias: bool) -> list[nn.Module]:
    """Upstream pads with a separate layer, except for zero padding, which the conv does itself."""
    conv_padding = 0
    layers: list[nn.Module] = []
    if padding == "reflect":
        layers.append(nn.ReflectionPad2d(1))
    elif padding == "replicate":
        layers.append(nn.ReplicationPad2d(1))
    else:
        conv_padding = 1
    layers.append(nn.Conv2d(channels, channels, 3, padding=conv_padding, bias=bias))
    return layers


class ResnetBlock(nn.Module):
    """Two 3x3 convs with a skip connection; the layers live in ``conv_block`` as upstream."""

    def __init__(self, channels: int, padding: str, norm: str, dropout: bool):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        layers = [*_padded_conv3x3(channels, padding, bias), make_norm(channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_conv3x3(channels, padding, bias), make_norm(channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class RegionMap(nn.Module):
    """A colour map that varies smoothly over the picture: at the centre of each cell of a grid
    laid over the whole frame, a gain on the colours and an offset per channel, bilinear between
    the centres and flat beyond them. Where a look changes with the position in the frame
    (corners darkened, a sky graduated, a haze that veils the top more), no map of the colours
    alone can make it, and the trunk, which sees position only through its padding, learns it
    slowly. A darkening scales the colours, a veil lifts and flattens them: the gain and the
    offset together make either. A task starts them at what the training sets tell
    (``Task.start_colour_maps``); at first, a gain of 1 and no offset."""

    def __init__(self, channels: int, grid: int = REGION_GRID) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, 1, grid, grid))
        self.offset = nn.Parameter(torch.zeros(1, channels, grid, grid))

    def forward(self, x: torch.Tensor, frame: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` mapped by the gain and offset where each of its pixels lies. ``frame``: (N, 4)
        rows of where each input lies in its whole picture (top, left, height, width, as
        fractions of the picture's height and width: a tile, or an image padded to the
        network's size multiple); None: each input is a whole picture."""
        height, width = x.shape[-2:]
        grids = torch.cat([self.gain, self.offset], 1)
        if frame is None:
            maps = F.interpolate(grids, (height, width), mode="bilinear", align_corners=False)
        else:
            frame = frame.to(grids)
            # Pixel centres in grid_sample's coordinates: -1 and 1 are the picture's outer edges.
            rows = (torch.arange(height, device=frame.device, dtype=frame.dtype) + 0.5) / height
            cols = (torch.arange(width, device=frame.device, dtype=frame.dtype) + 0.5) / width
            ys = 2 * (frame[:, :1] + rows * frame[:, 2:3]) - 1
            xs = 2 * (frame[:, 1:2] + cols * frame[:, 3:4]) - 1
            where = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), -1)
            grids = grids.expand(frame.shape[0], -1, -1, -1)
            maps = F.grid_sample(
                grids, where, "bilinear", padding_mode="border", align_corners=False
            )
        return maps[:, :1] * x + maps[:, 1:]


def mapped_colours(
    colour: nn.Module | None,
    curve: nn.Module | None,
    x: torch.Tensor,
    gated: bool = False,
    regions: RegionMap | None = None,
    frame: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """What a colour path makes of ``x``: the linear map, bent by the curve where there is one
    (None without a colour path); ``gated``: the curve's last output is each pixel's gate, the
    share of the map's change that the pixel takes (``2 * sigmoid``: 1 at the start, 0 keeps
    the input's colour, up to 2 goes past the map); ``regions``: a map over the frame after it
    (``RegionMap``, ``frame`` as its forward's). Shared with the networks built on this
    generator's modules."""
    if colour is None:
        return None
    if curve is None:
        mapped = colour(x)
    elif not gated:
        mapped = colour(x) + curve(x)
    else:
        bend = curve(x)
        share = 2 * torch.sigmoid(bend[:, -1:])
        mapped = x + share * (colour(x) - x) + bend[:, :-1]
    return mapped if regions is None else regions(mapped, frame)


def resnet_decode(
    layers: nn.Sequential,
    head: int,
    h: torch.Tensor,
    x: torch.Tensor,
    detail: nn.Module | None,
    residual: bool,
    base: torch.Tensor | None = None,
) -> torch.Tensor:
    """``layers`` on ``h``, with the detail path's features of the raw input ``x`` joining before
    ``layers[head]`` (the last pad and conv), and for a residual network the result read as a
    change to ``base`` (``x`` unless given). Shared with the networks built on this generator's
    modules (UNSB's)."""
    if detail is None:
        out = layers(h)
    else:
        out = layers[head:](torch.cat([layers[:head](h), detail(x)], 1))
    if not residual:
        return out
    return torch.tanh(torch.atanh((x if base is None else base).clamp(-_EDGE, _EDGE)) + out)


class ResnetGenerator(nn.Module):
    """Two stride-2 downsamplings, ``n_blocks`` residual blocks and two upsamplings.

    The two stride-2 stages make the output size equal the input size only for multiples of 4,
    hence ``size_multiple``. The 1/4-scale map must also be at least 2x2: reflection padding
    and normalising over space in training (instance norm, batch norm at batch 1) fail on 1x1.

    ``antialias`` replaces each stride-2 conv by a stride-1 conv and a blur-pool, and each
    transposed conv by a binomial upsampling and a 3x3 conv: no aliasing, no checkerboard.

    ``residual`` makes the network predict a change to its input, ``tanh(atanh(x) + f(x))``,
    and the factories zero the last convolution, so it starts as the identity. Translations
    mostly keep the input's content (a photo's layout, a frame's geometry); starting from the
    input instead of from noise is what lets a short training give pictures better than the
    input. The state-dict layout is the same either way.

    ``detail`` adds a full-resolution path: two 3x3 convs on the raw input (no normalisation,
    so absolute levels survive) whose features join the upsampled ones before the last conv.
    Without it every change is computed from features that passed the 1/4-scale bottleneck and
    instance norm, so the network cannot sharpen, follow a per-pixel tone curve or keep fine
    texture; with it, it keeps the ResNet body for what needs context.

    ``colour`` (with ``residual``) reads the change as one to a learned linear map of the input's
    colours (a 1x1 convolution, from the identity) rather than to the input itself. A look that
    recolours the whole picture (a colour matrix, a cast, a tone's contrast) is then a dozen
    numbers that every pixel moves together, which a short training finds, instead of a change
    that each pixel's features must agree on; a task may start it at the colour map between its
    two training sets (``Task.start_colour_maps``).

    ``colour_curve`` (with ``colour``) bends that map per pixel: a small network on each pixel's
    colour alone (1x1 convolutions, ``COLOUR_CURVE_WIDTH`` hidden units), added to the map and
    starting at zero. A linear map darkens a small bright object with the picture around it (the
    toy's sun, which must become a bright moon); the residual network must then paint it back,
    and its 4x-downsampled trunk paints blobs. A curve turns that pixel's colour alone, so the
    object can keep its outline (on the toy it made round moons likelier, not sure:
    benchmarks/README.md, "The colour path in the recipes").

    ``colour_gate`` (with ``colour_curve``) gives the curve one more output: each pixel's share
    of the map's change, from its colour alone, starting at all of it. The curve alone must learn
    to undo the map where it is wrong, three numbers a pixel; the gate does it with one, so the
    toy's sun can keep its own bright colour and outline with the sky mapped around it, and the
    network only has to whiten it (benchmarks/README.md, "The colour gate").

    ``colour_regions`` (with ``colour``) follows the map with a gain and an offset that vary
    smoothly over the frame (``RegionMap``, a 4x4 grid), for looks that change with the position
    in the picture (a vignette, a graduated sky, a haze). The generator's output then depends on
    where its input lies in the picture: ``forward``'s ``frame`` says it for a tile (``i2i apply
    --tile``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        n_blocks: int = 9,
        padding: str = "reflect",
        antialias: bool = False,
        residual: bool = False,
        detail: bool = False,
        colour: bool = False,
        colour_curve: bool = False,
        colour_gate: bool = False,
        colour_regions: bool = False,
    ):
        super().__init__()
        check_choice("padding", padding, PADDINGS)
        path = [
            name
            for name, on in (
                ("colour", colour),
                ("colour_curve", colour_curve),
                ("colour_gate", colour_gate),
                ("colour_regions", colour_regions),
            )
            if on
        ]
        off = " ".join(f"--gen-kw {name}=false" for name in path)
        if colour and not residual:
            raise InvalidArgumentError(
                "colour maps the input that a residual network changes: add residual, or turn "
                f"the colour path off ({off})"
            )
        if path and not colour:
            verb, them = ("shape", "them") if len(path) > 1 else ("shapes", "it")
            named = " and ".join([", ".join(path[:-1]), path[-1]] if len(path) > 2 else path)
            raise InvalidArgumentError(
                f"{named} {verb} the colour path's map: add colour (and residual), "
                f"or turn {them} off too ({off})"
            )
        if colour_gate and not colour_curve:
            raise InvalidArgumentError(
                "colour_gate is read from the colour curve: add colour_curve, or drop colour_gate"
            )
        if residual and in_channels != out_channels:
            raise InvalidArgumentError(
                f"residual needs as many output channels as input channels, got {in_channels} -> "
                f"{out_channels}; drop residual for this generator"
            )
        self.residual = residual
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.arch = f"resnet{n_blocks}"
        self.size_multiple = 4
        self.min_size = 8

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            wide = ngf * mult * 2
            if antialias:
                down = [nn.Conv2d(ngf * mult, wide, 3, padding=1, bias=bias), make_norm(wide)]
                layers += [*down, nn.ReLU(True), Downsample(wide)]
            else:
                down = [nn.Conv2d(ngf * mult, wide, 3, stride=2, padding=1, bias=bias)]
                layers += [*down, make_norm(wide), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, padding, norm, dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            narrow = ngf * mult // 2
            if antialias:
                up = [Upsample(ngf * mult), nn.Conv2d(ngf * mult, narrow, 3, padding=1, bias=bias)]
            else:
                up = [
                    nn.ConvTranspose2d(
                        ngf * mult, narrow, 3, stride=2, padding=1, output_padding=1, bias=bias
                    )
                ]
            layers += [*up, make_norm(narrow), nn.ReLU(True)]
        head_channels = ngf * 2 if detail else ngf
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(head_channels, out_channels, 7)]
        if not residual:
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)
        # Where the output head (the last pad, conv and tanh) starts in ``model``: the detail
        # features join there (networks built on these modules, UNSB's, read it too).
        self.head_index = len(layers) - (2 if residual else 3)
        self.detail = (
            nn.Sequential(
                nn.ReflectionPad2d(1),
                nn.Conv2d(in_channels, ngf, 3),
                nn.LeakyReLU(0.2, True),
                nn.ReflectionPad2d(1),
                nn.Conv2d(ngf, ngf, 3),
                nn.LeakyReLU(0.2, True),
            )
            if detail
            else None
        )
        self.colour = nn.Conv2d(in_channels, out_channels, 1) if colour else None
        self.colour_curve = (
            nn.Sequential(
                nn.Conv2d(in_channels, COLOUR_CURVE_WIDTH, 1),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(COLOUR_CURVE_WIDTH, out_channels + colour_gate, 1),
            )
            if colour_curve
            else None
        )
        self.colour_gate = colour_gate
        self.colour_regions = RegionMap(out_channels) if colour_regions else None

    @property
    def takes_frame(self) -> bool:
        """Whether the output depends on where the input lies in its picture (colour regions):
        the translator then says where each input lies (``forward``'s ``frame``)."""
        return self.colour_regions is not None

    def forward(self, x: torch.Tensor, frame: torch.Tensor | None = None) -> torch.Tensor:
        """``frame``: where each input lies in its whole picture, for a generator with
        ``colour_regions`` (``RegionMap.forward``); the others ignore it."""
        check_input_size(x, self.arch, self.size_multiple, self.min_size)
        base = mapped_colours(
            self.colour, self.colour_curve, x, self.colour_gate, self.colour_regions, frame
        )
        return resnet_decode(self.model, self.head_index, x, x, self.detail, self.residual, base)

    def finish_init(self, init: str, init_gain: float) -> ResnetGenerator:
        """The registered initialisation, except in the detail path: it has no normalisation
        to rescale its activations, so it gets He initialisation, which keeps their scale. The
        colour curve's hidden units too, their levels spread over the colour range (each one's
        kink lies somewhere in it)."""
        init_weights(self, init, init_gain)
        if self.detail is not None:
            for conv in self.detail:
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, a=0.2, nonlinearity="leaky_relu")
                    nn.init.zeros_(conv.bias)
        if self.colour_curve is not None:
            hidden = self.colour_curve[0]
            nn.init.kaiming_normal_(hidden.weight, a=0.2, nonlinearity="leaky_relu")
            nn.init.uniform_(hidden.bias, -1, 1)
        return self.start_as_identity() if self.residual else self

    def start_as_identity(self) -> ResnetGenerator:
        """Zero the last convolution (and make the colour map the identity, its curve flat, its
        regional map the identity):
        with ``residual``, the output is then the input."""
        last = self.model[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        if self.colour is not None:
            with torch.no_grad():
                self.colour.weight.copy_(torch.eye(self.colour.in_channels)[:, :, None, None])
                nn.init.zeros_(self.colour.bias)
        if self.colour_curve is not None:
            nn.init.zeros_(self.colour_curve[-1].weight)
            nn.init.zeros_(self.colour_curve[-1].bias)
        if self.colour_regions is not None:
            nn.init.ones_(self.colour_regions.gain)
            nn.init.zeros_(self.colour_regions.offset)
        return self


def _resnet(n_blocks: int, init: str, init_gain: float, **arch: Any) -> ResnetGenerator:
    """A registered ResNet generator: the factories below spell out their arguments (for
    ``i2i describe``) and pass them on by name."""
    return ResnetGenerator(n_blocks=n_blocks, **arch).finish_init(init, init_gain)


def resnet9(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    padding: str = "reflect",
    antialias: bool = False,
    residual: bool = False,
    detail: bool = False,
    colour: bool = False,
    colour_curve: bool = False,
    colour_gate: bool = False,
    colour_regions: bool = False,
    init: str = "normal",
    init_gain: float = 0.02,
) -> ResnetGenerator:
    """ResNet generator, 9 residual blocks: CycleGAN's default for 256 px images and up.

    Takes any height and width divisible by 4; output has the input's size.
    """
    return _resnet(9, **locals())


def resnet6(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    padding: str = "reflect",
    antialias: bool = False,
    residual: bool = False,
    detail: bool = False,
    colour: bool = False,
    colour_curve: bool = False,
    colour_gate: bool = False,
    colour_regions: bool = False,
    init: str = "normal",
    init_gain: float = 0.02,
) -> ResnetGenerator:
    """ResNet generator, 6 residual blocks: CycleGAN's choice for 128 px images.

    Fewer blocks than resnet9 because small images need less receptive field; same size rules.
    """
    return _resnet(6, **locals())
