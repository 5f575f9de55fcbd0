"""The trainer's device-side augmentation of each batch, from its own options.

Random resized crops, flips and any ``--augment`` extras run on the device with Kornia. A paired
task (pix2pix) gets one set of random parameters for A and B, so pairs stay aligned; an unpaired
task independent ones.
"""

from __future__ import annotations

from typing import Any

import torch

from i2i.augment import build_augmentation


def augmentation_specs(config: dict[str, Any]) -> list[Any]:
    """The Kornia pipeline that the trainer's options describe (preprocess, flip, extras)."""
    specs: list[Any] = []
    if config["preprocess"] != "none":
        sizes = {"load_size": config["load_size"], "crop_size": config["crop_size"]}
        specs.append((config["preprocess"], sizes))
    if config["flip"]:
        specs.append("hflip")
    if config["augment"]:
        specs += [s.strip() for s in config["augment"].split(";") if s.strip()]
    return specs


class BatchAugmentation:
    def __init__(self, config: dict[str, Any], paired: bool) -> None:
        self.pipeline = build_augmentation(augmentation_specs(config))
        self.paired = paired

    def __call__(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.paired:
            real_A, real_B = self.pipeline(batch["A"], batch["B"], same_params=True)
            return {"A": real_A, "B": real_B}
        return {"A": self.pipeline(batch["A"]), "B": self.pipeline(batch["B"])}
