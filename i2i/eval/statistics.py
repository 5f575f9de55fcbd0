"""FID, KID, PSNR and SSIM: the statistics of features and of image pairs.

Conventions, stated once:

* **FID** is the Fréchet distance between Gaussian fits (mean, covariance with N - 1) of two
  feature sets, computed in float64. The trace of the matrix square root is taken as the sum of
  square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1), a symmetric positive semi-definite
  matrix with the same eigenvalues as S1 S2: no imaginary parts, and singular covariances
  (fewer images than feature dimensions) need no eps offset; rounding noise below zero is
  clamped.
* **KID** is the unbiased MMD² with the kernel k(x, y) = (x·y / d + 1)³, averaged over random
  subsets of ``min(n_real, n_fake, subset_size)`` images drawn without replacement (100 subsets
  of at most 1000, as torch-fidelity and clean-fid); mean and std (ddof 0) are reported in raw
  units (papers often print x 10³).
* **PSNR** and **SSIM** are per image, then averaged by the caller. ``value_range`` states the
  images' range (default (-1, 1)); SSIM maps images to [0, 1] first, because its luminance
  term is not shift-invariant, and uses the Gaussian window 11 / sigma 1.5, K1 0.01, K2 0.03 and
  the "valid" window positions of Wang et al. 2004 (kornia.metrics.ssim, eps 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from i2i.core.errors import I2IError, InvalidArgumentError

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
SSIM_WINDOW = 11


# -- FID and KID ----------------------------------------------------------------------------------
def _as_features(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise InvalidArgumentError(f"{what} must be (N, D) features, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise I2IError(f"{what} hold NaN or inf values; the feature extractor output is broken")
    return t


def gaussian_stats(features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (N - 1 normalisation, like numpy.cov) in float64."""
    f = _as_features(features, "features")
    if f.shape[0] < 2:
        raise InvalidArgumentError(f"a covariance needs at least 2 samples, got {f.shape[0]}")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def fid_from_stats(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), all in float64."""
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (*mu1.shape, *mu1.shape):
        raise InvalidArgumentError(
            f"statistics do not match: means {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"covariances {tuple(s1.shape)} / {tuple(s2.shape)}"
        )
    root = _psd_sqrt(s1)
    middle = root @ s2 @ root
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_sqrt = eigenvalues.sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * trace_sqrt
    return max(float(value), 0.0)


def frechet_distance(real: Any, fake: Any) -> float:
    """FID between two (N, D) feature sets (each needs at least 2 rows).

    With no more images than dimensions the covariances are low-rank, and the same value is
    computed exactly in sample space: tr sqrt(S1 S2) is the nuclear norm of A B^T / sqrt((n1 - 1)
    (n2 - 1)) for the centred features A, B, which costs an n1 x n2 SVD instead of two D x D
    eigendecompositions.
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    (n1, dim), n2 = x.shape, y.shape[0]
    if max(n1, n2) > dim:
        return fid_from_stats(*gaussian_stats(x), *gaussian_stats(y))
    if min(n1, n2) < 2:
        raise InvalidArgumentError(f"a covariance needs at least 2 samples, got {min(n1, n2)}")
    a, b = x - x.mean(0), y - y.mean(0)
    trace_sqrt = torch.linalg.matrix_norm(a @ b.T, ord="nuc") / math.sqrt((n1 - 1) * (n2 - 1))
    value = (
        (x.mean(0) - y.mean(0)).square().sum()
        + a.square().sum() / (n1 - 1)
        + b.square().sum() / (n2 - 1)
        - 2 * trace_sqrt
    )
    return max(float(value), 0.0)


def _mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return float(within - 2 * k_xy.mean())


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


# Up to this many images per set, the kernel matrices are computed once (at most 3 x 128 MiB)
# and every subset's sums are read from them; beyond it each subset computes its own.
_KID_FULL_KERNEL = 4096


def kernel_inception_distance(
    real: Any,
    fake: Any,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (cubic polynomial kernel, unbiased)."""
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    m = min(x.shape[0], y.shape[0], subset_size)
    if m < 2:
        raise InvalidArgumentError(f"KID needs at least 2 images per set, got {m}")
    if subsets < 1:
        raise InvalidArgumentError(f"subsets must be at least 1, got {subsets}")
    generator = torch.Generator().manual_seed(seed)
    picks = [
        (
            torch.randperm(x.shape[0], generator=generator)[:m],
            torch.randperm(y.shape[0], generator=generator)[:m],
        )
        for _ in range(subsets)
    ]
    if max(x.shape[0], y.shape[0]) <= _KID_FULL_KERNEL:
        # kernel sums over each subset as quadratic forms with 0/1 selection vectors
        k_xx, k_yy, k_xy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
        sel_x = torch.zeros(x.shape[0], subsets, dtype=torch.float64)
        sel_y = torch.zeros(y.shape[0], subsets, dtype=torch.float64)
        for s, (ix, iy) in enumerate(picks):
            sel_x[ix, s] = 1.0
            sel_y[iy, s] = 1.0
        within = (
            ((k_xx @ sel_x) * sel_x).sum(0)
            - (k_xx.diagonal()[:, None] * sel_x).sum(0)
            + ((k_yy @ sel_y) * sel_y).sum(0)
            - (k_yy.diagonal()[:, None] * sel_y).sum(0)
        ) / (m * (m - 1))
        values = (within - 2 * ((k_xy @ sel_y) * sel_x).sum(0) / (m * m)).tolist()
    else:
        values = []
        for ix, iy in picks:
            xs, ys = x[ix], y[iy]
            values.append(_mmd2_unbiased(_kernel(xs, xs), _kernel(ys, ys), _kernel(xs, ys)))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False))


def compare_features(
    real: Any,
    fake: Any,
    *,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """FID and KID between real and fake features, with ``notes`` on what limits them.

    Never raises for small sets: a metric that cannot be computed is ``None`` and a note says
    why; FID from fewer images than feature dimensions is computed but flagged.
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    n_real, n_fake, dim = x.shape[0], y.shape[0], x.shape[1]
    notes: list[str] = []
    out: dict[str, Any] = {"fid": None, "kid_mean": None, "kid_std": None}
    smallest = min(n_real, n_fake)
    if smallest < 2:
        notes.append(
            f"FID and KID need at least 2 images per set, got {n_real} real, {n_fake} fake"
        )
    else:
        out["fid"] = frechet_distance(x, y)
        if smallest <= dim:
            notes.append(
                f"FID from {smallest} images with {dim}-d features: the covariance is singular "
                f"(needs more than {dim} images) and FID is strongly biased upwards at this size; "
                "compare only runs with the same image count, or rely on KID"
            )
        m = min(smallest, kid_subset_size)
        out["kid_mean"], out["kid_std"] = kernel_inception_distance(
            x, y, kid_subsets, kid_subset_size, seed
        )
        if m < kid_subset_size:
            notes.append(f"KID subsets of {m} images (fewer than the usual {kid_subset_size})")
    if n_real != n_fake:
        notes.append(f"set sizes differ ({n_real} real, {n_fake} translated); fine for FID/KID")
    out.update(n_real=n_real, n_fake=n_fake, notes=notes)
    return out


# -- PSNR and SSIM --------------------------------------------------------------------------------
def _pair(x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float]) -> tuple[Any, ...]:
    if x.shape != y.shape:
        raise InvalidArgumentError(
            f"images to compare must have one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise InvalidArgumentError(
            f"value_range must be (low, high) with high > low, got {value_range}"
        )
    x = x if x.ndim == 4 else x[None]
    y = y if y.ndim == 4 else y[None]
    if x.ndim != 4:
        raise InvalidArgumentError(
            f"expected (N, C, H, W) or (C, H, W) images, got {tuple(x.shape)}"
        )
    return x.double(), y.double(), lo, hi


def psnr(
    x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Per-image PSNR in dB, data range = high - low of ``value_range``; identical gives inf."""
    x, y, lo, hi = _pair(x, y, value_range)
    mse = (x - y).square().flatten(1).mean(1)
    return (10 * torch.log10((hi - lo) ** 2 / mse)).float()


def ssim(
    x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) on images mapped to [0, 1], mean over channels."""
    from kornia.metrics import ssim as ssim_map

    x, y, lo, hi = _pair(x, y, value_range)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise InvalidArgumentError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got "
            f"{x.shape[-2]}x{x.shape[-1]}"
        )
    x, y = (x - lo) / (hi - lo), (y - lo) / (hi - lo)
    values = ssim_map(x, y, SSIM_WINDOW, max_val=1.0, eps=0.0, padding="valid")
    return values.flatten(1).mean(1).float()


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: NaN and inf become None."""
    return None if value is None or not math.isfinite(value) else float(value)
