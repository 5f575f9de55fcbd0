"""i2i: image-to-image translation with pluggable generators, discriminators, losses and tasks.

The public API is spelled like timm's: ``create_generator(name, **kwargs)`` and
``list_generators(pattern)``, and the same for discriminators, losses, augmentations and tasks.
Heavy modules (torch) are imported only when something needs them, so ``i2i --version`` is quick.
"""

from __future__ import annotations

from typing import Any

from i2i.core import registry as _registry
from i2i.core.errors import I2IError, I2IWarning, InvalidArgumentError
from i2i.core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "TOY_TRAINING",
    "AlignedDataset",
    "Bridge",
    "GANTask",
    "I2IError",
    "I2IWarning",
    "ImagePool",
    "InvalidArgumentError",
    "MeanShift",
    "MeanShiftOptions",
    "Optimizing",
    "Option",
    "OptionGroup",
    "PatchNCEOptions",
    "PatchProjection",
    "Recipe",
    "RegionMap",
    "Task",
    "Translator",
    "UnalignedDataset",
    "__version__",
    "bridge_times",
    "bridge_update",
    "cached_folder",
    "cell_moments",
    "check_input_size",
    "colour_moments",
    "colour_pixels",
    "colour_turn",
    "create_augmentation",
    "create_discriminator",
    "create_feature_extractor",
    "create_generator",
    "create_loss",
    "create_task",
    "extract_features",
    "find_images",
    "fit",
    "has_batch_norm",
    "hookimpl",
    "linear_colour_map",
    "list_augmentations",
    "list_discriminators",
    "list_feature_extractors",
    "list_generators",
    "list_losses",
    "list_tasks",
    "load",
    "mapped_colours",
    "nce_layers",
    "option",
    "patch_nce",
    "probe_features",
    "region_maps",
    "resnet_decode",
    "toy_dataset_dir",
    "unwrap",
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
    """A training task from the registry (e.g. ``cyclegan``), built with its options.

    Not through ``Registry.create``, which prefixes a factory's error with its arguments: a
    task checks its options itself, and each message already names the option and the fix.
    """
    return _registry.tasks.get(name).factory(**kwargs)


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


# The rest of the public API, imported on first use (name -> module): everything a task plugin
# needs, so that plugins import ``i2i`` and never an i2i submodule.
_LAZY = {
    "Task": "i2i.kit.task",
    "Recipe": "i2i.kit.task",
    "TOY_TRAINING": "i2i.kit.task",
    "has_batch_norm": "i2i.kit.task",
    "GANTask": "i2i.kit.gan",
    "Optimizing": "i2i.kit.step",
    "Option": "i2i.kit.options",
    "OptionGroup": "i2i.kit.options",
    "option": "i2i.kit.options",
    "PatchNCEOptions": "i2i.kit.nce",
    "nce_layers": "i2i.kit.nce",
    "probe_features": "i2i.kit.nce",
    "ImagePool": "i2i.kit.pool",
    "MeanShift": "i2i.kit.shift",
    "MeanShiftOptions": "i2i.kit.shift",
    "colour_moments": "i2i.kit.colour",
    "cell_moments": "i2i.kit.colour",
    "colour_pixels": "i2i.kit.colour",
    "colour_turn": "i2i.kit.colour",
    "linear_colour_map": "i2i.kit.colour",
    "region_maps": "i2i.kit.colour",
    "UnalignedDataset": "i2i.data",
    "AlignedDataset": "i2i.data",
    "find_images": "i2i.data",
    "toy_dataset_dir": "i2i.toydata",
    "cached_folder": "i2i.toydata",
    "extract_features": "i2i.nets.features",
    "PatchProjection": "i2i.nets.heads",
    "patch_nce": "i2i.nets.heads",
    "resnet_decode": "i2i.nets.resnet",
    "mapped_colours": "i2i.nets.resnet",
    "RegionMap": "i2i.nets.resnet",
    "Bridge": "i2i.bridge",
    "bridge_times": "i2i.bridge",
    "bridge_update": "i2i.bridge",
    "unwrap": "i2i.core.device",
    "check_input_size": "i2i.core.checks",
    "fit": "i2i.train.trainer",
    "load": "i2i.infer.translator",
    "Translator": "i2i.infer.translator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'i2i' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
