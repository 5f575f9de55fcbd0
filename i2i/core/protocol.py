"""The generator protocol: what the trainer, the Translator, ONNX export and CUT rely on.

A generator is an ``nn.Module`` built by a registered factory that

* takes ``in_channels`` and ``out_channels`` (or ``**kwargs``): tasks pass the data's channels,
  and a factory without them would silently build 3-channel networks for grey data;
* maps ``(N, in_channels, H, W)`` in [-1, 1] to ``(N, out_channels, H, W)`` in [-1, 1];
* says which sizes it takes with two positive integers, as attributes of the module (or of
  the class, when they do not depend on the arguments):
  ``size_multiple`` (H and W are multiples of it; the Translator pads to it; default 1) and
  ``min_size`` (the smallest H and W; default 1);
* optionally gives access to its features (PatchNCE): integer layers index a top-level
  ``model`` ``nn.Sequential`` (the official CUT convention), names reach any submodule.

The factory is checked when it registers, each network when it is created; a plugin that
breaks the protocol is refused with what to fix, rather than failing deep inside apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from i2i.core.errors import InvalidArgumentError

if TYPE_CHECKING:  # torch is imported when a network is built, not when a factory registers
    from torch import nn

SIZE_ATTRIBUTES = ("size_multiple", "min_size")

# The two ways a generator translates, by which it is named in configs, checkpoints and flags;
# each reads one domain and writes the other.
DIRECTIONS = ("AtoB", "BtoA")
SOURCE = {"AtoB": "A", "BtoA": "B"}
TARGET = {"AtoB": "B", "BtoA": "A"}
REVERSE = {"AtoB": "BtoA", "BtoA": "AtoB"}


def _positive(owner: str, attribute: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(
            f"{owner}.{attribute} must be a positive integer, got {value!r} (the generator "
            f"protocol, i2i/core/protocol.py)"
        )
    return value


def check_generator_factory(
    name: str, factory: Any, parameters: set[str], any_kwargs: bool
) -> None:
    """At registration: the factory takes the channels, and declared sizes are valid."""
    missing = [p for p in ("in_channels", "out_channels") if p not in parameters]
    if missing and not any_kwargs:
        raise InvalidArgumentError(
            f"generator {name!r} does not take {' and '.join(missing)}; a generator factory "
            f"must take in_channels and out_channels (the generator protocol, "
            f"i2i/core/protocol.py)"
        )
    for attribute in SIZE_ATTRIBUTES:
        if isinstance(factory, type) and hasattr(factory, attribute):
            _positive(factory.__name__, attribute, getattr(factory, attribute))


def size_limits(net: nn.Module) -> tuple[int, int]:
    """``(size_multiple, min_size)`` of a generator: the sizes it takes."""
    owner = type(net).__name__
    multiple, smallest = (_positive(owner, a, getattr(net, a, 1)) for a in SIZE_ATTRIBUTES)
    return multiple, smallest


def check_generator(name: str, net: Any) -> None:
    """On creation: a module with valid sizes."""
    from torch import nn

    if not isinstance(net, nn.Module):
        raise InvalidArgumentError(
            f"generator {name!r} built a {type(net).__name__}, not a torch.nn.Module"
        )
    size_limits(net)
