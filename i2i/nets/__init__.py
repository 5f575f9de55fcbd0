"""The built-in generators and discriminators, registered through the hooks any plugin uses.

Layouts follow junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py) key for key, so its
released checkpoints load into these modules with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from i2i.core.hookspecs import hookimpl
from i2i.nets.patchgan import nlayer, patchgan, pixel
from i2i.nets.resnet import resnet6, resnet9
from i2i.nets.timm_disc import timm_backbone
from i2i.nets.unet import unet128, unet256


@hookimpl
def register_generators(register: Callable[..., Any]) -> None:
    for factory in (resnet9, resnet6, unet256, unet128):
        register(factory)


@hookimpl
def register_discriminators(register: Callable[..., Any]) -> None:
    for factory in (patchgan, nlayer, pixel):
        register(factory)
    register(timm_backbone, "timm")
