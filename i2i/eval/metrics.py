"""Image-quality metrics, in one place: FID, KID, PSNR, SSIM and the feature extractors.

The work lives in three modules, each with its conventions stated once: ``extractors`` (the
``FeatureExtractor`` interface, EfficientNet-Lite0, ``embed_images``), ``inception`` (the
Inception-v3 of published FID) and ``statistics`` (FID, KID, PSNR, SSIM). This module gathers
their public names, so ``from i2i.eval.metrics import ...`` keeps working.
"""

from __future__ import annotations

from i2i.eval.extractors import (
    FeatureExtractor,
    create_extractor,
    embed_images,
    weights_dir,
)
from i2i.eval.inception import INCEPTION_FILE, INCEPTION_URL
from i2i.eval.statistics import (
    compare_features,
    fid_from_stats,
    finite_or_none,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    psnr,
    ssim,
)

__all__ = [
    "INCEPTION_FILE",
    "INCEPTION_URL",
    "FeatureExtractor",
    "compare_features",
    "create_extractor",
    "embed_images",
    "fid_from_stats",
    "finite_or_none",
    "frechet_distance",
    "gaussian_stats",
    "kernel_inception_distance",
    "psnr",
    "ssim",
    "weights_dir",
]
