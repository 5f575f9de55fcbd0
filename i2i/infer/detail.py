"""What a translation's result takes from the input's own detail (``--detail``).

With ``--scale`` the network runs on the input shrunk to the scale it was trained at; its
output, enlarged, is as soft as that scale. ``input`` adds the band the shrinking took away,
the input's own finer detail, to the enlarged output (a Laplacian pyramid's top level, as LPTN
keeps it: Liang et al. 2021): the network's textures stay at the scale it drew them. ``local``
keeps, instead of the output, the colour change it made: in each neighbourhood, the output as a
linear function of the input (a guided filter's coefficients, He et al. 2013), fitted on a
small copy of the pair, smoothed, enlarged and applied to the full-size input (the fast guided
filter's upsampling, He and Sun 2015; Wu et al. 2018 train through it). A look, a light, a
grade or a season comes out sharp and without the network's own artefacts, at the scale the
network ran at or at the input's own; strokes or stripes the network draws are not kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DETAILS = ("input", "local", "none")
# The local linear fits: a window radius of this fraction of the fitted image's shorter side,
# and a variance floor (images in [-1, 1]) below which a window's fit is only its mean change.
RADIUS_FRACTION = 1 / 9
EPS = 1e-3
# The fit runs on a copy of at most this shorter side: the map is smooth at a ninth of the
# picture, and a 12-megapixel fit would hold gigabytes.
FIT_SIDE = 256


def with_detail(
    out: torch.Tensor, shrunk: torch.Tensor, full: torch.Tensor, detail: str
) -> torch.Tensor:
    """The network's ``out`` (of ``shrunk``, which is ``full`` resized, or ``full`` itself) at
    ``full``'s size, with the input's detail as ``detail`` says (``DETAILS``)."""
    size = tuple(full.shape[-2:])
    out, shrunk, full = out.float(), shrunk.float(), full.float()
    if detail == "local":
        if shrunk.shape[1] in (1, out.shape[1]):  # the change is fitted: flat windows keep
            return full + _local_linear(shrunk, out - shrunk, full)  # the input's grain
        return _local_linear(shrunk, out, full)  # colour into grey: the grey itself
    if tuple(out.shape[-2:]) == size:  # run at the input's own size: nothing was taken away
        return out
    enlarged = resize(out, size)
    if detail == "none":
        return enlarged
    band = full - resize(shrunk, size)
    if band.shape[1] != out.shape[1]:  # grey into every colour; colour into grey as its mean
        band = band.mean(1, keepdim=True)
    return enlarged + band


def resize(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Bicubic, antialiased when shrinking (as PIL resizes for training)."""
    if tuple(x.shape[-2:]) == size:
        return x
    shrink = size[0] < x.shape[-2]
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=shrink)


def _local_linear(
    small_in: torch.Tensor, small_out: torch.Tensor, full_in: torch.Tensor
) -> torch.Tensor:
    """``a * full_in + b``, with ``a`` and ``b`` the least-squares fit of ``small_out`` to
    ``small_in`` in each window (ridge-damped by ``EPS``), smoothed, then enlarged. A guide with
    other channels than the output (grey in, colour out) guides by its mean."""
    if small_in.shape[1] != small_out.shape[1]:
        small_in, full_in = small_in.mean(1, keepdim=True), full_in.mean(1, keepdim=True)
    side = min(small_in.shape[-2:])
    if side > FIT_SIDE:
        fit = tuple(round(n * FIT_SIDE / side) for n in small_in.shape[-2:])
        small_in, small_out = resize(small_in, fit), resize(small_out, fit)
    radius = max(1, round(min(small_in.shape[-2:]) * RADIUS_FRACTION))
    mean_in, mean_out = _box(small_in, radius), _box(small_out, radius)
    covariance = _box(small_in * small_out, radius) - mean_in * mean_out
    variance = _box(small_in * small_in, radius) - mean_in * mean_in
    a = covariance / (variance + EPS)
    b = mean_out - a * mean_in
    size = tuple(full_in.shape[-2:])
    a, b = (
        F.interpolate(_box(c, radius), size=size, mode="bilinear", align_corners=False)
        for c in (a, b)
    )
    return a * full_in + b


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The mean over a (2r+1)-pixel square around each pixel, edges replicated: two running
    sums, so a window of any size costs the same; in float64 (where the device has it: not
    Apple's MPS), whose sums along a long side keep the small variances of flat windows."""
    dtype = x.dtype
    x = x.to(torch.float32 if x.device.type == "mps" else torch.float64)
    for dim in (-2, -1):
        pad = [0, 0, 0, 0]
        pad[0 if dim == -1 else 2] = pad[1 if dim == -1 else 3] = radius
        padded = F.pad(x, pad, mode="replicate")
        sums = padded.cumsum(dim)
        zero = torch.zeros_like(sums.narrow(dim, 0, 1))
        sums = torch.cat([zero, sums], dim)
        width = 2 * radius + 1
        n = x.shape[dim]
        x = (sums.narrow(dim, width, n) - sums.narrow(dim, 0, n)) / width
    return x.to(dtype)
