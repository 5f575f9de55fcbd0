"""A training run turned into a model: its last checkpoint's generators (averaged ones where the
run kept them), the config its options determine, its samples and last held-out metrics.

``i2i export``, ``i2i push`` of a run, ``--init-from`` a run and ``i2i apply`` on a run all read a
run through ``run_to_model``, so each sees the same networks.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from i2i.core.errors import CheckpointError
from i2i.core.registry import discriminators, generators
from i2i.models.checkpoint import EMA_SUFFIX, load_latest_checkpoint, read_run_config
from i2i.models.folder import CONFIG, WEIGHTS, make_config, net_spec, save_model
from i2i.models.losslog import LOSS_LOG, read_records


def is_run_folder(path: Path) -> bool:
    return (Path(path) / "checkpoints").is_dir() and (Path(path) / CONFIG).is_file()


def run_to_model(
    run_dir: Path, with_discriminators: bool = False
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]], Path | None]:
    """Config, weights (per direction / discriminator) and sample grid of a run's last checkpoint."""
    run_dir = Path(run_dir)
    if not is_run_folder(run_dir):
        if (run_dir / WEIGHTS).is_file():
            raise CheckpointError(
                f"{run_dir} is a model folder already, which is what export makes from a "
                f"training run; use it as it is (i2i apply {shlex.quote(str(run_dir))} IMAGES "
                "-o OUT)"
            )
        raise CheckpointError(f"{run_dir} is not an i2i training run (no checkpoints/ or {CONFIG})")
    run = read_run_config(run_dir)
    latest = load_latest_checkpoint(run_dir)
    if latest is None:
        raise CheckpointError(f"{run_dir} has no finished checkpoint yet")
    checkpoint, networks, state = latest
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
    if run.get("precision") in ("fp32", "bf16", "fp16"):  # what ran, not what was asked
        training["precision"] = run["precision"]
    if run.get("samples_from") in ("test", "train"):  # the card says where the samples are from
        training["samples_from"] = run["samples_from"]
    if isinstance(run.get("started_from"), str):  # what --init-from was: a Hub id's commit
        training["init_from"] = run["started_from"]
    # A model leaves the machine (push, a shared folder): its local folders are named, not
    # located, so a model card never shows someone's home directory.
    for key in ("data", "init_from"):
        value = training.get(key)
        if isinstance(value, str) and Path(value).is_absolute():
            training[key] = Path(value).name
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
