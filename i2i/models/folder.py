"""The model folder: ``config.json`` + ``model.safetensors`` + a ``README.md`` model card.

``config.json`` fully determines the architecture: each direction names its registered generator
and the exact kwargs, so a checkpoint can never be loaded into the wrong network. Loading is
strict: every name must resolve in the registries (a missing plugin is named in the error) and
every tensor must match (``build.py`` builds and checks the networks). Only JSON and
safetensors are ever read, never pickle or code.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from i2i.core.checks import check_text_path
from i2i.core.errors import CheckpointError, I2IError, first_of, writing
from i2i.core.files import KILLED_AFTER_S, share_like_umask, write_file
from i2i.core.protocol import DIRECTIONS
from i2i.core.registry import Registry, generators
from i2i.models.build import (
    budget_for,
    build_generators,
    check_fit,
    header_shapes,
    planned_shapes,
)
from i2i.models.checkpoint import flatten_state_dicts, split_state_dicts
from i2i.models.safefiles import (
    PACKAGE_NAME,
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
    """A JSON-able description of a registered network, with the plugin that provides it and,
    for a third party's, the package to install for it (which the card and errors name)."""
    from i2i.core.plugins import plugin_package

    component = registry.get(name)
    spec = {"name": name, "kwargs": dict(kwargs), "plugin": component.plugin}
    package = plugin_package(component.plugin)
    if package is not None and package != "i2i" and PACKAGE_NAME.match(package):
        spec["package"] = package  # a name no installer takes would make the model unloadable
    return spec


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


def verify_model(folder: Path) -> dict[str, Any]:
    """Check a model folder without allocating it: the config resolves in the registries and
    every generator's shapes match the safetensors header. Returns the config.

    Only the generators, the networks inference runs, are planned: a discriminator (saved for
    fine-tuning) is never built to read a model, so nothing it names is downloaded or opened.
    """
    config = read_config(folder)
    shapes = header_shapes(weights_file(folder))
    for direction, spec in config["generators"].items():
        role = f"generator {direction}"
        found = shapes.get(direction, {})
        check_fit(planned_shapes(generators, spec, role, budget_for(found)), found, role)
    return config


def weights_file(folder: Path) -> Path:
    """The model's weights file; an ONNX export has none, and is told how it runs."""
    folder = Path(folder)
    if not (folder / WEIGHTS).exists() and any(folder.glob("*.onnx")):
        raise CheckpointError(
            f"{folder} is an ONNX export, without {WEIGHTS}: `i2i apply` runs it with "
            f"--backend auto or onnxruntime (Python: i2i.load); other commands need the model "
            f"it was exported from"
        )
    return folder / WEIGHTS


def read_weights(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    path = regular_file(weights_file(folder), Path(folder), "weights file")
    try:
        flat = load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read {Path(folder) / WEIGHTS}: {error}") from None
    check_finite_weights(flat, str(path))
    return split_state_dicts(flat)


def check_finite_weights(flat: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse NaN or infinite weights: such a network writes black (or white) pictures with no
    error, the mark of a training that diverged."""
    for key, value in flat.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{where} holds NaN or infinite weights ({key}): the training diverged; export "
                f"an earlier checkpoint or train again with a lower --lr"
            )


def load_model(
    folder: Path, device: torch.device | str = "cpu"
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The config and the generators (per direction, eval mode) of a model folder."""
    config = verify_model(folder)
    return config, build_generators(config, read_weights(folder), device)


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
    foreign = sorted(p.name for p in folder.iterdir() if not _written_by_i2i(p))
    if foreign:
        raise I2IError(
            f"{folder} holds {first_of([repr(n) for n in foreign])}, which is not part of a "
            f"model; refusing to "
            f"replace it (move it away or choose another -o)"
        )


def _written_by_i2i(path: Path) -> bool:
    """Whether ``path`` is one of the files a model folder is made of (or hidden, as the Hub's
    ``.gitattributes`` and ``.cache``): replacing a model must not delete a run or photos kept
    beside it."""
    name = path.name
    return name.startswith(".") or (
        path.is_file() and (name in {CONFIG, WEIGHTS, CARD, SAMPLES} or name.endswith(".onnx"))
    )


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


def _remove_killed_saves(folder: Path) -> None:
    """Remove the temp folders that killed saves of ``folder`` left beside it (a model's
    weights, hundreds of MB each); one still being written by another process is younger."""
    ours = {WEIGHTS, CONFIG, SAMPLES, CARD}
    for tmp in folder.parent.glob(f".{glob.escape(folder.name)}.*"):
        if len(tmp.name) != len(folder.name) + 10 or tmp.is_symlink() or not tmp.is_dir():
            continue  # mkdtemp's: ".NAME." and eight characters
        try:
            names = {p.name for p in tmp.iterdir()}
            if names <= ours and time.time() - tmp.stat().st_mtime > KILLED_AFTER_S:
                shutil.rmtree(tmp)
        except OSError:
            continue


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
        _remove_killed_saves(folder)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            metadata = {"format": "pt", "i2i_format": MODEL_FORMAT}
            flat = flatten_state_dicts(networks)
            check_finite_weights(flat, "the model")
            write_file(tmp / WEIGHTS, save(flat, metadata))
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
