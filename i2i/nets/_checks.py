"""Option and input-size checks shared by the built-in networks.

They raise i2i's user-facing errors, so a wrong option or image size reads as one line saying
what would work, instead of a torch traceback from deep inside a layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2i.errors import InputSizeError, InvalidArgumentError


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
