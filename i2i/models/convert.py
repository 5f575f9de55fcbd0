"""Import official pytorch-CycleGAN-and-pix2pix generator checkpoints (``latest_net_G.pth``).

The built-in networks share the official state-dict layout, so conversion is: read the tensors
safely (``weights_only=True``), strip DataParallel's ``module.`` prefixes, apply the official
InstanceNorm patch (old checkpoints carry running statistics that instance norm without
tracking does not have), check every shape against the architecture named on the command line,
and write a model folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from i2i.core.errors import CheckpointError, InvalidArgumentError, one_line
from i2i.core.registry import generators
from i2i.models.build import check_fit, create_network, load_strict, shapes_of
from i2i.models.folder import make_config, net_spec, save_model
from i2i.models.safefiles import regular_file

STALE_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def read_official(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).exists():
        raise CheckpointError(f"{path} does not exist")
    real = regular_file(Path(path), None, "checkpoint")  # a FIFO would block the read
    try:
        state = torch.load(real, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except Exception as error:  # pickle with code, truncated file, not a torch file
        raise CheckpointError(
            f"{path} is not a plain PyTorch state dict that can be loaded safely "
            f"({one_line(error)})"
        ) from None
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def patch_instance_norm(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """Drop statistics that the official code's instance-norm layers never used."""
    modules = dict(net.named_modules())
    out = {}
    for key, value in state.items():
        owner, _, leaf = key.rpartition(".")
        module = modules.get(owner)
        stale = (
            isinstance(module, nn.InstanceNorm2d)
            and leaf in STALE_NORM_KEYS
            and getattr(module, "running_mean", None) is None
        )
        if not stale:
            out[key] = value
    return out


def _unet_levels(keys: Any) -> int:
    """The levels of an official U-Net state dict (each nests one ``.model.`` deeper): 7 for
    unet_128, 8 for unet_256; 0 for anything else."""
    return max((k.count(".model.") for k in keys if k.startswith("model.model.")), default=0)


def _hint(state: Mapping[str, torch.Tensor], net: nn.Module) -> str:
    """Suggest the --gen / --gen-kw that would match, for the common mismatches."""
    own = net.state_dict()
    levels, own_levels = _unet_levels(state), _unet_levels(own)
    if levels:  # an official U-Net (pix2pix)
        hints = []
        if levels != own_levels:
            known = {7: "unet128", 8: "unet256"}.get(levels)
            hints.append(f"--gen {known}" if known else f"a U-Net of {levels} levels")
        width = state["model.model.0.weight"].shape[0] if "model.model.0.weight" in state else None
        if width is not None and (
            levels != own_levels or own["model.model.0.weight"].shape[0] != width
        ):
            hints.append(f"--gen-kw ngf={width}")
        return f"; try {' '.join(hints)}" if hints else ""
    hints = []
    first = state.get("model.1.weight")
    mine = own.get("model.1.weight")
    if first is not None and (mine is None or first.shape[0] != mine.shape[0]):
        hints.append(f"--gen-kw ngf={first.shape[0]}")
    blocks = {m.group(1) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    own_blocks = {m.group(1) for k in own if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
    is_cut = any(k.endswith(".filt") for k in state)
    own_cut = any(k.endswith(".filt") for k in own)
    if is_cut != own_cut:
        # CUT/FastCUT generators blur-pool (``filt`` buffers); CycleGAN's use strided convs.
        hints.append(f"--gen-kw antialias={'true' if is_cut else 'false'}")
    if blocks and len(blocks) != len(own_blocks):
        hints.append(
            f"--gen resnet{len(blocks)}" if len(blocks) in (6, 9) else f"n_blocks={len(blocks)}"
        )
    return f"; try {' '.join(hints)}" if hints else ""


def load_official_generator(path: Path, gen: str, gen_kwargs: Mapping[str, Any]) -> nn.Module:
    """A registered generator holding the official checkpoint's weights, checked strictly.

    The architecture is first built on the meta device, so a wrong ``--gen-kw`` is told from
    the tensors' shapes before any memory is allocated.
    """
    spec = {"name": gen, "kwargs": dict(gen_kwargs)}
    role = f"{Path(path).name} ({gen})"
    state = read_official(Path(path))
    with torch.device("meta"):
        planned = create_network(generators, spec, "generator")
    state = patch_instance_norm(state, planned)
    try:
        check_fit(shapes_of(planned.state_dict()), shapes_of(state), role)
    except CheckpointError as error:
        raise CheckpointError(f"{error}{_hint(state, planned)}") from None
    net = create_network(generators, spec, "generator")
    load_strict(net, state, role)
    return net.eval()


def convert_official(
    path: Path,
    out_dir: Path,
    gen: str,
    gen_kwargs: Mapping[str, Any] | None = None,
    *,
    direction: str = "AtoB",
    task: str = "cyclegan",
    domains: Mapping[str, str] | None = None,
    size: int | None = 256,
    overwrite: bool = False,
) -> Path:
    """Write a single-direction model folder from an official ``*_net_G*.pth`` file."""
    if task not in ("cyclegan", "pix2pix"):
        raise InvalidArgumentError(
            f"task must be cyclegan or pix2pix (the official code's); got {task!r}"
        )
    names = list((domains or {"A": "A", "B": "B"}).values())
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"the two domains need two names; got {names}")
    gen_kwargs = dict(gen_kwargs or {})
    net = load_official_generator(path, gen, gen_kwargs)
    config = make_config(
        task,
        {direction: net_spec(generators, gen, gen_kwargs)},
        domains=domains,
        size=size,
        training={"converted_from": Path(path).name},
    )
    return save_model(out_dir, config, {direction: net}, overwrite=overwrite)
