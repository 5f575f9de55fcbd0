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
        need = f"{arch} needs height and width divisible by {multiple}{at_least}"
        fit = max(minimum, -(-max(height, width) // multiple) * multiple)
        raise InputSizeError(
            f"{need}, got {height}x{width}; resize or pad the input (i2i apply pads automatically)",
            need=need,
            fit=-(-fit // multiple) * multiple,
        )


def check_positive(name: str, value: object, allow_none: bool = False) -> int | None:
    """A count (batch size, tile, images) must be an int >= 1; bools are not counts."""
    if allow_none and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_text_path(path: object, flag: str) -> None:
    """A path that i2i records (config.json, model cards, reports) must be text: a name with
    bytes that are not UTF-8 is refused with what to do, instead of failing in some writer."""
    text = str(path)
    if not text.strip():
        raise InvalidArgumentError(f"{flag} is empty; give a folder ('.' for this one)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise InvalidArgumentError(
            f"{flag} {shown} is not valid UTF-8; i2i records paths in JSON and reports, so "
            f"rename it (or link to it under a UTF-8 name)"
        ) from None


# An image goes through the network whole only up to this many pixels: its activations grow with
# its pixels (resnet9 at ngf 64 holds about 1 GB per megapixel in fp32), and a file of a few
# kilobytes can claim millions. Bigger images are translated in tiles (``--tile``).
UNTILED_MAX_PIXELS = 2048 * 2048


def check_pixels(
    height: int, width: int, tile: int | None, limit: int, other_way: str = ""
) -> None:
    """Refuse an image that would go through the network whole above ``limit`` pixels, naming
    the way out (tiles, and ``other_way`` where the caller has one), before any memory is spent
    on it."""
    if (tile is None or max(height, width) <= tile) and height * width > limit:
        raise InputSizeError(
            f"a {width}x{height} image is over the {limit / 1e6:.1f}-megapixel budget of one "
            f"network pass; translate it in tiles with --tile 512 (Python: tile=512){other_way}"
        )
