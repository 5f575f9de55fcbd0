"""The linear colour map between two sets of images: where a generator's colour path starts.

Most looks recolour the whole picture: a cast, a tone's contrast, a colour matrix. The map that
carries one set's colour mean and covariance onto the other's with the least change (the linear
Monge-Kantorovich map; Pitie and Kokaram, 2007) is told by the two unpaired sets alone, and on
the known-answer looks it comes close to what the trained models reach, or beyond it (``dusk``
+18.5 dB over the input, ``teal`` +6.0; benchmarks/README.md, "The colour map"). A generator
whose residual change is read against a learned colour map (``colour=True``) starts there, and
its training has only the rest to learn, and the map to refine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from i2i.core.errors import InvalidArgumentError
from i2i.kit.shift import told_by_sets

SMALLEST_VARIANCE = 1e-3
"""Of a colour direction, in the [-1, 1] range (a standard deviation of 4 grey levels): a set
of grey images has no spread across the channels, and the map must neither divide by it nor
blow up the few levels of colour that a translated grey image has on its way back through the
cycle (the grey-to-colour map multiplied them by up to 18 at 1e-4, 6 now: with the colour gate,
the `gray` look's generators painted blotches of sunset colours; benchmarks/README.md, "The
colour gate"). The benchmarks' sets of colour photos spread more in every direction (3e-3 at
least); a sepia-toned set (3e-5) and the toy's nights (5e-4) less, so the maps from them are
tempered too."""


def colour_moments(images: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of the pixels' colours over ``images`` (``(C, H, W)``, [-1, 1]),
    every image weighing alike whatever its size; float64."""
    firsts, seconds = [], []
    for image in images:
        pixels = image.flatten(1).double()
        firsts.append(pixels.mean(1))
        seconds.append(pixels @ pixels.T / pixels.shape[1])
    if not firsts:
        raise InvalidArgumentError("colour_moments needs at least one image; got none")
    mean = torch.stack(firsts).mean(0)
    return mean, torch.stack(seconds).mean(0) - torch.outer(mean, mean)


def _power(matrix: torch.Tensor, exponent: float, floor: float) -> torch.Tensor:
    """A symmetric matrix to a power, its eigenvalues floored at ``floor``."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return vectors @ torch.diag(values.clamp(min=floor) ** exponent) @ vectors.T


def linear_colour_map(
    source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(matrix, bias)`` of the map ``x -> matrix @ x + bias`` that gives colours with the
    ``source`` moments (``colour_moments``) the ``target`` ones, moving them least."""
    (mean_s, cov_s), (mean_t, cov_t) = source, target
    root, inverse_root = (
        _power(cov_s, 0.5, SMALLEST_VARIANCE),
        _power(cov_s, -0.5, SMALLEST_VARIANCE),
    )
    matrix = inverse_root @ _power(root @ cov_t @ root, 0.5, 0.0) @ inverse_root
    return matrix, mean_t - matrix @ mean_s


LARGEST_REGION_GAIN = 4.0
"""Of a region's gain either way (``region_maps``): a cell flat in every source image (black
corners, letterboxing, a sky clipped white) has no spread to scale, and a gain told from it
would multiply the neighbouring cells' colours by hundreds."""


def cell_moments(image: torch.Tensor, grid: int) -> torch.Tensor:
    """``(C + C * C, grid, grid)``: an image's (``(C, H, W)``) mean colour in each cell of a
    ``grid x grid`` partition of its frame, then the mean of each product of two channels,
    float64; what ``region_maps`` reads of each image."""
    pixels = image.double()
    products = (pixels[:, None] * pixels[None, :]).flatten(0, 1)
    return F.adaptive_avg_pool2d(torch.cat([pixels, products]), grid)


def region_maps(
    source: torch.Tensor,
    target: torch.Tensor,
    map_: tuple[torch.Tensor, torch.Tensor],
    mirrored: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(gain (1, G, G), bias (C, G, G))``, region by region: the map ``x -> gain * x + bias``
    that gives the colours that the colour map ``map_`` (``linear_colour_map``) makes of the
    ``source`` set the ``target`` set's brightness spread and mean colour in each cell, as far as
    the two sets can tell them.

    ``source``, ``target``: each image's ``cell_moments``, ``(N, C + C * C, G, G)``. A look that
    darkens the corners, graduates a sky or veils the top of the frame changes each cell's mean
    and spread differently, which no map of the colours alone can do; the gain (one for the
    brightness, the mean of the channels) scales a cell's spread to the target's, the bias then
    moves its mean. On the known-answer looks such a start gains 2 to 11 dB where the look
    varies over the frame and is level elsewhere (benchmarks/README.md, "The colour regions").
    Two sets of different photos also differ cell by cell by chance, so each gain's log and
    each shift of the mean are shrunk by their own noise (``told_by_sets``), as the mean-shift
    term's target is; a spread is floored as the colour map's is (``SMALLEST_VARIANCE``) and a
    gain kept within ``LARGEST_REGION_GAIN``; with fewer than two images in a set nothing can
    be told: a gain of 1, no bias. ``mirrored``: training flips the images left to right, so
    each set holds its mirror images as often, and a cell's numbers are averaged with those
    of its mirror cell."""
    matrix, bias = (t.to(source) for t in map_)
    out_channels, grid = matrix.shape[0], source.shape[-1]
    if len(source) < 2 or len(target) < 2:
        return source.new_ones(1, grid, grid), source.new_zeros(out_channels, grid, grid)

    def split(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channels = round((1 + 4 * moments.shape[1]) ** 0.5 - 1) // 2
        means = moments[:, :channels]
        return means, moments[:, channels:].unflatten(1, (channels, channels))

    means_s, seconds_s = split(source)
    mapped = torch.einsum("ij,njhw->nihw", matrix, means_s) + bias[:, None, None]
    luma = matrix.mean(0)  # of the mapped colours, as a row on the source's
    lift = bias.mean()
    spread_s = torch.einsum("i,nijhw,j->nhw", luma, seconds_s, luma)
    bright_s = torch.einsum("i,nihw->nhw", luma, means_s)
    second_s = spread_s + 2 * lift * bright_s + lift**2  # of the mapped brightness, per image
    means_t, seconds_t = split(target)
    second_t = seconds_t.mean((1, 2))  # of the brightness, the channels' mean
    bright_s, bright_t = bright_s + lift, means_t.mean(1)
    gains = []
    for bright, second in ((bright_s, second_s), (bright_t, second_t)):
        mean = bright.mean(0)
        variance = (second.mean(0) - mean**2).clamp(min=SMALLEST_VARIANCE)
        # Each image's share of the cell's spread about the set's mean, for its noise.
        shares = second - 2 * bright * mean + mean**2
        gains.append((variance, shares.var(0) / len(shares) / variance**2))
    (variance_s, noise_s), (variance_t, noise_t) = gains
    log_gain = told_by_sets(0.5 * (variance_t.log() - variance_s.log()), (noise_s + noise_t) / 4)
    largest = math.log(LARGEST_REGION_GAIN)
    gain = log_gain.clamp(-largest, largest).exp()[None]
    noise = mapped.var(0) / len(mapped) + means_t.var(0) / len(means_t)
    shift = told_by_sets(means_t.mean(0) - mapped.mean(0), noise)
    bias = (1 - gain) * mapped.mean(0) + shift
    if mirrored:
        gain, bias = (gain + gain.flip(-1)) / 2, (bias + bias.flip(-1)) / 2
    return gain, bias
