"""Starting a run from a trained model's weights (``--init-from``): fine-tuning a pulled model on
one's own images, or going on from a finished run with a new schedule or new data.

Only the weights come over; the new run has its own options, optimizers and schedule. A network
is loaded only where the model's config describes the same architecture as the run builds (the
``config.json`` determines it), so a model can never be loaded into the wrong network: a
generator that differs is an error naming the options that differ, a discriminator that differs
or was not exported starts fresh, which the start line says. Arguments that choose how a network
is run and trained, not its weights (UNSB's tau and sample_steps), are the run's own; the start
line names those that differ.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from i2i.core.checks import check_text_path
from i2i.core.errors import CheckpointError, I2IError, InvalidArgumentError, one_line, short
from i2i.core.registry import Registry, discriminators, generators
from i2i.models.export import run_to_model
from i2i.models.folder import net_spec, read_weights, verify_model
from i2i.models.hub import split_revision
from i2i.models.loader import resolve_model

# Network arguments that only choose how fresh weights are drawn, not the architecture.
INIT_ONLY = frozenset({"init", "init_gain"})


def sampling_arguments(registry: Registry, name: str) -> frozenset[str]:
    """The arguments of a registered network that choose how it is run (and trained), not its
    weights: a factory lists them in its ``sampling_arguments`` attribute (UNSB's bridge
    generators: the noise ``tau`` and the predictions ``sample_steps``). A run may set its own."""
    component = registry.get(name)
    names = getattr(component.factory, "sampling_arguments", ())
    names = (names,) if isinstance(names, str) else names
    arguments = {p.name for p in component.parameters}
    if not isinstance(names, (tuple, list, set, frozenset)) or not set(names) <= arguments:
        raise I2IError(
            f"{name} (from {component.plugin}) has sampling_arguments {short(names)}; it must "
            f"be a tuple of its own argument names: ask its author to fix it"
        )
    return frozenset(names)


def _arguments(registry: Registry, spec: dict[str, Any]) -> dict[str, Any]:
    """A spec's arguments with the factory's defaults filled in, through JSON as a config holds
    them (a default tuple reads as the list a config stores)."""
    component = registry.get(spec["name"])
    defaults = {p.name: p.default for p in component.parameters if not p.required}
    return json.loads(json.dumps({**defaults, **spec["kwargs"]}))


def load_model_weights(
    model: str | Path,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str]:
    """The config and the weights (per direction and per discriminator) of a model folder, a
    training run (its last checkpoint, averaged generators where it kept them) or a Hub id, and
    the model as a run records it: a Hub id pinned to the commit pulled (``user/repo@SHA``), so
    that the run says exactly what it started from even after the repo changes."""
    kind, path = resolve_model(model)
    if kind == "run":
        config, weights, _ = run_to_model(path, with_discriminators=True)
        return config, weights, str(model)
    pinned = str(model)
    if not Path(model).exists() and path.parent.name == "snapshots":  # the Hub cache's layout
        pinned = f"{split_revision(str(model))[0]}@{path.name}"
    return verify_model(path), read_weights(path), pinned


def architecture_differences(
    registry: Registry,
    theirs: dict[str, Any],
    ours: dict[str, Any],
    named: Callable[[str], str] = str,
) -> list[str]:
    """``name (model X, this run Y)`` for each architectural argument that differs, defaults
    filled in (a config records the arguments it was given); ``named`` says an argument as the
    user sets it (``--bridge-steps`` for UNSB's ``steps``)."""
    if theirs["name"] != ours["name"]:
        return [f"network (model {theirs['name']}, this run {ours['name']})"]
    free = INIT_ONLY | sampling_arguments(registry, ours["name"])
    return _differences(registry, theirs, ours, lambda key: key not in free, named)


def sampling_differences(
    registry: Registry,
    theirs: dict[str, Any],
    ours: dict[str, Any],
    named: Callable[[str], str] = str,
) -> list[str]:
    """Like ``architecture_differences``, for the sampling arguments, which a run may change."""
    chosen = sampling_arguments(registry, ours["name"])
    return _differences(registry, theirs, ours, chosen.__contains__, named)


def _differences(
    registry: Registry,
    theirs: dict[str, Any],
    ours: dict[str, Any],
    compared: Callable[[str], bool],
    named: Callable[[str], str],
) -> list[str]:
    model, run = _arguments(registry, theirs), _arguments(registry, ours)
    return [
        f"{named(key)} (model {short(model.get(key))}, this run {short(run.get(key))})"
        for key in sorted(set(model) | set(run))
        if compared(key) and model.get(key) != run.get(key)
    ]


def init_networks(
    model: str | Path,
    nets: dict[str, nn.Module],
    generator_specs: dict[str, dict[str, Any]],
    discriminator_specs: dict[str, dict[str, Any]],
    named: Callable[[str], str] = str,
) -> tuple[str, str]:
    """Load ``model``'s weights into the task's networks ``nets``; returns what was loaded, for
    the start line, and the model as the run records it (a Hub id pinned to its commit).
    Every generator must match; discriminators load where they match. ``named`` says a
    generator argument as the user sets it (the task's ``argument_flag``)."""
    if not str(model).strip():
        raise InvalidArgumentError(
            "--init-from is empty; give a model folder, a training run or USER/REPO"
        )
    check_text_path(model, "--init-from")  # config.json records it
    try:
        config, weights, pinned = load_model_weights(model)
    except OSError as error:  # a name the system refuses: too long, a file in the way
        shown = str(model) if len(str(model)) <= 80 else f"{str(model)[:77]}..."
        raise InvalidArgumentError(
            f"--init-from {shown}: {error.strerror or error}; give a model folder, a training "
            f"run or USER/REPO"
        ) from None
    own: list[str] = []  # sampling arguments this run sets for itself
    for net_name, spec in generator_specs.items():
        direction = spec["direction"]
        theirs = config["generators"].get(direction)
        if theirs is None:
            raise CheckpointError(
                f"--init-from {model} has no {direction} generator (it has "
                f"{', '.join(config['generators'])}); start from a model of this direction"
            )
        ours = net_spec(generators, spec["name"], spec["kwargs"])
        differences = architecture_differences(generators, theirs, ours, named)
        if differences:
            raise CheckpointError(
                f"--init-from {model}: its {direction} generator differs from this run's in "
                f"{'; '.join(differences)}; train with the model's settings (its config.json)"
            )
        _load(nets[net_name], weights[direction], model, f"{direction} generator")
        own += sampling_differences(generators, theirs, ours, named)
    loaded, fresh = [], []
    for net_name, spec in discriminator_specs.items():
        theirs = config.get("discriminators", {}).get(net_name)
        ours = net_spec(discriminators, spec["name"], spec["kwargs"])
        if (
            theirs is None
            or net_name not in weights
            or architecture_differences(discriminators, theirs, ours)
        ):
            fresh.append(net_name)
        else:
            _load(nets[net_name], weights[net_name], model, f"discriminator {net_name}")
            loaded.append(net_name)
    what = f"generators {', '.join(generator_specs)}"
    if loaded:
        what += f", discriminators {', '.join(loaded)}"
    if fresh:
        what += f"; fresh {', '.join(fresh)}"
    if own:
        what += f"; this run's own {', '.join(dict.fromkeys(own))}"
    return f"weights from {pinned} ({what})", pinned


def _load(net: nn.Module, state: dict[str, Any], model: str | Path, role: str) -> None:
    """Strict loading; a config that matches weights of another shape is a broken model."""
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(
            f"--init-from {model}: its {role} weights do not fit the network its config.json "
            f"describes ({one_line(error, 300)}); export or pull the model again"
        ) from None
