"""The hooks a plugin can implement, pytest/llm style.

Each ``register_*`` hook receives a ``register(factory, name=None)`` callable; the name defaults
to the factory's ``name`` attribute or ``__name__``. i2i's own parts use exactly these hooks.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("i2i")
hookimpl = pluggy.HookimplMarker("i2i")


@hookspec
def register_generators(register: Any) -> None:
    """Register generator networks (image -> image)."""


@hookspec
def register_discriminators(register: Any) -> None:
    """Register discriminator networks (image -> real/fake logits)."""


@hookspec
def register_losses(register: Any) -> None:
    """Register losses: GAN objectives and reconstruction losses."""


@hookspec
def register_augmentations(register: Any) -> None:
    """Register augmentation factories returning Kornia modules."""


@hookspec
def register_tasks(register: Any) -> None:
    """Register training tasks (subclasses of ``i2i.Task``)."""


@hookspec
def register_feature_extractors(register: Any) -> None:
    """Register image feature extractors for FID/KID (e.g. Inception-v3)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the ``i2i`` command group."""
