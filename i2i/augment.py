"""Kornia augmentation pipelines that run on whatever device the batch is on.

Registered augmentations are factories returning Kornia modules; :func:`build_augmentation` chains
them into an :class:`Augmentation`, which takes batches in the training range ``[-1, 1]`` and can
give several batches the same random parameters (paired data) or independent ones (unpaired).

Random parameters are drawn from torch's global *CPU* generator, Kornia's default, even for CUDA
batches. Kornia 0.9 computes crop boxes and output sizes on the host (its crop generator moves
its draws to a CPU tensor, ``ImageSequential`` reads sizes with ``.item()``), so sampling on the
GPU would add a device-to-host sync per batch; sampled on the CPU, the parameters reach the GPU
through Kornia's non-blocking copies and nothing waits for the GPU. ``torch.manual_seed`` makes a
pipeline deterministic, and ``torch.get_rng_state``/``set_rng_state`` replay it.

The differentiable augmentations for what discriminators see (DiffAugment) are in
``i2i.diffaugment``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation.random_generator import ResizeGenerator
from torch import Tensor, nn

from i2i.core.errors import InvalidArgumentError
from i2i.core.registry import augmentations
from i2i.core.values import Spec, parse_spec
from i2i.diffaugment import DiscriminatorAugmentation

__all__ = ["Augmentation", "build_augmentation"]

# Fixed-size ops whose ``flags["size"]`` is the (h, w) of their output.
_SIZED_OPS = (K.RandomCrop, K.CenterCrop, K.RandomResizedCrop, K.Resize)


def _resize(size: tuple[int, int]) -> K.Resize:
    # Bicubic with antialiasing and half-pixel centres, like the PIL resize upstream CycleGAN uses.
    return K.Resize(size, resample="bicubic", align_corners=False, antialias=True)


def _check_crop(load_size: int, crop_size: int) -> None:
    if not 0 < crop_size <= load_size:
        raise InvalidArgumentError(
            f"crop_size must be between 1 and load_size ({load_size}); got {crop_size}"
        )


class ScaleWidth(K.Resize):
    """Resize to a fixed width keeping the aspect ratio, but never below ``min_height``.

    Kornia's ``Resize(side="horz")`` has no floor; upstream's scale_width stretches images that
    would come out shorter than the crop up to the crop size, so the crop after it always fits.
    """

    def __init__(self, width: int, min_height: int) -> None:
        super().__init__(
            width, side="horz", resample="bicubic", align_corners=False, antialias=True
        )
        self.min_height = min_height

    def _size(self, shape: Sequence[int]) -> tuple[int, int]:
        width = self.flags["size"]
        return max(int(width * shape[-2] / shape[-1]), self.min_height), width

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        # The parameters carry the output size that containers use to size the next op's draw.
        return ResizeGenerator(self._size(batch_shape))(batch_shape)

    def apply_transform(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
    ) -> Tensor:
        # A static (h, w) keeps Kornia from reading the size back out of the parameters.
        return super().apply_transform(
            input, params, {**flags, "size": self._size(input.shape)}, transform
        )


def resize_crop(load_size: int = 286, crop_size: int = 256) -> K.ImageSequential:
    """Resize to load_size x load_size, then random-crop crop_size x crop_size (CycleGAN's 286->256)."""
    _check_crop(load_size, crop_size)
    return K.ImageSequential(_resize((load_size, load_size)), K.RandomCrop((crop_size, crop_size)))


def scale_width(load_size: int = 286, crop_size: int = 256) -> K.ImageSequential:
    """Resize to width load_size keeping the aspect, then random-crop crop_size (scale_width_and_crop)."""
    _check_crop(load_size, crop_size)
    return K.ImageSequential(ScaleWidth(load_size, crop_size), K.RandomCrop((crop_size, crop_size)))


def hflip(p: float = 0.5) -> K.RandomHorizontalFlip:
    """Mirror left-right with probability p (upstream's default unless --no-flip)."""
    return K.RandomHorizontalFlip(p=p)


def color_jitter(
    brightness: float = 0.1,
    contrast: float = 0.1,
    saturation: float = 0.1,
    hue: float = 0.0,
    p: float = 1.0,
) -> K.ColorJitter:
    """Random brightness, contrast, saturation and hue, torchvision's ColorJitter semantics."""
    return K.ColorJitter(brightness, contrast, saturation, hue, p=p)


def affine(
    degrees: float = 10.0,
    translate: float = 0.05,
    scale: tuple[float, float] = (0.95, 1.05),
    p: float = 1.0,
) -> K.RandomAffine:
    """Small random rotation, shift and zoom; the border is mirrored so no flat fill appears."""
    return K.RandomAffine(
        degrees,
        translate=(translate, translate),
        scale=tuple(scale),
        padding_mode="reflection",
        p=p,
    )


def center_resize(size: int = 256) -> K.Resize:
    """Deterministic resize to size x size, the evaluation-time counterpart of resize_crop."""
    return _resize((size, size))


class Augmentation(nn.Module):
    """A chain of Kornia augmentations applied to ``[-1, 1]`` batches.

    Kornia's colour ops expect ``[0, 1]``, so batches are mapped there and back; the result is
    clamped to ``[-1, 1]`` because bicubic resizing overshoots.

    Colour ops need RGB. A 1-channel batch is treated as a grey RGB image (replicated to three
    channels, then averaged back): brightness and contrast change it with the same factors as
    an RGB batch it is paired with, while saturation and hue leave grey unchanged, which is what
    they do to a grey RGB image too. Other channel counts are rejected when colour ops are present;
    geometric ops take any channel count.
    """

    def __init__(self, *ops: nn.Module) -> None:
        super().__init__()
        # Disabling "sequential features" stops Kornia caching every output for ``.show()``.
        self.pipeline = K.ImageSequential(*ops, disable_sequential_features=True)
        self.has_colour_ops = any(
            isinstance(m, K.IntensityAugmentationBase2D) for m in self.pipeline.modules()
        )

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) of every output, or None when it depends on the input's size."""
        size = None
        for m in self.pipeline.modules():
            if isinstance(m, _SIZED_OPS):
                flag = m.flags["size"]
                if isinstance(m, K.Resize) and isinstance(flag, int):  # one side; the other varies
                    size = None
                else:
                    size = (flag, flag) if isinstance(flag, int) else (int(flag[0]), int(flag[1]))
        return size

    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> Augmentation:
        # ``.to(device)`` would move Kornia's samplers with it; keep them on the CPU (see top).
        super()._apply(fn, *args, **kwargs)
        for m in self.pipeline.modules():
            if isinstance(m, K.AugmentationBase2D):
                m.set_rng_device_and_dtype(torch.device("cpu"), torch.float32)
        return self

    def _to_unit(self, batch: Tensor) -> Tensor:
        if batch.dim() != 4 or not batch.is_floating_point():
            raise InvalidArgumentError(
                f"augmentations take float (N, C, H, W) batches; got {batch.dtype} {tuple(batch.shape)}"
            )
        channels = batch.shape[1]
        if self.has_colour_ops and channels not in (1, 3):
            raise InvalidArgumentError(
                f"colour augmentations need 1- or 3-channel images; got {channels} channels"
            )
        unit = (batch + 1) / 2
        return unit.repeat(1, 3, 1, 1) if self.has_colour_ops and channels == 1 else unit

    def _from_unit(self, unit: Tensor, channels: int) -> Tensor:
        if unit.shape[1] != channels:
            unit = unit.mean(dim=1, keepdim=True)
        return (unit * 2 - 1).clamp(-1, 1)

    def forward(self, *batches: Tensor, same_params: bool = False) -> Tensor | tuple[Tensor, ...]:
        """Augment each batch; ``same_params=True`` keeps paired batches aligned.

        Paired batches must agree in batch size, height and width; channels may differ.
        Returns a single tensor for a single batch, else a tuple in the order given.
        """
        if not batches:
            raise InvalidArgumentError("Augmentation needs at least one batch")
        units = [self._to_unit(b) for b in batches]
        if same_params:
            shapes = {(u.shape[0], *u.shape[2:]) for u in units}
            if len(shapes) > 1:
                raise InvalidArgumentError(
                    "paired batches must share batch size, height and width; got shapes "
                    + ", ".join(str(tuple(b.shape)) for b in batches)
                )
            params = self.pipeline.forward_parameters(units[0].shape)
            outs = [self.pipeline(u, params=params) for u in units]
        else:
            outs = [self.pipeline(u) for u in units]
        results = tuple(self._from_unit(o, b.shape[1]) for o, b in zip(outs, batches, strict=True))
        return results[0] if len(results) == 1 else results


def build_augmentation(specs: Sequence[Spec]) -> Augmentation:
    """An :class:`Augmentation` of registered augmentations, in order.

    e.g. ``["resize_crop", ("hflip", {"p": 0.5}), "color_jitter:brightness=0.2,hue=0.05"]``.
    """
    if isinstance(specs, str):
        raise InvalidArgumentError(f"build_augmentation takes a list of specs; got {specs!r}")
    ops = []
    for name, kwargs in map(parse_spec, specs):
        op = augmentations.create(name, **kwargs)
        if isinstance(op, DiscriminatorAugmentation):
            raise InvalidArgumentError(
                f"augmentation {name!r} is for what the discriminator sees, not for the training "
                "images; use it in the discriminator policy (--d-augment)"
            )
        ops.append(op)
    return Augmentation(*ops)
