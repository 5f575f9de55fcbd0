"""i2i: image-to-image translation with pluggable generators, discriminators, losses and tasks.

The public API is spelled like timm's: ``create_generator(name, **kwargs)`` and
``list_generators(pattern)``, and the same for discriminators, losses, augmentations and tasks.
Heavy modules (torch) are imported only when something needs them, so ``i2i --version`` is quick.
"""

from __future__ import annotations

from typing import Any

from i2i.core import registry as _registry
from i2i.core.errors import I2IError
from i2i.core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "I2IError",
    "Task",
    "Translator",
    "__version__",
    "create_augmentation",
    "create_discriminator",
    "create_feature_extractor",
    "create_generator",
    "create_loss",
    "create_task",
    "hookimpl",
    "list_augmentations",
    "list_discriminators",
    "list_feature_extractors",
    "list_generators",
    "list_losses",
    "list_tasks",
    "load",
]


def create_generator(name: str, **kwargs: Any) -> Any:
    """A generator network from the registry (e.g. ``resnet9``, ``unet256``)."""
    return _registry.generators.create(name, **kwargs)


def create_discriminator(name: str, **kwargs: Any) -> Any:
    """A discriminator network from the registry (e.g. ``patchgan``)."""
    return _registry.discriminators.create(name, **kwargs)


def create_loss(name: str, **kwargs: Any) -> Any:
    """A loss module from the registry (e.g. ``lsgan``, ``l1``)."""
    return _registry.losses.create(name, **kwargs)


def create_augmentation(name: str, **kwargs: Any) -> Any:
    """A Kornia augmentation module from the registry (e.g. ``hflip``)."""
    return _registry.augmentations.create(name, **kwargs)


def create_task(name: str, **kwargs: Any) -> Any:
    """A training task from the registry (e.g. ``cyclegan``)."""
    return _registry.tasks.create(name, **kwargs)


def create_feature_extractor(name: str, **kwargs: Any) -> Any:
    """An image feature extractor for FID/KID from the registry (e.g. ``inception_fid``)."""
    return _registry.feature_extractors.create(name, **kwargs)


def list_feature_extractors(pattern: str = "*") -> list[str]:
    return _registry.feature_extractors.list(pattern)


def list_generators(pattern: str = "*") -> list[str]:
    return _registry.generators.list(pattern)


def list_discriminators(pattern: str = "*") -> list[str]:
    return _registry.discriminators.list(pattern)


def list_losses(pattern: str = "*") -> list[str]:
    return _registry.losses.list(pattern)


def list_augmentations(pattern: str = "*") -> list[str]:
    return _registry.augmentations.list(pattern)


def list_tasks(pattern: str = "*") -> list[str]:
    return _registry.tasks.list(pattern)


def __getattr__(name: str) -> Any:
    if name == "Task":
        from i2i.train.task import Task

        return Task
    if name == "load":
        from i2i.infer.translator import load

        return load
    if name == "Translator":
        from i2i.infer.translator import Translator

        return Translator
    raise AttributeError(f"module 'i2i' has no attribute {name!r}")
