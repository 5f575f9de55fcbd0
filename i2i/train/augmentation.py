"""The trainer's device-side augmentation of each batch, from its own options.

Random resized crops, flips and any ``--augment`` extras run on the device with Kornia. A paired
task (pix2pix) gets one set of random parameters for A and B, so pairs stay aligned; an unpaired
task independent ones. Held-out images (sample grids, eval) go through the same resize to the
training size, without the random parts.
"""

from __future__ import annotations

from typing import Any

import torch

from i2i.augment import build_augmentation
from i2i.core.errors import DataError, InvalidArgumentError
from i2i.core.values import parse_spec
from i2i.kit.groups import AugmentationOptions


def augmentation_specs(options: AugmentationOptions) -> list[Any]:
    """The Kornia pipeline that the augmentation options describe (preprocess, flip, extras)."""
    specs: list[Any] = []
    if options.preprocess != "none":
        if options.crop_size > options.load_size:
            raise InvalidArgumentError(
                f"--crop-size {options.crop_size} is larger than --load-size "
                f"{options.load_size}: the crop is cut from the image resized to --load-size; "
                f"give --load-size {options.crop_size} or more (the paper: 286 for 256)"
            )
        sizes = {"load_size": options.load_size, "crop_size": options.crop_size}
        specs.append((options.preprocess, sizes))
    if options.flip:
        specs.append("hflip")
    if options.augment:
        extras = [s.strip() for s in options.augment.split(";") if s.strip()]
        for name, _ in map(parse_spec, extras):
            if name in RESIZING:
                raise InvalidArgumentError(
                    f"--augment {name!r} sets the training size, which --preprocess, --load-size "
                    f"and --crop-size own; use --preprocess {RESIZING[name]} instead"
                )
        specs += extras
    return specs


# Augmentations that set the image size; only --preprocess may use them.
RESIZING = {"resize_crop": "resize_crop", "scale_width": "scale_width", "center_resize": "none"}


class BatchAugmentation:
    def __init__(self, options: AugmentationOptions, paired: bool) -> None:
        self.pipeline = build_augmentation(augmentation_specs(options))
        self.paired = paired
        self.size = options.crop_size  # the size the networks train at
        self.load_size = options.load_size
        self.crops = options.preprocess != "none"  # else every image keeps its own size
        # The smallest shorter side worth decoding: the pipeline resizes to load_size first.
        self.decode_size = options.load_size if self.crops else None
        # Held-out images: the training pipeline's resize (Kornia, bicubic, antialiased) to the
        # training size, without its random parts; with --preprocess none they keep their size.
        self.held_out_pipeline = (
            build_augmentation([("center_resize", {"size": options.crop_size})])
            if options.preprocess != "none"
            else None
        )

    @classmethod
    def for_task(cls, task: Any) -> BatchAugmentation:
        """The augmentation of ``task``'s run, from the augmentation options it resolved."""
        return cls(AugmentationOptions.of(task.config), task.paired)

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.paired:
            real_A, real_B = self.pipeline(batch["A"], batch["B"], same_params=True)
            out = {"A": real_A, "B": real_B}
        else:
            out = {"A": self.pipeline(batch["A"]), "B": self.pipeline(batch["B"])}
        if self.held_out_pipeline is not None:  # --preprocess crops to --crop-size
            shape = tuple(out["A"].shape[-2:])
            if shape != (self.size, self.size):
                raise InvalidArgumentError(
                    f"the augmentation makes {shape[1]}x{shape[0]} images, but the run trains "
                    f"at --crop-size {self.size}; an --augment must keep the size"
                )
        return _one_size(out)

    def held_out(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Held-out images (sample grids, eval) at the training size: whole, not cropped."""
        if self.held_out_pipeline is None:
            return _one_size(batch)
        return {k: self.held_out_pipeline(x) for k, x in batch.items()}


def _one_size(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The networks compare A's and B's images (a critic sees real B beside G(A)), so they
    must have one size; only --preprocess none can leave them apart."""
    size_a, size_b = tuple(batch["A"].shape[-2:]), tuple(batch["B"].shape[-2:])
    if size_a != size_b:
        raise DataError(
            f"--preprocess none keeps each image's size, but here domain A's images are "
            f"{size_a[1]}x{size_a[0]} and domain B's {size_b[1]}x{size_b[0]}; give both domains "
            f"images of one size, or use --preprocess resize_crop (the default)"
        )
    return batch
