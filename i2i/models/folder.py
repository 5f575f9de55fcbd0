"""The model folder: ``config.json`` + ``model.safetensors`` + a ``README.md`` model card.

``config.json`` fully determines the architecture: each direction names its registered generator
and the exact kwargs, so a checkpoint can never be loaded into the wrong network. Loading is
strict: every name must resolve in the registries (a missing plugin is named in the error) and
every tensor must match. Only JSON and safetensors are ever read, never pickle or code.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from i2i.core.checks import check_text_path
from i2i.core.errors import CheckpointError, I2IError, UnknownComponentError, writing
from i2i.core.registry import Registry, discriminators, generators
from i2i.models.checkpoint import (
    flatten_state_dicts,
    share_like_umask,
    split_state_dicts,
    write_file,
)
from i2i.models.losslog import LOSS_LOG, read_records
from i2i.models.safefiles import (
    DIRECTIONS,
    check_net_spec,
    is_size,
    read_json,
    regular_file,
    short,
)

MODEL_FORMAT = "i2i-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
SAMPLES = "samples.png"


def net_spec(registry: Registry, name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-able description of a registered network, with the plugin that provides it."""
    component = registry.get(name)
    return {"name": name, "kwargs": dict(kwargs), "plugin": component.plugin}


def make_config(
    task: str,
    generator_specs: Mapping[str, Mapping[str, Any]],
    *,
    domains: Mapping[str, str] | None = None,
    size: int | None = None,
    discriminator_specs: Mapping[str, Mapping[str, Any]] | None = None,
    training: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    license: str | None = None,
    datasets: list[str] | None = None,
) -> dict[str, Any]:
    from i2i import __version__

    unknown = sorted(set(generator_specs) - set(DIRECTIONS))
    if unknown or not generator_specs:
        raise I2IError(
            f"generator directions must be among {DIRECTIONS}, got {sorted(generator_specs)}"
        )
    return {
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "i2i_version": __version__,
        "task": task,
        "domains": dict(domains or {"A": "A", "B": "B"}),
        "generators": {d: dict(s) for d, s in generator_specs.items()},
        "discriminators": {k: dict(s) for k, s in (discriminator_specs or {}).items()},
        "preprocess": {"size": size, "range": [-1, 1], "resize": "none: any size, padded"},
        "training": dict(training or {}),
        "metrics": dict(metrics or {}),
        "license": license,
        "datasets": list(datasets or []),
    }


# -- reading ---------------------------------------------------------------------------------
def read_config(folder: Path) -> dict[str, Any]:
    """A model's config.json, read as untrusted data (a regular file inside the folder, size-
    and depth-limited) and checked enough that nothing later trips over its shape."""
    path = Path(folder) / CONFIG
    if not path.exists():
        raise CheckpointError(f"{folder} is not an i2i model: it has no {CONFIG}")
    config = read_json(path, Path(folder))
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f'{folder} is not an i2i model ({CONFIG} lacks "format": "{MODEL_FORMAT}")'
        )
    version = config.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(
            f'{path}: "format_version" must be a whole number, got {version!r}; the file was '
            f"edited or written by another tool"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{folder} uses model format {version}; upgrade i2i to load it")
    _check_specs(config, path)
    return config


def _check_specs(config: Mapping[str, Any], path: Path) -> None:
    """Every value the code reads has the type it expects: networks are {"name": str,
    "kwargs": {argument: value}}, directions are AtoB / BtoA, domains and the card's fields
    are plain text. Values inside kwargs are checked by the registry when planning."""
    gens = config.get("generators")
    if not isinstance(gens, dict) or not gens or not set(gens) <= set(DIRECTIONS):
        raise CheckpointError(
            f'{path}: "generators" must map {" and/or ".join(DIRECTIONS)} to a network, got '
            f"{short(gens)}"
        )
    discs = config.get("discriminators", {})
    if not isinstance(discs, dict):
        raise CheckpointError(f'{path}: "discriminators" must be a mapping, got {short(discs)}')
    for key, spec in [*gens.items(), *discs.items()]:
        check_net_spec(spec, f"{path}: network {key}")
    domains = config.get("domains", {})
    if not isinstance(domains, dict) or not all(
        key in ("A", "B") and isinstance(name, str) and 0 < len(name) <= 200
        for key, name in domains.items()
    ):
        raise CheckpointError(
            f'{path}: "domains" must map A and B to names (text), got {short(domains)}'
        )
    for key in ("training", "metrics", "preprocess"):
        if not isinstance(config.get(key, {}), dict):
            raise CheckpointError(f'{path}: "{key}" must be a mapping, got {short(config[key])}')
    size = config.get("preprocess", {}).get("size")
    if not is_size(size):
        raise CheckpointError(
            f'{path}: "preprocess" "size" must be a number of pixels, got {size!r}'
        )
    if not isinstance(config.get("task", ""), str) or not isinstance(
        config.get("license") or "", str
    ):
        raise CheckpointError(f'{path}: "task" and "license" must be text')
    datasets = config.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise CheckpointError(f'{path}: "datasets" must be a list of names, got {short(datasets)}')


def create_network(registry: Registry, spec: Mapping[str, Any], role: str) -> nn.Module:
    """Build a network from its config entry; a name no plugin provides is a clear error."""
    name = spec.get("name")
    if name not in registry:
        plugin = spec.get("plugin") or "an unknown plugin"
        raise UnknownComponentError(
            f"this model's {role} needs {registry.kind} {name!r} from plugin {plugin!r}, which is "
            f"not installed; install that plugin (then `i2i list {registry.plural}` shows it)"
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
        detail = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(
            f"this model's {role} config does not build {spec.get('name')!r}: {detail}"
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
    check_fit(planned_shapes(registry, spec, role, _budget(found)), found, role)
    net = create_network(registry, spec, role)
    load_strict(net, state, role)
    return net


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], role: str) -> None:
    """``load_state_dict(strict=True)`` with the mismatch told in one line."""
    check_fit(shapes_of(net.state_dict()), shapes_of(state), role)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = " ".join(str(error).split())[:300]
        raise CheckpointError(f"weights for {role} do not load: {first}") from None


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


def _budget(shapes: Mapping[str, tuple[int, ...]]) -> int:
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
            f"cannot read {path}: not a safetensors file ({' '.join(str(error).split())})"
        ) from None
    return split_state_dicts(flat)


def verify_model(folder: Path) -> dict[str, Any]:
    """Check a model folder without allocating it: the config resolves in the registries and
    every generator's shapes match the safetensors header. Returns the config.

    Only the generators, the networks inference runs, are planned: a discriminator (saved for
    fine-tuning) is never built to read a model, so nothing it names is downloaded or opened.
    """
    config = read_config(folder)
    shapes = header_shapes(Path(folder) / WEIGHTS)
    for direction, spec in config["generators"].items():
        role = f"generator {direction}"
        found = shapes.get(direction, {})
        check_fit(planned_shapes(generators, spec, role, _budget(found)), found, role)
    return config


def read_weights(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    path = regular_file(Path(folder) / WEIGHTS, Path(folder), "weights file")
    try:
        return split_state_dicts(load_file(str(path)))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read {Path(folder) / WEIGHTS}: {error}") from None


def load_model(
    folder: Path, device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The config and the generators (per direction, eval mode) of a model folder."""
    config = verify_model(folder)
    return config, build_generators(config, read_weights(folder), device)


def load_discriminators(folder: Path) -> dict[str, nn.Module]:
    """Discriminators saved with ``--with-discriminators``, for fine-tuning."""
    config = verify_model(folder)
    weights = read_weights(folder)
    return {
        name: build_checked(discriminators, spec, weights.get(name, {}), f"discriminator {name}")
        for name, spec in config.get("discriminators", {}).items()
    }


# -- writing ---------------------------------------------------------------------------------
def prepare_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an i2i model (or an empty folder), unless asked."""
    check_text_path(folder, "-o")
    if folder.exists() and not folder.is_dir():
        raise I2IError(f"{folder} is a file, not a folder; choose another -o")
    if not folder.exists() or not any(folder.iterdir()):
        folder.parent.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise I2IError(f"{folder} already exists and is not empty; pass --overwrite to replace it")
    try:
        read_config(folder)
    except CheckpointError:
        raise I2IError(
            f"{folder} is not an i2i model folder; refusing to replace it (choose another -o)"
        ) from None


def publish_folder(tmp: Path, folder: Path) -> None:
    """Move a finished temp folder into place; an old model is swapped out, then removed.

    Between the two renames the old model still exists under a hidden name, which the next
    write cleans up, so a kill never leaves a half-written model under ``folder``.
    """
    share_like_umask(tmp)  # mkdtemp makes it private; a model folder is meant to be shared
    backup = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(backup, ignore_errors=True)
    if folder.exists():
        os.rename(folder, backup)
    os.rename(tmp, folder)
    shutil.rmtree(backup, ignore_errors=True)


def save_model(
    folder: Path,
    config: Mapping[str, Any],
    networks: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
    *,
    samples: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model folder atomically: a temp folder renamed into place, never half a model.

    ``networks`` maps a direction (or a discriminator name) to a module or a state dict; its
    tensors are stored as ``<key>.<param>`` in one safetensors file.
    """
    from i2i.models.card import render_card

    folder = Path(folder)
    with writing(folder):
        prepare_output_folder(folder, overwrite)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            metadata = {"format": "pt", "i2i_format": MODEL_FORMAT}
            write_file(tmp / WEIGHTS, save(flatten_state_dicts(networks), metadata))
            write_file(tmp / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
            if samples is not None and Path(samples).is_file():
                shutil.copyfile(samples, tmp / SAMPLES)
            card_config = {**config, "has_samples": (tmp / SAMPLES).exists()}
            write_file(tmp / CARD, render_card(card_config).encode())
            publish_folder(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return folder


# -- training runs ---------------------------------------------------------------------------
def is_run_folder(path: Path) -> bool:
    return (Path(path) / "checkpoints").is_dir() and (Path(path) / CONFIG).is_file()


def run_to_model(
    run_dir: Path, with_discriminators: bool = False
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]], Path | None]:
    """Config, weights (per direction / discriminator) and sample grid of a run's last checkpoint."""
    from i2i.models.checkpoint import (
        EMA_SUFFIX,
        latest_checkpoint,
        load_checkpoint,
        read_run_config,
    )

    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        raise CheckpointError(f"{run_dir} is not an i2i training run (no checkpoints/ or {CONFIG})")
    run = read_run_config(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise CheckpointError(f"{run_dir} has no finished checkpoint yet")
    networks, state = load_checkpoint(checkpoint)
    named = {*run["generators"], *(run.get("discriminators") or {})}
    if not named <= set(networks):
        raise CheckpointError(
            f"{checkpoint} lacks network(s) {sorted(named - set(networks))} that "
            f"{run_dir / CONFIG} names; the run folder was edited or mixed with another run"
        )
    gen_specs, weights = {}, {}
    for net_name, spec in run["generators"].items():
        direction = spec["direction"]
        gen_specs[direction] = net_spec(generators, spec["name"], spec["kwargs"])
        weights[direction] = networks.get(f"{net_name}{EMA_SUFFIX}", networks[net_name])
    disc_specs = {}
    if with_discriminators:
        for net_name, spec in run.get("discriminators", {}).items():
            disc_specs[net_name] = net_spec(discriminators, spec["name"], spec["kwargs"])
            weights[net_name] = networks[net_name]
    # The run's record: its options as given, and what the trainer derived from them (runs
    # made before the 2026-12 option groups recorded no domains or size: defaults then).
    training = {k: v for k, v in run["options"].items() if k not in ("out", "resume", "device")}
    training["steps"] = state["step"]
    config = make_config(
        run["task"],
        gen_specs,
        domains=run.get("domains", {"A": "A", "B": "B"}),
        size=run.get("size"),
        discriminator_specs=disc_specs,
        training=training,
        metrics=_last_eval(run_dir),
    )
    samples = run_dir / "samples" / "latest.png"
    return config, weights, samples if samples.is_file() else None


def _last_eval(run_dir: Path) -> dict[str, Any]:
    """The latest held-out metrics a run logged (``--eval-every``), for the model card."""
    found: dict[str, Any] = {}
    for record in read_records(run_dir / LOSS_LOG, _warn):
        evals = {k.removeprefix("eval/"): v for k, v in record.items() if k.startswith("eval/")}
        if evals:
            found = {**evals, "step": record["step"]}
    return found


def _warn(message: str) -> None:
    print(message, file=sys.stderr)


def export_run(
    run_dir: Path, out_dir: Path, with_discriminators: bool = False, overwrite: bool = False
) -> Path:
    """Turn a training run into a model folder (generators, card with samples)."""
    config, weights, samples = run_to_model(run_dir, with_discriminators)
    return save_model(out_dir, config, weights, samples=samples, overwrite=overwrite)
