"""The task-independent training loop: data, devices, schedule, logging, samples, checkpoints.

The loop never waits for the device except every ``log_every`` steps (loss values), when it
samples and when it checkpoints. Learning rates are a pure function of the epoch, and the data
order a pure function of (seed, epoch), so a run resumed from a checkpoint continues exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2i.core.errors import CheckpointError, DataError, I2IError, InvalidArgumentError
from i2i.core.registry import tasks
from i2i.data import EpochSampler, collate, keep_decoded, prefetch, to_float
from i2i.kit.config import PATH_OPTIONS, resolve_task_config
from i2i.kit.groups import RunOptions
from i2i.kit.task import Task
from i2i.models.checkpoint import (
    atomic_write,
    atomic_write_text,
    latest_checkpoint,
    load_checkpoint,
    load_networks_strict,
    read_run_config,
    save_checkpoint,
)
from i2i.train.augmentation import BatchAugmentation
from i2i.train.ema import GeneratorEMA
from i2i.train.logger import METRICS_FILE, RunLogger
from i2i.train.rundir import claim_run_folder, quoted
from i2i.train.runtime import Runtime
from i2i.viz import image_grid

CONFIG_FILE = "config.json"


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    samples: Path | None
    loss_curve: Path | None
    interrupted: bool = False


def lr_factor(epoch: int, epochs: int, epochs_decay: int, step: int = 0, warmup: int = 0) -> float:
    """The official CycleGAN "linear" policy: constant, then linear decay towards zero; with
    ``warmup`` steps, a linear ramp from ``1/warmup`` over the first steps."""
    decay = 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)
    return decay * min(1.0, (step + 1) / warmup) if warmup else decay


def resolve_config(
    task: str, given: dict[str, Any], config_file: str | None = None
) -> dict[str, Any]:
    """The complete config of a run of the task called ``task`` (see ``resolve_task_config``)."""
    return resolve_task_config(tasks.get(task).factory, given, config_file)


def _default_workers(device: torch.device) -> int:
    """Decoding in worker processes pays on GPUs; on the CPU they steal the cores the
    networks need (a JPEG decodes in milliseconds, a CPU training step takes far longer)."""
    if device.type == "cpu":
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


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


class _StopFlag:
    """SIGINT/SIGTERM ask the loop to save and stop; a second signal stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    @contextmanager
    def installed(self):
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


class Trainer:
    def __init__(self, task: Task) -> None:
        o = RunOptions.of(task.config)
        # The run folder is this process's alone until train() ends (or setting up fails).
        self.folder = claim_run_folder(o.out, o.resume, task.name)
        with self.folder.released_on_error():
            self._setup(task)

    def _setup(self, task: Task) -> None:
        self.task = task
        self.task_name = task.name
        # The trainer's options; the task reads its own groups, the augmentation its own.
        self.options = o = RunOptions.of(task.config)
        if o.threads:
            torch.set_num_threads(o.threads)
        self.runtime = Runtime(o.device, o.precision, o.compile)
        rt = self.runtime
        task.attach(rt, seed=o.seed)
        torch.manual_seed(o.seed)  # identical network init on every rank
        self.dataset = task.dataset("train")
        if len(self.dataset) == 0:
            raise DataError(f"no training images in {task.data_root}")
        # Small datasets stay decoded in memory: no decoding on the critical path, no workers.
        self.in_memory = keep_decoded(self.dataset)
        self.augment = BatchAugmentation.for_task(task)
        task.build(self._prepare(collate([self._first_readable_item()])))
        self.ema = (
            GeneratorEMA({n: task.nets[n] for n in task.generators()}, o.ema_decay)
            if o.ema_decay > 0
            else None
        )
        self._seed_everything(o.seed + rt.rank)
        self.run_dir = self.folder.path
        self.step = 0
        self.skipped: dict[str, str] = {}
        self._last_good: dict[str, Any] | None = None
        self.sampler = EpochSampler(
            len(self.dataset),
            seed=o.seed,
            shuffle=True,
            rank=rt.rank,
            world_size=rt.world_size,
        )
        self.steps_per_epoch = math.ceil(self.sampler.shard_size / o.batch_size)
        self.total_epochs = o.epochs + o.epochs_decay
        self.total_steps = self.steps_per_epoch * self.total_epochs
        if o.max_steps is not None:
            self.total_steps = min(self.total_steps, o.max_steps)
        if self.total_steps == 0:
            raise InvalidArgumentError(
                "nothing to train: "
                + (
                    "--max-steps is 0"
                    if o.max_steps == 0
                    else "--epochs and --epochs-decay are both 0"
                )
                + "; give at least one step"
            )
        for opt in self.task.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
        if o.resume:
            self._resume()
            if self.step >= self.total_steps:
                raise InvalidArgumentError(
                    f"{self.run_dir} already finished its {self.total_steps} steps; to train "
                    f"longer, resume with a larger --max-steps (or fine-tune in a new run)"
                )
        if rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._record_config()
        self.fixed = self._held_out_batch(o.num_samples)
        self.eval_batch = self._held_out_batch(o.eval_images) if o.eval_every else {}
        self._eval_cache: dict[str, Any] = {}
        self.last_eval: dict[str, float] = {}

    # -- setup -------------------------------------------------------------------------------
    @staticmethod
    def _seed_everything(seed: int) -> None:
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)

    def _first_readable_item(self) -> dict[str, Any]:
        """The first item whose images decode (at most one pass over the data, and only as far
        as the first good item): a domain whose every file is unreadable cannot be trained."""
        readable = {"A": False, "B": False}
        reasons: list[tuple[str, str]] = []
        for index in range(len(self.dataset)):
            item = self.dataset[index]
            if item["A"] is not None and item["B"] is not None:
                return item
            reasons += item.get("skipped", [])
            for key in readable:
                readable[key] |= item[key] is not None
        missing = [k for k, ok in readable.items() if not ok] or ["A", "B"]
        example = f" (e.g. {reasons[0][0]}: {reasons[0][1]})" if reasons else ""
        raise DataError(
            f"no readable image in domain {' or '.join(missing)} of {self.task.data_root}: "
            f"every file failed to decode{example}; replace or remove those files"
        )

    def _prepare(self, raw: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Decoded held-out images to floats on the device, at the training size."""
        return self.augment.held_out(
            {k: to_float(self.runtime.to_device(raw[k])) for k in ("A", "B")}
        )

    def networks(self) -> dict[str, torch.nn.Module]:
        """Every network a checkpoint holds: the task's and the averaged generators."""
        return {**self.task.nets, **(self.ema.networks() if self.ema else {})}

    def run_config(self) -> dict[str, Any]:
        from i2i import __version__

        return {
            "i2i_version": __version__,
            "task": self.task_name,
            "options": self.task.config,
            "domains": self.task.domains,
            "size": self.augment.size,
            "generators": self.task.generators(),
            "discriminators": self.task.discriminators(),
            "world_size": self.runtime.world_size,
        }

    def _record_config(self) -> None:
        """Write config.json; on resume, say which (resumable) options changed: it records them."""
        if self.options.resume:
            old = read_run_config(self.run_dir)["options"]
            changed = [
                f"--{k.replace('_', '-')} {old[k]!r} -> {v!r}"
                for k, v in self.task.config.items()
                if k in old and k not in PATH_OPTIONS and old[k] != v
            ]
            if changed:
                print(f"resuming with {', '.join(changed)}", flush=True)
        atomic_write_text(self.run_dir / CONFIG_FILE, json.dumps(self.run_config(), indent=2))

    def _resume(self) -> None:
        path = latest_checkpoint(self.run_dir)
        if path is None:  # stopped before its first checkpoint: it starts again
            print(f"{self.run_dir} has no checkpoint yet; training it from step 0", flush=True)
            return
        networks, state = load_checkpoint(path)
        load_networks_strict(self.networks(), networks)
        try:
            self._load_state(state)
        except I2IError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(
                f"checkpoint {path} does not hold this run's training state ({type(error).__name__}"
                f": {' '.join(str(error).split())[:120]}); the run folder was edited or mixed "
                f"with another run"
            ) from error

    def _load_state(self, state: dict[str, Any]) -> None:
        for name, opt in self.task.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        if state["scaler"] and self.runtime.scaler.is_enabled():
            self.runtime.scaler.load_state_dict(state["scaler"])
        per_rank = state["per_rank"]
        batch_size = self.options.batch_size
        saved = (len(per_rank), state.get("batch_size", batch_size))
        if saved != (self.runtime.world_size, batch_size):
            raise CheckpointError(
                f"{self.run_dir} was trained with {saved[0]} process(es) at batch size {saved[1]}; "
                f"resume it the same way (now {self.runtime.world_size} at {batch_size})"
                f" so that the data order and learning-rate schedule continue exactly"
            )
        mine = per_rank[self.runtime.rank]
        self.task.load_state_dict(mine["task"])
        _set_rng_state(mine["rng"])
        self.step = state["step"]
        self.skipped = dict(state.get("skipped", {}))
        if self.ema is not None:
            self.ema.updates = state["ema_updates"]

    def _held_out_batch(self, n: int) -> dict[str, torch.Tensor]:
        """The same few images for every sample grid and eval: held-out ones when there are."""
        try:
            dataset = self.task.dataset("test")
        except DataError:
            dataset = self.dataset
        n = min(n, len(dataset))
        batch = collate([self.task.held_out_item(dataset, i) for i in range(n)])
        return {} if batch["A"] is None else self._prepare(batch)

    def loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        workers = self.options.workers
        if workers is None:
            workers = 0 if self.in_memory else _default_workers(self.runtime.device)
        self.sampler.set_epoch(epoch, start=start)
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.options.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.runtime.device.type == "cuda",
            # Worker seeds come from this generator, never from the global RNG that resume
            # restores, so creating a loader mid-epoch does not shift any random stream.
            generator=torch.Generator().manual_seed(self.options.seed + epoch),
            prefetch_factor=4 if workers else None,
        )

    # -- the loop ----------------------------------------------------------------------------
    def set_learning_rate(self, epoch: int) -> float:
        o = self.options
        factor = lr_factor(epoch, o.epochs, o.epochs_decay, self.step, o.warmup_steps)
        lr = 0.0
        for opt in self.task.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr = group["initial_lr"] * factor
        return lr

    def train(self) -> TrainResult:
        rt, o = self.runtime, self.options
        with self.folder.released_on_error():
            logger = RunLogger(self.run_dir, self.total_steps, self.step, enabled=rt.is_main)
        stop = _StopFlag()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        samples_path = None
        stopping = False  # agreed by all ranks, unlike a signal that reached one of them
        if rt.is_main:
            logger.print(
                f"training {self.task_name}"
                f"{f' (recipe {self.options.recipe})' if self.options.recipe else ''} on "
                f"{len(self.dataset)} images/epoch "
                f"({self.task.data_root}), {self.total_steps} steps, device {rt.device}"
                f"{f' x{rt.world_size}' if rt.distributed else ''}, {rt.precision}; run folder "
                f"{self.run_dir}"
            )
        try:
            with stop.installed():
                while self.step < self.total_steps and not stopping:
                    epoch, done_in_epoch = divmod(self.step, self.steps_per_epoch)
                    lr = self.set_learning_rate(epoch)
                    batches = self.loader(epoch, done_in_epoch * o.batch_size)
                    for raw in prefetch(batches):  # decoding overlaps the step
                        if self.step < o.warmup_steps:
                            lr = self.set_learning_rate(epoch)
                        self._note_skipped(raw.get("skipped", []), logger)
                        raw = self._usable(raw)
                        if raw["A"] is not None:
                            batch = {k: to_float(rt.to_device(raw[k])) for k in ("A", "B")}
                            losses = self.task.step(self.augment(batch))
                            if self.ema is not None:
                                self.ema.update()
                            for key, value in losses.items():
                                sums[key] = sums[key] + value if key in sums else value
                            count += 1
                        self.step += 1
                        logger.advance(self.step, epoch)
                        last = self.step >= self.total_steps
                        if self.step % o.log_every == 0 or last:
                            if count:
                                values = {
                                    k: float(rt.mean_across_ranks(v / count).item())
                                    for k, v in sums.items()
                                }
                                logger.log(self.step, epoch, {**values, "lr": lr})
                            sums, count = {}, 0
                            if rt.distributed:
                                stopping = rt.all_reduce_max(float(stop.signum is not None)) > 0
                        if not rt.distributed:
                            stopping = stop.signum is not None
                        if o.eval_every and self.step % o.eval_every == 0:
                            self.evaluate(logger, epoch)
                        if self.step % o.sample_every == 0 and rt.is_main:
                            samples_path = self.write_samples(logger)
                        if self.step % o.save_every == 0:
                            self.save()
                        if last or stopping:
                            break
                checkpoint = self.save()
                if rt.is_main:
                    samples_path = self.write_samples(logger)
                loss_curve = logger.write_loss_curve()
        finally:
            logger.close()
            self.folder.release()
        result = TrainResult(
            self.run_dir, self.step, checkpoint, samples_path, loss_curve, stopping
        )
        if rt.is_main:
            self._summary(result)
        rt.close()
        return result

    def _usable(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Under DDP every rank must step (gradients are synchronised), so a batch whose images
        were all unreadable is replaced by this rank's previous good batch."""
        if raw["A"] is not None:
            self._last_good = raw
        elif self.runtime.distributed:
            if self._last_good is None:
                raise DataError(
                    f"rank {self.runtime.rank}'s first batch had no readable image; remove the "
                    f"unreadable files listed above and start again"
                )
            raw = self._last_good
        return raw

    def _note_skipped(self, skipped: list[tuple[str, str]], logger: RunLogger) -> None:
        for path, reason in skipped:
            if path not in self.skipped:
                self.skipped[path] = reason
                logger.print(f"warning: skipped unreadable image {path}: {reason}")

    # -- outputs -----------------------------------------------------------------------------
    def save(self) -> Path | None:
        rt = self.runtime
        per_rank_state = {"rng": _rng_state(), "task": self.task.state_dict()}
        if rt.distributed:
            import torch.distributed as dist

            gathered: list[Any] = [None] * rt.world_size
            dist.all_gather_object(gathered, per_rank_state)
        else:
            gathered = [per_rank_state]
        path = None
        if rt.is_main:
            state = {
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "optimizers": {n: o.state_dict() for n, o in self.task.optimizers.items()},
                "scaler": rt.scaler.state_dict(),
                "per_rank": gathered,
                "batch_size": self.options.batch_size,
                "skipped": self.skipped,
                "ema_updates": self.ema.updates if self.ema else 0,
            }
            path = save_checkpoint(
                self.run_dir,
                self.step,
                self.networks(),
                state,
                keep=self.options.keep_checkpoints,
            )
        rt.barrier()
        return path

    def evaluate(self, logger: RunLogger, epoch: int) -> None:
        """Held-out metrics on rank 0 (cycle PSNR/SSIM, FID/KID with --eval-extractor)."""
        if not self.runtime.is_main or not self.eval_batch:
            return
        from i2i.eval.evaluate import cycle_metrics, flat_metrics

        by_direction = {
            spec["direction"]: self.task.nets[name] for name, spec in self.task.generators().items()
        }
        with self._averaged(), self.runtime.autocast():
            result = cycle_metrics(
                by_direction,
                self.eval_batch,
                extractor=self.options.eval_extractor,
                cache=self._eval_cache,
                device=self.runtime.device,
            )
        self.last_eval = {f"eval/{k}": v for k, v in flat_metrics(result).items()}
        logger.metrics(self.step, epoch, self.last_eval)

    def _averaged(self) -> Any:
        """Samples and eval show the averaged generators when --ema-decay is on."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def write_samples(self, logger: RunLogger) -> Path | None:
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
        grid = image_grid(panels, caption=f"step {self.step}  {caption}".strip())
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"step_{self.step:08d}.png"
        for target in (path, folder / "latest.png"):
            atomic_write(target, lambda f: grid.save(f, format="PNG"))
        logger.image("samples", grid, self.step)
        return path

    def _summary(self, result: TrainResult) -> None:
        lines = []
        if result.interrupted:
            lines.append(
                f"Interrupted at step {result.step}; checkpoint saved. Resume with: "
                f"i2i train {self.task_name} --resume {quoted(self.run_dir)}"
            )
        else:
            lines.append(f"Finished {result.step} steps.")
        outputs = [
            ("run folder", self.run_dir),
            ("config", self.run_dir / CONFIG_FILE),
            ("checkpoint", result.checkpoint),
            ("samples", self.run_dir / "samples" / "latest.png"),
            ("losses", self.run_dir / METRICS_FILE),
            ("loss curve", result.loss_curve),
        ]
        lines += [f"  {name:<12} {path}" for name, path in outputs if path and Path(path).exists()]
        if self.skipped:
            lines.append(f"  skipped      {len(self.skipped)} unreadable image(s), listed above")
        if not result.interrupted:
            lines.append(
                f"Next: i2i export {quoted(self.run_dir)} -o MODEL_DIR, then i2i apply MODEL_DIR "
                f"IMAGES -o OUT"
            )
        print("\n".join(lines), flush=True)


def fit(task: Task) -> TrainResult:
    """Train a task built with ``i2i.create_task(name, **options)`` (the loop of ``i2i train``)."""
    return Trainer(task).train()


def train(task: str, config_file: str | None = None, **options: Any) -> TrainResult:
    """Train ``task`` with options given as keyword arguments (the CLI's flags, snake_case)."""
    config = resolve_config(task, options, config_file)
    return Trainer(tasks.create(task, **config)).train()
