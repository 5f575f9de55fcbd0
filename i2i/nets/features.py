"""Intermediate features of any generator, for losses that compare what a network sees (PatchNCE).

Integer layers index the generator's top-level ``model`` sequence, the official CUT convention
(``netG(x, layers, encode_only=True)``); strings name any submodule (``"model.12"``, a third
party's ``"encoder.block3"``). The forward stops after the last requested layer, so encoding
costs only the encoder's share of a full pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from i2i.core.device import unwrap
from i2i.core.errors import InvalidArgumentError


class _Done(Exception):
    """Raised by the last hook to stop the forward pass early."""


def _resolve(net: nn.Module, layer: int | str) -> nn.Module:
    if isinstance(layer, bool) or not isinstance(layer, int | str):
        raise InvalidArgumentError(f"a layer is an int or a module name, got {layer!r}")
    if isinstance(layer, int):
        model = getattr(net, "model", None)
        if not isinstance(model, nn.Sequential):
            raise InvalidArgumentError(
                f"{type(net).__name__} has no top-level `model` sequence to index; name its "
                f"layers instead (e.g. {', '.join(n for n, _ in list(net.named_children())[:3])})"
            )
        if not -len(model) <= layer < len(model):
            raise InvalidArgumentError(f"layer {layer} is outside model[0..{len(model) - 1}]")
        return model[layer]
    try:
        return net.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in net.named_modules() if n][:8]
        raise InvalidArgumentError(
            f"{type(net).__name__} has no submodule {layer!r}; it has e.g. {', '.join(names)}"
        ) from None


def extract_features(
    net: nn.Module, x: torch.Tensor, layers: Sequence[int | str]
) -> list[torch.Tensor]:
    """The outputs of ``layers`` of ``net`` for input ``x``, in the order of ``layers``.

    Each feature is the module's output as the forward pass produced it (gradients flow). A
    module called more than once contributes its first call.
    """
    net = unwrap(net)
    if not layers:
        raise InvalidArgumentError("extract_features needs at least one layer")
    model = getattr(net, "model", None)
    if all(isinstance(layer, int) and not isinstance(layer, bool) for layer in layers) and (
        isinstance(model, nn.Sequential)
    ):
        return _from_sequence(net, x, [int(layer) for layer in layers])
    modules = [_resolve(net, layer) for layer in layers]
    found: dict[int, torch.Tensor] = {}

    def hook_for(index: int):
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            found.setdefault(index, output)
            if len(found) == len(modules):
                raise _Done

        return hook

    handles = [m.register_forward_hook(hook_for(i)) for i, m in enumerate(modules)]
    try:
        net(x)
    except _Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [layers[i] for i in range(len(modules)) if i not in found]
    if missing:
        raise InvalidArgumentError(f"layers {missing} never ran in {type(net).__name__}'s forward")
    return [found[i] for i in range(len(modules))]


def _from_sequence(net: nn.Module, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """Walk ``net.model``, keep the outputs of the listed indices, stop after the last one."""
    model = net.model
    for layer in layers:
        _resolve(net, layer)  # bounds, with the usual message
    wanted = [layer % len(model) for layer in layers]
    last = max(wanted)
    kept: dict[int, torch.Tensor] = {}
    feat = x
    for index, module in enumerate(model):
        feat = module(feat)
        if index in wanted:
            kept[index] = feat
        if index == last:
            break
    return [kept[layer] for layer in wanted]
