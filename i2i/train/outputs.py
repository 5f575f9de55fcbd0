"""What a run shows while it trains and when it ends: sample grids, held-out metrics, the summary.

Samples and eval use the averaged generators when ``--ema-decay`` is on, in eval mode, under the
run's precision, on the same few held-out images every time.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any

import torch

from i2i.core.files import atomic_write
from i2i.kit.task import Task
from i2i.models.checkpoint import RUN_CONFIG, latest_checkpoint
from i2i.train.logger import METRICS_FILE, RunLogger
from i2i.train.run_folder import quoted
from i2i.train.runtime import Runtime
from i2i.viz import image_grid


class RunOutputs:
    def __init__(
        self,
        task: Task,
        runtime: Runtime,
        run_dir: Path,
        fixed: dict[str, torch.Tensor],
        eval_batch: dict[str, torch.Tensor],
        eval_extractor: str | None,
    ) -> None:
        self.task, self.runtime, self.run_dir = task, runtime, run_dir
        self.fixed, self.eval_batch, self.eval_extractor = fixed, eval_batch, eval_extractor
        self._eval_cache: dict[str, Any] = {}
        self.last_eval: dict[str, float] = {}

    def _averaged(self) -> Any:
        ema = self.runtime.ema
        return ema.swapped_in() if ema is not None else contextlib.nullcontext()

    def evaluate(self, logger: RunLogger, step: int, epoch: int) -> None:
        """Held-out metrics on rank 0: cycle PSNR/SSIM, PSNR/SSIM against the targets of aligned
        pairs, FID/KID with --eval-extractor."""
        if not self.runtime.is_main or not self.eval_batch:
            return
        from i2i.eval.cycle import cycle_metrics, flat_metrics

        by_direction = {
            spec["direction"]: self.task.nets[name] for name, spec in self.task.generators().items()
        }
        with self._averaged(), self.runtime.autocast():
            result = cycle_metrics(
                by_direction,
                self.eval_batch,
                extractor=self.eval_extractor,
                cache=self._eval_cache,
                device=self.runtime.device,
                paired=self.task.paired,
            )
        self.last_eval = {f"eval/{k}": v for k, v in flat_metrics(result).items()}
        logger.metrics(step, epoch, self.last_eval)

    def write_samples(self, logger: RunLogger, step: int) -> Path | None:
        """The task's panels of the fixed images as ``samples/step_N.png`` and ``latest.png``."""
        if not self.fixed:
            return None
        nets = list(self.task.nets.values())
        modes = [n.training for n in nets]
        for n in nets:
            n.eval()
        try:
            with torch.no_grad(), self._averaged(), self.runtime.autocast():
                panels = self.task.samples(self.fixed)
        finally:
            for n, mode in zip(nets, modes, strict=True):
                n.train(mode)
        caption = " ".join(
            f"{k.removeprefix('eval/')}={v:.3g}" for k, v in self.last_eval.items() if v is not None
        )
        grid = image_grid(
            _named(panels, self.task.domains), caption=f"step {step}  {caption}".strip()
        )
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{step:08d}.png"
        for target in (path, folder / "latest.png"):
            atomic_write(target, lambda f: grid.save(f, format="PNG"))
        logger.image("samples", grid, step)
        return path


def resume_command(task_name: str, run_dir: Path) -> str:
    """The command that resumes this run: under torchrun, torchrun with as many processes (a
    run resumes only as it was trained)."""
    command = f"i2i train {task_name} --resume {quoted(run_dir)}"
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return command
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world) or world)
    if world == local:
        return f"torchrun --nproc_per_node={local} -m {command}"
    return (
        f"torchrun --nnodes={world // local} --nproc_per_node={local} (and the rendezvous "
        f"options of the start, on every node) -m {command}"
    )


def _named(panels: Any, domains: dict[str, str]) -> Any:
    """Column titles with the domains' names for the tasks' "A" and "B" ("real A" -> "real
    horse"), so a grid reads without the run's config beside it."""
    return [
        ([re.sub(r"\b[AB]\b", lambda m: domains.get(m.group(), m.group()), t) for t in titles],
         images)
        for titles, images in panels
    ]  # fmt: skip


def print_stopped_at_once(task_name: str, run_dir: Path) -> None:
    """What a second Ctrl-C leaves: the last whole checkpoint, if there is one (a checkpoint
    being written when it came is either whole or absent)."""
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        print(
            "Stopped at once, before the first checkpoint: there is nothing to resume.", flush=True
        )
    else:
        print(
            f"Stopped at once; the last checkpoint is {checkpoint.name}. Resume with: "
            f"{resume_command(task_name, run_dir)}",
            flush=True,
        )


def print_summary(
    task_name: str,
    run_dir: Path,
    step: int,
    interrupted: bool,
    files: dict[str, Path | None],
    skipped: int,
) -> None:
    """The closing lines: how it ended, where everything is, what to do next."""
    if interrupted:
        lines = [
            f"Interrupted at step {step}; checkpoint saved. Resume with: "
            f"{resume_command(task_name, run_dir)}"
        ]
    else:
        lines = [f"Finished {step} steps."]
    outputs = {
        "run folder": run_dir,
        "config": run_dir / RUN_CONFIG,
        "checkpoint": files.get("checkpoint"),
        "samples": run_dir / "samples" / "latest.png",
        "losses": run_dir / METRICS_FILE,
        "loss curve": files.get("loss curve"),
    }
    lines += [f"  {name:<12} {path}" for name, path in outputs.items() if path and path.exists()]
    if skipped:
        lines.append(f"  skipped      {skipped} unreadable image(s), listed above")
    if not interrupted:
        lines.append(
            f"Next: i2i export {quoted(run_dir)} -o MODEL_DIR, then i2i apply MODEL_DIR "
            f"IMAGES -o OUT"
        )
    print("\n".join(lines), flush=True)
