"""Differentiable augmentations of everything a discriminator sees (DiffAugment: ``translation``,
``cutout``, ``color``).

Registered in the same registry as the training augmentations, but built only by
:func:`build_d_augment` from a policy string (``--d-augment``); unlike Kornia's, they draw their
random parameters on the batch's own device (see :class:`DiscriminatorAugmentation`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import ClassVar

import torch
from kornia.color import rgb_to_grayscale
from torch import Tensor, nn

from i2i.core.errors import InvalidArgumentError
from i2i.core.registry import augmentations
from i2i.core.values import parse_spec


class DiscriminatorAugmentation(nn.Module):
    """Base of the augmentations applied to everything a discriminator sees, real and fake.

    DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
    Training") augments real and generated images alike, in the discriminator's step and in the
    generator's, so D cannot memorise the few real images and the generator still gets exact
    gradients through the augmentation. Subclasses take ``[-1, 1]`` batches (zero is mid-grey)
    of any channel count, draw every random parameter per sample on the batch's own device
    (``torch.manual_seed`` makes them repeatable; nothing waits for the device), never clamp
    (a clamp would zero the gradient where it clips) and keep shape, device and dtype.

    Kornia's augmentation modules draw their parameters on the host, its ``enhance`` functions
    clamp to [0, 1], and its ``translate`` goes through a matrix inverse that synchronises a
    CUDA device; so the ops are written here, with Kornia's luma for the grey of saturation.
    """

    name: ClassVar[str] = ""

    @staticmethod
    def _uniform(x: Tensor, low: float, high: float) -> Tensor:
        """One value per sample, shaped to broadcast over (C, H, W)."""
        draw = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)
        return low + (high - low) * draw


def _check_ratio(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise InvalidArgumentError(f"{name} must be a number in [0, 1); got {value!r}")
    return float(value)


class Translation(DiscriminatorAugmentation):
    """DiffAugment translation: shift each image by whole pixels, up to ratio of its size.

    The uncovered border is zero (mid-grey), as in the reference implementation.
    """

    name = "translation"

    def __init__(self, ratio: float = 0.125) -> None:
        super().__init__()
        self.ratio = _check_ratio("ratio", ratio)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}"

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        max_dy, max_dx = int(h * self.ratio + 0.5), int(w * self.ratio + 0.5)
        dy = torch.randint(-max_dy, max_dy + 1, (n, 1, 1), device=x.device)
        dx = torch.randint(-max_dx, max_dx + 1, (n, 1, 1), device=x.device)
        # Output pixel (i, j) reads input pixel (i - dy, j - dx) where that lies inside.
        rows = torch.arange(h, device=x.device).view(1, h, 1) - dy
        cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(n, 1, h * w)
        moved = x.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)
        return moved * inside.unsqueeze(1).to(x.dtype)


class Cutout(DiscriminatorAugmentation):
    """DiffAugment cutout: zero one square per image, ratio of its sides, anywhere (may overhang)."""

    name = "cutout"

    def __init__(self, ratio: float = 0.5) -> None:
        super().__init__()
        self.ratio = _check_ratio("ratio", ratio)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}"

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        size_h, size_w = int(h * self.ratio + 0.5), int(w * self.ratio + 0.5)
        # The reference's draw: a centre anywhere in the image, the square clipped at the edges.
        top = torch.randint(0, h + 1 - size_h % 2, (n, 1, 1), device=x.device) - size_h // 2
        left = torch.randint(0, w + 1 - size_w % 2, (n, 1, 1), device=x.device) - size_w // 2
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        hole = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
        return x * (~hole).unsqueeze(1).to(x.dtype)


class Color(DiscriminatorAugmentation):
    """DiffAugment colour: random brightness, saturation and contrast per image.

    Brightness adds a shift in [-brightness, brightness] (in [-1, 1] units); saturation scales
    the distance to the grey (luma) image by [1 - saturation, 1 + saturation]; contrast scales
    the distance to the image mean by [1 - contrast, 1 + contrast]. The defaults are the
    reference's. Saturation acts on each RGB triple (a conditional D's 6 channels are two
    images) and leaves other channel counts alone, as it leaves a grey image.
    """

    name = "color"

    def __init__(self, brightness: float = 0.5, saturation: float = 1.0, contrast: float = 0.5):
        super().__init__()
        for key, value in (("brightness", brightness), ("saturation", saturation)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise InvalidArgumentError(f"{key} must be a number >= 0; got {value!r}")
        self.brightness, self.saturation = float(brightness), float(saturation)
        self.contrast = _check_ratio("contrast", contrast)

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, saturation={self.saturation}, contrast={self.contrast}"
        )

    def _saturate(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if c % 3:
            return x
        factor = self._uniform(x, 1 - self.saturation, 1 + self.saturation).unsqueeze(1)
        triples = x.reshape(n, c // 3, 3, h, w)
        grey = rgb_to_grayscale(triples.reshape(-1, 3, h, w)).view(n, c // 3, 1, h, w)
        return ((triples - grey) * factor + grey).view(n, c, h, w)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self._uniform(x, -self.brightness, self.brightness)
        x = self._saturate(x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * self._uniform(x, 1 - self.contrast, 1 + self.contrast) + mean


class DiscriminatorAugment(nn.Module):
    """A DiffAugment policy: its ops in order, applied to one batch of real or fake images.

    Call the same instance on the real and on the fake images that a discriminator judges
    (or once on both concatenated): every sample gets its own random parameters.
    """

    def __init__(self, ops: Sequence[DiscriminatorAugmentation], policy: str) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.policy = policy

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or not x.is_floating_point():
            raise InvalidArgumentError(
                f"discriminator augmentations take float (N, C, H, W) batches; got {x.dtype} "
                f"{tuple(x.shape)}"
            )
        for op in self.ops:
            x = op(x)
        return x

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"


def discriminator_augmentation_names() -> list[str]:
    """Registered augmentations that may go before a discriminator (``--d-augment``)."""
    factories = {name: augmentations.get(name).factory for name in augmentations.list()}
    return [
        name
        for name, factory in factories.items()
        if isinstance(factory, type) and issubclass(factory, DiscriminatorAugmentation)
    ]


_POLICY_SEPARATOR = re.compile(r",(?!\s*\w+\s*=)")  # commas that do not start a key=value


def build_d_augment(policy: str | None) -> DiscriminatorAugment | None:
    """The DiffAugment callable for a policy such as ``"translation,cutout,color"``, or None.

    ``None``, ``""`` and ``"none"`` mean no augmentation. An op may take arguments:
    ``"translation:ratio=0.25,color:brightness=0.3,contrast=0.2,cutout"``.
    """
    if policy is None or policy.strip().lower() in ("", "none"):
        return None
    valid = discriminator_augmentation_names()
    ops = []
    for item in _POLICY_SEPARATOR.split(policy):
        name, kwargs = parse_spec(item.strip())
        if name not in valid:
            raise InvalidArgumentError(
                f"unknown discriminator augmentation {name!r} in policy {policy!r}; "
                f"valid: {', '.join(valid)} (comma-separated, e.g. 'translation,cutout,color')"
            )
        ops.append(augmentations.create(name, **kwargs))
    return DiscriminatorAugment(ops, policy)
