"""The built-in parts, registered through the same hooks as any plugin's (as plugin ``i2i``).

Each part is registered by reference (``"module:factory"``): ``i2i list`` and ``i2i --help``
read names and summaries from the sources, and a part's module, with torch, is imported the
first time the part is built. Third-party plugins may register either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from i2i.core.hookspecs import hookimpl


@hookimpl
def register_generators(register: Callable[..., Any]) -> None:
    for name in ("resnet9", "resnet6"):
        register(f"i2i.nets.resnet:{name}")
    for name in ("unet256", "unet128"):
        register(f"i2i.nets.unet:{name}")


@hookimpl
def register_discriminators(register: Callable[..., Any]) -> None:
    for name in ("patchgan", "nlayer", "pixel"):
        register(f"i2i.nets.patchgan:{name}")
    register("i2i.nets.timm_disc:timm_backbone", "timm")
    register("i2i.nets.projected:projected")


@hookimpl
def register_losses(register: Callable[..., Any]) -> None:
    register("i2i.losses:LSGANLoss", "lsgan")
    register("i2i.losses:VanillaGANLoss", "vanilla")
    register("i2i.losses:HingeGANLoss", "hinge")
    register("i2i.losses:WGANGPLoss", "wgangp")
    register("i2i.losses:PatchNCELoss", "patchnce")
    register("i2i.losses:l1")
    register("i2i.losses:l2")


@hookimpl
def register_augmentations(register: Callable[..., Any]) -> None:
    for name in ("resize_crop", "scale_width", "hflip", "color_jitter", "affine", "center_resize"):
        register(f"i2i.augment:{name}")
    register("i2i.diffaugment:Translation", "translation")
    register("i2i.diffaugment:Cutout", "cutout")
    register("i2i.diffaugment:Color", "color")


@hookimpl
def register_feature_extractors(register: Callable[..., Any]) -> None:
    register("i2i.eval.inception:inception_fid")
    register("i2i.eval.extractors:efficientnet_lite0")
