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
    source: tuple[torch.Tensor, torch.Tensor],
    target: tuple[torch.Tensor, torch.Tensor],
    turn: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(matrix, bias)`` of the map ``x -> matrix @ x + bias`` that gives colours with the
    ``source`` moments (``colour_moments``) the ``target`` ones, moving them least; or, given a
    ``turn`` (``colour_turn``), the one that whitens the source colours, turns them so and
    gives them the target's spread."""
    (mean_s, cov_s), (mean_t, cov_t) = source, target
    root, inverse_root = (
        _power(cov_s, 0.5, SMALLEST_VARIANCE),
        _power(cov_s, -0.5, SMALLEST_VARIANCE),
    )
    if turn is None:
        matrix = inverse_root @ _power(root @ cov_t @ root, 0.5, 0.0) @ inverse_root
    else:
        matrix = _power(cov_t, 0.5, SMALLEST_VARIANCE) @ turn.to(cov_t) @ inverse_root
    return matrix, mean_t - matrix @ mean_s


PIXELS_PER_IMAGE = 256
"""Of each image's colours that ``colour_turn`` compares: a few hundred images give tens of
thousands of colours, which tell the sets' distributions well beyond their chance difference."""


def colour_pixels(image: torch.Tensor, count: int = PIXELS_PER_IMAGE) -> torch.Tensor:
    """``(C, count)``: colours of an image (``(C, H, W)``) at evenly spaced pixels, the same
    ones on every call (every process of a run must start alike)."""
    pixels = image.flatten(1)
    index = torch.linspace(0, pixels.shape[1] - 1, count).round().long()
    return pixels[:, index].double()


TURN_CANDIDATES = 1500
"""Random turns of each handedness that ``colour_turn`` first scores; the best few are then
refined by gradient descent, so the search need not hit the answer, only come near it."""


def colour_turn(
    source: tuple[torch.Tensor, torch.Tensor],
    target: tuple[torch.Tensor, torch.Tensor],
    source_pixels: torch.Tensor,
    target_pixels: torch.Tensor,
) -> torch.Tensor | None:
    """The orthogonal turn of the whitened colours (``(C, C)``) that makes the ``source``
    images' colours fit the ``target`` ones' distribution, where the least-moving map
    (``linear_colour_map``) does not and the turned map does, as far as the sets can tell;
    else ``None``.

    Mean and covariance do not tell a map: any turn of the whitened colours keeps them, and
    the least-moving map picks the smallest. A look that turns every hue, or remixes the
    channels (false-colour infrared), is a large turn, which only the colours' whole
    distribution tells; the sliced Wasserstein distance compares it. But a look that is not a
    linear map of the colours (a curve, a relight) also fits some turn better than the least
    moving one, a wrong one (110 degrees off on the ``cnn`` look). So a turn is taken only
    where it brings the distance below what two sets of these sizes differ by chance (halves
    of the target set, scaled to the sets' sizes) and the least-moving map leaves it above,
    and only where no other turn tried (the least-moving map refined, the best few found far
    apart) fits too, more than 20 degrees away (colours spread alike in several directions fit
    several turns alike, and nothing tells which), and only a turn more than 20 degrees from the
    least-moving map (nearer, a turn that fits follows what the sets differ by chance: the
    ``blur`` flaw's, 0.5 dB below the map).
    ``source_pixels``, ``target_pixels``: ``(N, C, K)``, each image's ``colour_pixels``."""
    (mean_s, cov_s), (mean_t, cov_t) = source, target
    channels = len(mean_s)
    if channels < 2 or len(mean_t) != channels or min(len(source_pixels), len(target_pixels)) < 4:
        return None
    stream = torch.Generator().manual_seed(0)
    flat_s, flat_t = _whitened(source_pixels), _whitened(target_pixels)
    least = _orthogonal(
        _power(cov_t, -0.5, SMALLEST_VARIANCE)
        @ linear_colour_map(source, target)[0]
        @ _power(cov_s, 0.5, SMALLEST_VARIANCE)
    ).float()
    gaussian = torch.randn(TURN_CANDIDATES, channels, channels, generator=stream)
    q, r = torch.linalg.qr(gaussian)
    random = q * torch.diagonal(r, dim1=1, dim2=2).sign()[:, None]  # uniform over the turns
    mirror = torch.ones(channels)
    mirror[-1] = -1
    candidates = torch.cat([random, random * mirror])  # both handednesses
    least_distance = _sliced_distance(least[None], flat_s, flat_t)[0]
    chance = _chance_distance(target_pixels, len(source_pixels), stream)
    if least_distance <= chance:
        return None
    for directions, points, kept in ((8, 500, 100), (32, 4000, 100)):  # a rough look, a closer
        rough = _sliced_distance(candidates, flat_s, flat_t, stream, directions, points)
        candidates = candidates[rough.argsort()[:kept]]
    starts = [least]
    for candidate in candidates:  # the best few far apart: where several fit, it shows
        if all(_largest_angle(candidate, start) > 30 for start in starts[1:]):
            starts.append(candidate)
    refined = []
    for start in starts[:4]:
        turn = _refined(start, flat_s, flat_t, stream)
        refined.append((_sliced_distance(turn[None], flat_s, flat_t)[0], turn))
    fitting = [turn for distance, turn in refined if distance < chance]
    best = min(refined, key=lambda fit: fit[0])[1]
    if fitting and all(_largest_angle(turn, best) < 20 for turn in fitting):
        # Near the least-moving map, a turn follows what the sets differ by chance.
        return best.double() if _largest_angle(best, least) > 20 else None
    return None  # none fits, or turns far apart do: nothing tells which


def _largest_angle(first: torch.Tensor, second: torch.Tensor) -> float:
    """Degrees by which the orthogonal ``second`` turns some colour away from where ``first``
    puts it (180 between turns of opposite handedness)."""
    relative = first.T @ second
    smallest = torch.linalg.eigvalsh((relative + relative.T) / 2)[0].clamp(-1, 1)
    return float(torch.rad2deg(torch.arccos(smallest)))


def _whitened(pixels: torch.Tensor) -> torch.Tensor:
    """``(C, N * K)``: the colours of ``pixels`` (``(N, C, K)``) less their mean, times their
    covariance's inverse root (float32)."""
    flat = pixels.transpose(0, 1).flatten(1)
    mean = flat.mean(1, keepdim=True)
    cov = (flat - mean) @ (flat - mean).T / flat.shape[1]
    return (_power(cov, -0.5, SMALLEST_VARIANCE) @ (flat - mean)).float()


def _orthogonal(matrix: torch.Tensor) -> torch.Tensor:
    """The orthogonal matrix nearest ``matrix`` (the polar factor)."""
    left, _, right = torch.linalg.svd(matrix)
    return left @ right


def _sliced_distance(
    turns: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    stream: torch.Generator | None = None,
    directions: int = 64,
    points: int = 20000,
) -> torch.Tensor:
    """``(T,)``: the squared sliced Wasserstein distance between each of ``turns`` (``(T, C,
    C)``) applied to the ``source`` colours and the ``target`` ones (``(C, P)``), over random
    ``directions`` and ``points`` colours of each drawn at random (fixed ones, evenly spread,
    without a ``stream``)."""
    if stream is None:
        stream = torch.Generator().manual_seed(1)
        source, target = (side[:, :: max(1, side.shape[1] // points)] for side in (source, target))
    else:
        source, target = (
            side[:, torch.randint(side.shape[1], (points,), generator=stream)]
            for side in (source, target)
        )
    axes = torch.randn(source.shape[0], directions, generator=stream)
    axes = axes / axes.norm(dim=0)
    count = min(source.shape[1], target.shape[1])
    picks = [
        torch.linspace(0, side.shape[1] - 1, count).round().long() for side in (source, target)
    ]
    sorted_t = (axes.T @ target).sort(1).values[:, picks[1]]
    distances = []
    for chunk in turns.split(100):
        sorted_s = torch.einsum("pi,tij,jn->tpn", axes.T, chunk, source).sort(2).values
        distances.append((sorted_s[:, :, picks[0]] - sorted_t).square().mean((1, 2)))
    return torch.cat(distances)


REFINING_STEPS = 60


def _refined(
    turn: torch.Tensor, source: torch.Tensor, target: torch.Tensor, stream: torch.Generator
) -> torch.Tensor:
    """``turn`` moved down the sliced distance, by steps along the turns (``matrix_exp`` of
    a skew-symmetric matrix), so it stays orthogonal; the steps shrink to nothing, so that
    the turn settles where the distance's noise (random directions each step) lets it."""
    skew = torch.zeros_like(turn, requires_grad=True)
    optimizer = torch.optim.Adam([skew], lr=0.03)
    settling = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, REFINING_STEPS)
    for _ in range(REFINING_STEPS):
        moved = torch.matrix_exp(skew - skew.T) @ turn
        loss = _sliced_distance(moved[None], source, target, stream, 32, 2000)
        optimizer.zero_grad()
        loss[0].backward()
        optimizer.step()
        settling.step()
    return (torch.matrix_exp(skew - skew.T) @ turn).detach()


CHANCE_SPLITS = 16
"""Random halvings of the target set whose distances ``_chance_distance`` averages: one
halving's distance varies by half its size from the next."""


def _chance_distance(
    target_pixels: torch.Tensor, source_images: int, stream: torch.Generator
) -> torch.Tensor:
    """What the sliced distance between the whitened colours of two sets of images drawn
    alike comes to by chance: between random halves of the target set (``CHANCE_SPLITS``, each
    whitened on its own as the sets are), scaled from two halves (4 / N) to sets of
    ``source_images`` and N images."""
    count = len(target_pixels)
    identity = torch.eye(target_pixels.shape[1])[None]
    distances = []
    for _ in range(CHANCE_SPLITS):
        order = torch.randperm(count, generator=stream)
        halves = [_whitened(target_pixels[part]) for part in order.tensor_split(2)]
        distances.append(_sliced_distance(identity, *halves)[0])
    return torch.stack(distances).mean() * (1 / source_images + 1 / count) * count / 4


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
