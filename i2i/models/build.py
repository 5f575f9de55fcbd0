"""Building the networks a model's config describes, checked against their weights first.

A config read from a file is untrusted: each network is planned on the meta device (no memory)
and its tensor shapes compared with the weights file's before it is built for real and loaded
strictly. A factory that cannot be planned there is built under a memory budget, what its
weights hold with room, so a config describing something far bigger fails before it allocates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from i2i.core.errors import CheckpointError, I2IError, UnknownComponentError, one_line
from i2i.core.registry import Registry, generators
from i2i.models.checkpoint import split_state_dicts
from i2i.models.safefiles import regular_file


def create_network(registry: Registry, spec: Mapping[str, Any], role: str) -> nn.Module:
    """Build a network from its config entry; a name no plugin provides is a clear error."""
    name = spec.get("name")
    if name not in registry:
        plugin = spec.get("plugin") or "an unknown plugin"
        package = spec.get("package")
        install = f"pip install {package}" if package else "install that plugin"
        raise UnknownComponentError(
            f"this model's {role} needs {registry.kind} {name!r} from plugin {plugin!r}, which is "
            f"not installed; {install} (then `i2i list {registry.plural}` shows it)"
        )
    try:
        return registry.create(name, **spec.get("kwargs", {}))
    except I2IError as error:
        raise CheckpointError(
            f"this model's {role} config does not fit {name!r}: {error}"
        ) from None


Shapes = Mapping[str, tuple[int, ...]]


def check_fit(own: Shapes, found: Shapes, role: str) -> None:
    """Every tensor the network has, with the file's shape, and nothing else, or one line
    that says what differs."""
    missing, unexpected = sorted(set(own) - set(found)), sorted(set(found) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"weights for {role} do not match its network: "
            f"{len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for key, shape in own.items():
        if tuple(found[key]) != tuple(shape):
            raise CheckpointError(
                f"weights for {role} do not match its network: {key} is {tuple(found[key])} in "
                f"the file but {tuple(shape)} in the network the config describes"
            )


def shapes_of(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def planned_shapes(
    registry: Registry, spec: Mapping[str, Any], role: str, budget: int
) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of the network ``spec`` describes, built on the meta device so that
    an untrusted config (``"ngf": 20000``) allocates nothing before its shapes are checked.

    A third party's factory that needs real values (``.item()``) cannot be planned there; it
    is built for real under ``budget`` bytes (what its weights file holds, with room), so a
    config that describes something bigger fails before it takes the memory.
    """
    try:
        with torch.device("meta"):
            return shapes_of(create_network(registry, spec, role).state_dict())
    except Exception:  # any failure: try for real, where the error is final
        pass
    try:
        with AllocationBudget(budget):
            return shapes_of(create_network(registry, spec, role).state_dict())
    except I2IError:
        raise
    except OverBudget:
        raise CheckpointError(
            f"this model's {role} config describes a network far bigger than its weights file "
            f"(over {budget >> 20} MiB while building it); the config was edited or belongs to "
            f"other weights"
        ) from None
    except Exception as error:  # a factory's own error on values from a file
        raise CheckpointError(
            f"this model's {role} config does not build {spec.get('name')!r}: {one_line(error)}"
        ) from error


def weight_bytes(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """What a network of these tensor shapes holds in float32."""
    return 4 * sum(math.prod(shape) for shape in shapes.values())


class OverBudget(Exception):
    """Raised by ``AllocationBudget`` before a tensor beyond its limit is made."""


class AllocationBudget(TorchDispatchMode):
    """Refuses tensor creations beyond ``limit`` bytes in total, before each one allocates."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.used = limit, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        size = args[0] if args and isinstance(args[0], list | tuple) else None
        if size is not None and func.overloadpacket in _FACTORIES:
            dtype = kwargs.get("dtype") or torch.get_default_dtype()
            numel = math.prod(int(n) for n in size) if size else 1
            self.used += max(numel, 0) * dtype.itemsize
            if self.used > self.limit:
                raise OverBudget(f"{self.used} bytes")
        return func(*args, **kwargs)


_FACTORIES = {
    torch.ops.aten.empty,
    torch.ops.aten.empty_strided,
    torch.ops.aten.zeros,
    torch.ops.aten.ones,
    torch.ops.aten.full,
    torch.ops.aten.rand,
    torch.ops.aten.randn,
}


def build_checked(
    registry: Registry, spec: Mapping[str, Any], state: Mapping[str, torch.Tensor], role: str
) -> nn.Module:
    """The network ``spec`` describes holding ``state``: shapes checked first (no memory),
    then built for real and loaded strictly."""
    found = shapes_of(state)
    check_fit(planned_shapes(registry, spec, role, budget_for(found)), found, role)
    net = create_network(registry, spec, role)
    load_strict(net, state, role)
    return net


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], role: str) -> None:
    """``load_state_dict(strict=True)`` with the mismatch told in one line."""
    check_fit(shapes_of(net.state_dict()), shapes_of(state), role)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"weights for {role} do not load: {one_line(error, 300)}") from None


def build_generators(
    config: Mapping[str, Any],
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    device: torch.device | str = "cpu",
) -> dict[str, nn.Module]:
    """Generators per direction, built from the config and loaded strictly, in eval mode."""
    nets: dict[str, nn.Module] = {}
    for direction, spec in config["generators"].items():
        role = f"generator {direction}"
        net = build_checked(generators, spec, weights.get(direction, {}), role)
        nets[direction] = net.to(device).eval()
    return nets


def budget_for(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Memory a network may take while it is planned for real: its weights with room for the
    temporaries of initialisation."""
    return 4 * weight_bytes(shapes) + (64 << 20)


def header_shapes(path: Path) -> dict[str, dict[str, tuple[int, ...]]]:
    """Tensor shapes per network from a safetensors header, without reading any tensor."""
    path = regular_file(path, path.parent, "weights file")
    try:
        with safe_open(str(path), framework="pt") as f:
            flat = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (OSError, SafetensorError, ValueError) as error:
        raise CheckpointError(
            f"cannot read {path}: not a safetensors file ({one_line(error)})"
        ) from None
    return split_state_dicts(flat)
