"""The model folder: ``config.json`` + ``model.safetensors`` + a ``README.md`` model card.

``config.json`` fully determines the architecture: each direction names its registered generator
and the exact kwargs, so a checkpoint can never be loaded into the wrong network. Loading is
strict: every name must resolve in the registries (a missing plugin is named in the error) and
every tensor must match. Only JSON and safetensors are ever read, never pickle or code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from i2i.core.errors import CheckpointError, I2IError, UnknownComponentError
from i2i.core.registry import Registry, discriminators, generators
from i2i.models.checkpoint import flatten_state_dicts, split_state_dicts

MODEL_FORMAT = "i2i-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
SAMPLES = "samples.png"
DIRECTIONS = ("AtoB", "BtoA")


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
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{folder} is not an i2i model: it has no {CONFIG}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error.msg})") from None
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f'{folder} is not an i2i model ({CONFIG} lacks "format": "{MODEL_FORMAT}")'
        )
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{folder} uses model format {config['format_version']}; upgrade i2i to load it"
        )
    return config


def create_network(registry: Registry, spec: Mapping[str, Any], role: str) -> nn.Module:
    """Build a network from its config entry; a name no plugin provides is a clear error."""
    name = spec.get("name")
    if name not in registry:
        plugin = spec.get("plugin") or "an unknown plugin"
        raise UnknownComponentError(
            f"this model's {role} needs {registry.kind} {name!r} from plugin {plugin!r}, which is "
            f"not installed; install that plugin (then `i2i list {registry.kind}s` shows it)"
        )
    try:
        return registry.create(name, **spec.get("kwargs", {}))
    except I2IError as error:
        raise CheckpointError(
            f"this model's {role} config does not fit {name!r}: {error}"
        ) from None


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], role: str) -> None:
    """``load_state_dict(strict=True)`` with the mismatch told in one line."""
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError:
        own = set(net.state_dict())
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        raise CheckpointError(
            f"weights for {role} do not match its network: "
            f"{len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        ) from None


def check_shapes(net: nn.Module, state: Mapping[str, torch.Tensor], role: str) -> None:
    own = net.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise CheckpointError(
                f"weights for {role} do not match its network: {key} is {tuple(value.shape)} in "
                f"the file but {tuple(own[key].shape)} in the network the config describes"
            )


def build_generators(
    config: Mapping[str, Any],
    weights: Mapping[str, Mapping[str, torch.Tensor]],
    device: torch.device | str = "cpu",
) -> dict[str, nn.Module]:
    """Generators per direction, built from the config and loaded strictly, in eval mode."""
    nets: dict[str, nn.Module] = {}
    for direction, spec in config["generators"].items():
        role = f"generator {direction}"
        net = create_network(generators, spec, role)
        state = weights.get(direction, {})
        check_shapes(net, state, role)
        load_strict(net, state, role)
        nets[direction] = net.to(device).eval()
    return nets


def read_weights(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    try:
        return split_state_dicts(load_file(str(Path(folder) / WEIGHTS)))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read {Path(folder) / WEIGHTS}: {error}") from None


def load_model(
    folder: Path, device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The config and the generators (per direction, eval mode) of a model folder."""
    config = read_config(folder)
    return config, build_generators(config, read_weights(folder), device)


def load_discriminators(folder: Path) -> dict[str, nn.Module]:
    """Discriminators saved with ``--with-discriminators``, for fine-tuning."""
    config, weights = read_config(folder), read_weights(folder)
    out = {}
    for name, spec in config.get("discriminators", {}).items():
        net = create_network(discriminators, spec, f"discriminator {name}")
        check_shapes(net, weights.get(name, {}), name)
        load_strict(net, weights.get(name, {}), name)
        out[name] = net
    return out


# -- writing ---------------------------------------------------------------------------------
def prepare_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an i2i model (or an empty folder), unless asked."""
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
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a model folder is meant to be shared
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
    folder = Path(folder)
    prepare_output_folder(folder, overwrite)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        save_file(
            flatten_state_dicts(networks),
            str(tmp / WEIGHTS),
            metadata={"format": "pt", "i2i_format": MODEL_FORMAT},
        )
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if samples is not None and Path(samples).is_file():
            shutil.copyfile(samples, tmp / SAMPLES)
        from i2i.models.card import render_card

        card_config = {**config, "has_samples": (tmp / SAMPLES).exists()}
        (tmp / CARD).write_text(render_card(card_config))
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
    from i2i.models.checkpoint import EMA_SUFFIX, latest_checkpoint, load_checkpoint

    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        raise CheckpointError(f"{run_dir} is not an i2i training run (no checkpoints/ or {CONFIG})")
    run = json.loads((run_dir / CONFIG).read_text())
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise CheckpointError(f"{run_dir} has no finished checkpoint yet")
    networks, state = load_checkpoint(checkpoint)
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
    options = run["options"]
    domains = {"A": options.get("domain_a") or "A", "B": options.get("domain_b") or "B"}
    training = {k: v for k, v in options.items() if k not in ("out", "resume", "device")}
    training["steps"] = state["step"]
    config = make_config(
        run["task"],
        gen_specs,
        domains=domains,
        size=options.get("crop_size"),
        discriminator_specs=disc_specs,
        training=training,
        metrics=_last_eval(run_dir),
    )
    samples = run_dir / "samples" / "latest.png"
    return config, weights, samples if samples.is_file() else None


def _last_eval(run_dir: Path) -> dict[str, Any]:
    """The latest held-out metrics a run logged (``--eval-every``), for the model card."""
    log = run_dir / "losses.jsonl"
    if not log.is_file():
        return {}
    found: dict[str, Any] = {}
    for line in log.read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        evals = {k.removeprefix("eval/"): v for k, v in record.items() if k.startswith("eval/")}
        if evals:
            found = {**evals, "step": record["step"]}
    return found


def export_run(
    run_dir: Path, out_dir: Path, with_discriminators: bool = False, overwrite: bool = False
) -> Path:
    """Turn a training run into a model folder (generators, card with samples)."""
    config, weights, samples = run_to_model(run_dir, with_discriminators)
    return save_model(out_dir, config, weights, samples=samples, overwrite=overwrite)
