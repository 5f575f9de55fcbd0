"""Saving a run's training state and resuming from it, exactly.

A checkpoint holds every network (the averaged generators too), the optimizers, the fp16 loss
scale, and per rank the random streams and the task's own state (image pools, its streams). With
the data order and the learning rate pure functions of (seed, epoch, step), a resumed run
continues as if it had never stopped.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2i.core.errors import CheckpointError, I2IError, one_line
from i2i.kit.task import Task
from i2i.models.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_networks_strict,
    pointed_checkpoint,
    save_checkpoint,
)
from i2i.train.runtime import Runtime


def run_networks(task: Task, runtime: Runtime) -> dict[str, torch.nn.Module]:
    """Every network a checkpoint holds: the task's and the averaged generators."""
    return {**task.nets, **(runtime.ema.networks() if runtime.ema else {})}


def save_run(
    run_dir: Path,
    task: Task,
    runtime: Runtime,
    *,
    step: int,
    epoch: int,
    batch_size: int,
    skipped: dict[str, str],
    keep: int,
) -> Path | None:
    """Write a checkpoint of step ``step`` (rank 0 writes what every rank sends it)."""
    mine = {"rng": _rng_state(), "task": task.state_dict()}
    if runtime.distributed:
        import torch.distributed as dist

        per_rank: list[Any] = [None] * runtime.world_size
        dist.all_gather_object(per_rank, mine)
    else:
        per_rank = [mine]
    path = None
    if runtime.is_main:
        state = {
            "step": step,
            "epoch": epoch,
            "optimizers": {n: o.state_dict() for n, o in task.optimizers.items()},
            "scaler": runtime.scaler.state_dict(),
            "per_rank": per_rank,
            "batch_size": batch_size,
            "skipped": skipped,
            "ema_updates": runtime.ema.updates if runtime.ema else 0,
        }
        path = save_checkpoint(run_dir, step, run_networks(task, runtime), state, keep=keep)
    runtime.barrier()
    return path


def resume_run(
    run_dir: Path, task: Task, runtime: Runtime, batch_size: int
) -> tuple[int, dict[str, str]]:
    """Load the last checkpoint of ``run_dir`` into the task and runtime; returns its step and
    the unreadable images it had skipped. A run stopped before its first checkpoint starts
    again from step 0."""
    path = latest_checkpoint(run_dir)
    if path is None:
        if runtime.is_main:
            print(f"{run_dir} has no checkpoint yet; training it from step 0", flush=True)
        return 0, {}
    named = pointed_checkpoint(run_dir)
    if named != path and runtime.is_main:  # rolled back by hand, or killed before the pointer
        said = f"names {named.name}, which is gone or not whole" if named else "is missing"
        print(
            f"{run_dir}: checkpoints/latest {said}; going on from {path.name}, the newest whole "
            f"checkpoint",
            flush=True,
        )
    networks, state = load_checkpoint(path)
    load_networks_strict(run_networks(task, runtime), networks)
    try:
        return _load_state(state, run_dir, task, runtime, batch_size)
    except I2IError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"checkpoint {path} does not hold this run's training state ({type(error).__name__}"
            f": {one_line(error, 120)}); the run folder was edited or mixed "
            f"with another run"
        ) from error


def _load_state(
    state: dict[str, Any], run_dir: Path, task: Task, runtime: Runtime, batch_size: int
) -> tuple[int, dict[str, str]]:
    for name, optimizer in task.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    if state["scaler"] and runtime.scaler.is_enabled():
        runtime.scaler.load_state_dict(state["scaler"])
    per_rank = state["per_rank"]
    saved = (len(per_rank), state.get("batch_size", batch_size))
    if saved != (runtime.world_size, batch_size):
        raise CheckpointError(
            f"{run_dir} was trained with {saved[0]} process(es) at batch size {saved[1]}; "
            f"resume it the same way (now {runtime.world_size} at {batch_size})"
            f" so that the data order and learning-rate schedule continue exactly"
        )
    mine = per_rank[runtime.rank]
    task.load_state_dict(mine["task"])
    _set_rng_state(mine["rng"])
    if runtime.ema is not None:
        runtime.ema.updates = state["ema_updates"]
    return state["step"], dict(state.get("skipped", {}))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    np.random.set_state(
        ("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(i) for i in x) if isinstance(x, list | tuple) else x
