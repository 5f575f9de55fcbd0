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

from collections.abc import Iterable

import torch

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


def region_offsets(
    source_cells: torch.Tensor,
    target_cells: torch.Tensor,
    map_: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """``(C, G, G)``: what the colour map ``map_`` (``linear_colour_map``) leaves of the two
    sets' difference in each cell's mean colour, as far as the sets can tell it.

    ``*_cells``: each image's mean colour in each cell of a ``G x G`` grid over its frame,
    ``(N, C, G, G)``. A look that darkens corners, graduates a sky or thickens a haze upwards
    changes the cells' means by different amounts, which a map of the colours alone cannot do;
    on the known-answer looks such a start gains 2 to 5 dB where the look varies over the frame
    and is level elsewhere (benchmarks/README.md, "The colour regions"). Two sets of different
    photos also differ cell by cell by chance, so each difference is shrunk by its own noise
    (``told_by_sets``), as the mean-shift term's target is; with fewer than two images in a set
    nothing can be told, and the offsets are zero."""
    if len(source_cells) < 2 or len(target_cells) < 2:
        return torch.zeros_like(target_cells[0] if len(target_cells) else source_cells[0])
    matrix, bias = (t.to(source_cells) for t in map_)
    mapped = torch.einsum("ij,njhw->nihw", matrix, source_cells) + bias[:, None, None]
    gap = target_cells.mean(0) - mapped.mean(0)
    noise = mapped.var(0) / len(mapped) + target_cells.var(0) / len(target_cells)
    return told_by_sets(gap, noise)
