"""Argument and input-size checks shared by the networks, inference and evaluation.

They raise i2i's user-facing errors, so a wrong option or image size reads as one line saying
what would work, instead of a torch traceback from deep inside a layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2i.core.errors import InputSizeError, InvalidArgumentError


def check_choice(option: str, value: object, allowed: Sequence[str]) -> None:
    """Reject ``value`` unless it is one of ``allowed``, naming every allowed value."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise InvalidArgumentError(f"{option} must be one of {choices}; got {value!r}")


def check_input_size(x: torch.Tensor, arch: str, multiple: int, minimum: int) -> None:
    """Reject an image size that would crash or silently change the output size.

    Only shapes are read, so this costs no device sync and traces cleanly under torch.compile.
    """
    height, width = x.shape[-2], x.shape[-1]
    if height % multiple or width % multiple or height < minimum or width < minimum:
        at_least = f" and at least {minimum}" if minimum > multiple else ""
        raise InputSizeError(
            f"{arch} needs height and width divisible by {multiple}{at_least}, got "
            f"{height}x{width}; resize or pad the input (i2i apply pads automatically)"
        )


def check_positive(name: str, value: object, allow_none: bool = False) -> int | None:
    """A count (batch size, tile, images) must be an int >= 1; bools are not counts."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value
