"""Atomic training checkpoints: a kill at any moment leaves the last good one intact.

Each checkpoint is a folder ``checkpoints/step_<step, 8 digits>`` holding ``networks.safetensors`` (all
networks, keys prefixed by network name) and ``state.pt`` (optimizers, schedulers, RNG states,
counters; tensors and plain types only, read back with ``weights_only=True``). It is written under
a temporary name and renamed into place, then the ``latest`` pointer is replaced atomically.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from i2i.core.errors import CheckpointError, one_line, writing
from i2i.core.files import atomic_write, share_like_umask, write_file
from i2i.core.protocol import DIRECTIONS
from i2i.models.safefiles import (
    check_net_spec,
    is_size,
    read_bytes,
    read_json,
    regular_file,
)

NETWORKS_FILE = "networks.safetensors"
# The averaged copy of network N is saved as N + EMA_SUFFIX; exports prefer it.
EMA_SUFFIX = "_ema"
STATE_FILE = "state.pt"
LATEST = "latest"
RUN_CONFIG = "config.json"
# What to do when a checkpoint cannot be written: the previous one is whole; before the
# first, there is nothing to resume from (and a new run's folder is taken back).
_KEEP_GOING = (
    "the previous checkpoint is intact; make the run folder writable, then --resume the run",
    "the previous checkpoint is intact; free some space, then --resume the run",
)
_START_AGAIN = (
    "no checkpoint was saved yet; make the folder writable, then start the training again",
    "no checkpoint was saved yet; free some space, then start the training again",
)


def _pickled(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A training run's ``config.json`` (task, resolved options, network specs), read as
    untrusted data and checked: each generator names its network and its direction."""
    path = Path(run_dir) / RUN_CONFIG
    if not path.exists():
        raise CheckpointError(f"{run_dir} is not an i2i run folder (no {RUN_CONFIG})")
    run = read_json(path, Path(run_dir))
    if not isinstance(run, dict) or "options" not in run:
        raise CheckpointError(
            f"{run_dir} is a model folder, not a training run; train a new run "
            f"(models cannot be resumed, only runs)"
        )
    if not isinstance(run["options"], dict) or not isinstance(run.get("generators"), dict):
        raise CheckpointError(f'{path} lacks the "options" and "generators" of a run')
    if not isinstance(run.get("task"), str) or not isinstance(run.get("discriminators", {}), dict):
        raise CheckpointError(f'{path}: "task" must be a name and "discriminators" a mapping')
    directions = []
    for name, spec in [*run["generators"].items(), *run.get("discriminators", {}).items()]:
        check_net_spec(spec, f"{path}: network {name}")
    for name, spec in run["generators"].items():
        if spec.get("direction") not in DIRECTIONS or spec["direction"] in directions:
            raise CheckpointError(
                f'{path}: generator {name} needs a "direction" of its own, AtoB or BtoA, got '
                f"{spec.get('direction')!r}"
            )
        directions.append(spec["direction"])
    domains = run.get("domains", {})
    if not isinstance(domains, dict) or not all(isinstance(v, str) for v in domains.values()):
        raise CheckpointError(f'{path}: "domains" must map A and B to names (text)')
    if not is_size(run.get("size")):
        raise CheckpointError(f'{path}: "size" must be a number of pixels, got {run["size"]!r}')
    return run


def flatten_state_dicts(
    networks: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """One flat ``<name>.<param>`` dict for a safetensors file, from modules or state dicts."""
    return {
        f"{name}.{key}": value.detach().cpu().contiguous()
        for name, net in networks.items()
        for key, value in (net.state_dict() if isinstance(net, nn.Module) else net).items()
    }


def split_state_dicts(flat: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        name, _, rest = key.partition(".")
        out.setdefault(name, {})[rest] = value
    return out


def save_checkpoint(
    run_dir: Path,
    step: int,
    networks: Mapping[str, nn.Module],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{step:08d}"
    previous = latest_checkpoint(run_dir)
    advice = _KEEP_GOING if previous is not None else _START_AGAIN
    with writing(final, *advice):
        root.mkdir(parents=True, exist_ok=True)
    if final.exists() and previous != final:
        # Left by a run killed after this rename but before updating ``latest``: not ours.
        shutil.rmtree(final)
    if not final.exists():
        with writing(final, *advice):
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{final.name}."))
            try:
                write_file(tmp / NETWORKS_FILE, save(flatten_state_dicts(networks)))
                write_file(tmp / STATE_FILE, _pickled(state))
                share_like_umask(tmp)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    atomic_write(root / LATEST, lambda f: f.write(f"{final.name}\n".encode()), *advice)
    _prune(root, keep, final.name)
    return final


def _prune(root: Path, keep: int, newest: str) -> None:
    done = sorted(
        (p for p in root.glob("step_*") if p.is_dir() and _STEP.fullmatch(p.name)),
        key=lambda p: int(p.name[5:]),  # past 8 digits the names no longer sort as numbers
    )
    for old in done[: max(0, len(done) - max(keep, 1))]:
        if old.name != newest:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".step_*"):  # temp folders of a run killed mid-write
        shutil.rmtree(stale, ignore_errors=True)


_STEP = re.compile(r"step_\d{8,}")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names, None before the first one.

    Where the pointer is gone or names a removed folder (a user rolls back by deleting the
    newest checkpoint; a run killed between its first checkpoint and the pointer), the newest
    whole checkpoint left is the run's: starting again from step 0 would throw away the
    training and, as it reached their steps, the checkpoints kept."""
    named = pointed_checkpoint(run_dir)
    if named is not None and _whole(named):
        return named
    return newest_checkpoint(Path(run_dir) / "checkpoints")


def pointed_checkpoint(run_dir: Path) -> Path | None:
    """The folder ``checkpoints/latest`` names, whether or not it still exists; None without
    a pointer. It may only name a ``step_*`` folder beside it, inside the run (never a path
    elsewhere)."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / LATEST
    if not pointer.exists() and not pointer.is_symlink():
        return None
    name = read_bytes(pointer, Path(run_dir), 256, "checkpoint pointer").decode("utf-8", "replace")
    if not _STEP.fullmatch(name.strip()):
        raise CheckpointError(
            f"{pointer} names {name.strip()[:60]!r}, not a checkpoint of this run (step_*); "
            f"the run folder was edited: write the name of a folder in {root} into it"
        )
    return root / name.strip()


def newest_checkpoint(root: Path) -> Path | None:
    """The whole ``step_*`` folder of ``root`` with the highest step, whatever the pointer
    says (a folder has both files from the moment it is renamed into place)."""
    found = [p for p in root.glob("step_*") if _STEP.fullmatch(p.name) and _whole(p)]
    return max(found, key=lambda p: int(p.name[5:]), default=None)


def _whole(path: Path) -> bool:
    """Both files are there: a folder is renamed into place only once it holds them."""
    return (path / NETWORKS_FILE).is_file() and (path / STATE_FILE).is_file()


def load_checkpoint(path: Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Networks (per name) and training state of one checkpoint folder, read only from
    regular files inside its run. Only a file that is not what it should be is called
    damaged (and may be deleted to roll back); one that cannot be read now (permissions, a
    failing disk, no memory, pruned meanwhile) is said as it is."""
    run_dir = Path(path).parent.parent
    roll_back = f"delete {path.name} to go on from the checkpoint before it, where the run kept one"
    try:
        networks_file = regular_file(path / NETWORKS_FILE, run_dir, "checkpoint file")
        networks = split_state_dicts(load_file(str(networks_file)))
    except (SafetensorError, CheckpointError) as error:
        raise CheckpointError(
            f"checkpoint {path} is damaged: {one_line(error, 300)}; {roll_back}"
        ) from None
    except (OSError, RuntimeError, MemoryError) as error:  # RuntimeError: torch's mmap
        raise CheckpointError(f"cannot read checkpoint {path}: {one_line(error, 300)}") from None
    try:
        state_file = regular_file(path / STATE_FILE, run_dir, "checkpoint file")
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except (OSError, MemoryError) as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {one_line(error, 300)}") from None
    except Exception as error:  # a tampered or truncated pickle: refused, never executed
        raise CheckpointError(
            f"checkpoint {path / STATE_FILE} is damaged or holds more than tensors and plain "
            f"values ({type(error).__name__}); it was not loaded ({roll_back}, or start a new "
            f"run)"
        ) from None
    step = state.get("step") if isinstance(state, dict) else None
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint {path / STATE_FILE} does not hold a training state")
    return networks, state


def load_latest_checkpoint(
    run_dir: Path,
) -> tuple[Path, dict[str, dict[str, torch.Tensor]], dict[str, Any]] | None:
    """``load_checkpoint`` of a run's latest checkpoint (None before the first), for reading a
    run that may still be training: a checkpoint pruned while it was read (the run saved a
    newer one) is not damage, so the newer one is read instead."""
    for _ in range(5):
        path = latest_checkpoint(run_dir)
        if path is None:
            return None
        try:
            return (path, *load_checkpoint(path))
        except CheckpointError:
            if _whole(path):  # still there: really damaged
                raise
    raise CheckpointError(
        f"{run_dir} saves checkpoints faster than they can be read; try again, or when it ends"
    )


def load_networks_strict(networks: Mapping[str, nn.Module], weights: Mapping[str, Any]) -> None:
    """Load every network exactly; any missing, extra or misshapen tensor is an error."""
    missing = sorted(set(networks) - set(weights))
    extra = sorted(set(weights) - set(networks))
    if missing or extra:
        raise CheckpointError(
            f"checkpoint networks {sorted(weights)} do not match the task's {sorted(networks)}"
        )
    for name, net in networks.items():
        try:
            net.load_state_dict(weights[name], strict=True)
        except RuntimeError as error:
            raise CheckpointError(
                f"network {name} does not match the checkpoint: {one_line(error, 300)}"
            ) from None
