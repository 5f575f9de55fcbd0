"""i2i: image-to-image translation with pluggable generators, discriminators, losses and tasks.

The public API is spelled like timm's: ``create_generator(name, **kwargs)`` and
``list_generators(pattern)``, and the same for discriminators, losses, augmentations and tasks.
Heavy modules (torch) are imported only when something needs them, so ``i2i --version`` is quick.
"""

from __future__ import annotations

from typing import Any

from i2i.errors import I2IError
from i2i.hookspecs import hookimpl
from i2i.registry import augmentations, discriminators, generators, losses, tasks

__version__ = "0.1.0"

__all__ = [
    "I2IError",
    "Task",
    "__version__",
    "augmentations",
    "create_augmentation",
    "create_discriminator",
    "create_generator",
    "create_loss",
    "create_task",
    "discriminators",
    "generators",
    "hookimpl",
    "list_augmentations",
    "list_discriminators",
    "list_generators",
    "list_losses",
    "list_tasks",
    "losses",
    "tasks",
]


def create_generator(name: str, **kwargs: Any) -> Any:
    """A generator network from the registry (e.g. ``resnet9``, ``unet256``)."""
    return generators.create(name, **kwargs)


def create_discriminator(name: str, **kwargs: Any) -> Any:
    """A discriminator network from the registry (e.g. ``patchgan``)."""
    return discriminators.create(name, **kwargs)


def create_loss(name: str, **kwargs: Any) -> Any:
    """A loss module from the registry (e.g. ``lsgan``, ``l1``)."""
    return losses.create(name, **kwargs)


def create_augmentation(name: str, **kwargs: Any) -> Any:
    """A Kornia augmentation module from the registry (e.g. ``hflip``)."""
    return augmentations.create(name, **kwargs)


def create_task(name: str, **kwargs: Any) -> Any:
    """A training task from the registry (e.g. ``cyclegan``)."""
    return tasks.create(name, **kwargs)


def list_generators(pattern: str = "*") -> list[str]:
    return generators.list(pattern)


def list_discriminators(pattern: str = "*") -> list[str]:
    return discriminators.list(pattern)


def list_losses(pattern: str = "*") -> list[str]:
    return losses.list(pattern)


def list_augmentations(pattern: str = "*") -> list[str]:
    return augmentations.list(pattern)


def list_tasks(pattern: str = "*") -> list[str]:
    return tasks.list(pattern)


def __getattr__(name: str) -> Any:
    if name == "Task":
        from i2i.train.task import Task

        return Task
    raise AttributeError(f"module 'i2i' has no attribute {name!r}")
