"""The task-independent training loop: data, devices, schedule, logging, samples, checkpoints.

The loop never waits for the device except every ``log_every`` steps (loss values), when it
samples and when it checkpoints. Learning rates are a pure function of the epoch, and the data
order a pure function of (seed, epoch), so a run resumed from a checkpoint continues exactly.
Its parts: the data (``feed``), the run folder (``run_folder``), checkpoints and resume
(``checkpoints``), samples, eval and the summary (``outputs``), the schedule (``schedule``),
the compiled step (``compiled``) and the runtime the task runs on (``runtime``).
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2i.core import errors
from i2i.core.errors import (
    I2IError,
    I2IWarning,
    InputSizeError,
    InvalidArgumentError,
    WriteError,
)
from i2i.data import collate, keep_decoded, prefetch
from i2i.kit.groups import RunOptions
from i2i.kit.task import Task
from i2i.models.checkpoint import latest_checkpoint, read_run_config
from i2i.train import checkpoints, schedule
from i2i.train.augmentation import BatchAugmentation
from i2i.train.compiled import CompiledStep
from i2i.train.ema import GeneratorEMA
from i2i.train.feed import DataFeed, default_workers
from i2i.train.init_from import init_networks
from i2i.train.logger import RunLogger
from i2i.train.outputs import RunOutputs, print_stopped_at_once, print_summary
from i2i.train.run_folder import claim_run_folder, record_config
from i2i.train.runtime import Runtime
from i2i.train.stop import StopFlag


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    checkpoint: Path | None
    samples: Path | None
    loss_curve: Path | None
    interrupted: bool = False
    # The signal that asked this process to stop (SIGINT, SIGTERM), for the exit status a shell
    # and a scheduler expect; None when it finished, or stopped with the other ranks.
    signal: int | None = None


@contextmanager
def training_size_errors(augment: BatchAugmentation) -> Iterator[None]:
    """Size errors said in training's terms: the size the user chooses here is --crop-size
    (with --preprocess none, the images' own), and apply's advice (pad the image) does not
    apply."""
    try:
        yield
    except InputSizeError as error:
        if error.need is None:
            raise
        if not augment.crops:
            raise InputSizeError(
                f"the training images do not suit these networks: {error.need}; resize them, "
                f"or let --preprocess resize_crop crop them to a --crop-size that does"
            ) from error
        fit = error.fit or 0
        load = f" with --load-size {fit} or more" if fit > augment.load_size else ""
        raise InputSizeError(
            f"--crop-size {augment.size} does not suit these networks: {error.need}; use "
            f"--crop-size {fit}{load}, or another --gen"
        ) from error
    except ValueError as error:  # torch's norm layers on a map shrunk to one value
        torch_says, got, _ = str(error).partition(", got input size")
        if not got:
            raise
        size = f"--crop-size {augment.size}" if augment.crops else "the training images' size"
        raise InputSizeError(
            f"{size} is too small for these networks: a feature map shrinks to 1x1 "
            f"({torch_says.strip()}); use a larger {'--crop-size' if augment.crops else 'size'}, "
            f"or a critic with fewer stride-2 layers (--disc nlayer --disc-kw n_layers=2)"
        ) from error


def check_eval_measures(task: Task, o: RunOptions) -> None:
    """Refuse an --eval-every that would measure nothing: a one-way model of unpaired data has no
    cycle to score and no targets, so only FID/KID (--eval-extractor) can say how it does. A run
    recorded so before this check resumes, with a warning (its eval measured nothing then too)."""
    if not o.eval_every or o.eval_extractor is not None or task.paired:
        return
    directions = {spec["direction"] for spec in task.generators().values()}
    if len(directions) < 2:
        message = (
            f"--eval-every measures cycle PSNR/SSIM, which a {task.name} model (one way, "
            f"{'/'.join(sorted(directions))}) does not have: add --eval-extractor NAME for FID/KID "
            f"(`i2i list feature_extractors`), or --eval-every 0"
        )
        if not o.resume:
            raise InvalidArgumentError(message)
        warnings.warn(message, I2IWarning, stacklevel=2)


class Trainer:
    def __init__(self, task: Task) -> None:
        o = RunOptions.of(task.config)
        root, out = task.data_root, Path(o.out).resolve() if o.out else None
        for split in ("trainA", "trainB", "testA", "testB", "train", "test"):
            if (
                root is not None
                and out is not None
                and out.is_relative_to((root / split).resolve())
            ):
                raise InvalidArgumentError(  # its sample grids would be read as images next time
                    f"--out {o.out} is inside {root / split}, which training reads; put the "
                    f"run folder elsewhere"
                )
        # The run folder is this process's alone until train() ends (or setting up fails).
        self.folder = claim_run_folder(o.out, o.resume, task.name)
        with self.folder.released_on_error():
            self._setup(task)

    def _setup(self, task: Task) -> None:
        self.task = task
        # The trainer's options; the task reads its own groups, the augmentation its own.
        self.options = o = RunOptions.of(task.config)
        if o.threads:
            torch.set_num_threads(o.threads)
        self.runtime = rt = Runtime(o.device, o.precision, o.compile)
        task.attach(rt, seed=o.seed)
        check_eval_measures(task, o)
        torch.manual_seed(o.seed)  # identical network init on every rank
        self.augment = BatchAugmentation.for_task(task)
        self.data = DataFeed(task, rt, self.augment, batch_size=o.batch_size, seed=o.seed)
        self.dataset = self.data.dataset
        # Small datasets stay decoded in memory: no decoding on the critical path, no workers.
        self.in_memory = keep_decoded(self.dataset)
        with training_size_errors(self.augment):
            task.build(self.data.held_out(collate([self.data.first_readable_item()])))
        # Before the EMA copies the generators; a resumed run has its own weights, unless it
        # stopped before its first checkpoint and starts again from step 0.
        self.started_from, self.recorded_start = None, None
        has_weights = bool(o.resume) and latest_checkpoint(self.folder.path) is not None
        if o.init_from is not None and not has_weights:
            self.started_from, self.recorded_start = init_networks(
                o.init_from, task.nets, task.generators(), task.discriminators(),
                task.argument_flag,
            )  # fmt: skip
        elif has_weights:  # a resumed run started from what it recorded at its start
            self.recorded_start = read_run_config(self.folder.path).get("started_from")
        if o.ema_decay > 0:
            rt.ema = GeneratorEMA({n: task.nets[n] for n in task.generators()}, o.ema_decay)
        checkpoints.seed_everything(o.seed + rt.rank)
        self.run_dir = self.folder.path
        self.step = 0
        self.steps_per_epoch = self.data.steps_per_epoch
        self.total_steps = self._total_steps()
        schedule.remember_initial_lr(task.optimizers.values())
        if o.resume:
            self.step, self.data.skipped = checkpoints.resume_run(
                self.run_dir, task, rt, o.batch_size
            )
            if self.step >= self.total_steps:
                asked = f" (asked for {self.total_steps})" if self.total_steps < self.step else ""
                raise InvalidArgumentError(
                    f"{self.run_dir} has already trained {self.step} steps{asked}; to train "
                    f"longer, resume with a larger --max-steps (or start a new run from its "
                    f"weights: --init-from {self.run_dir})"
                )
        self.fixed = self.data.held_out_batch(o.num_samples)
        eval_batch = self.data.held_out_batch(o.eval_images) if o.eval_every else {}
        if rt.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            record_config(self.run_dir, self.run_config(), resuming=bool(o.resume))
        self.outputs = RunOutputs(task, rt, self.run_dir, self.fixed, eval_batch, o.eval_extractor)

    def _total_steps(self) -> int:
        o = self.options
        total = self.steps_per_epoch * (o.epochs + o.epochs_decay)
        if o.max_steps is not None:
            total = min(total, o.max_steps)
        if total == 0:
            why = (
                "--max-steps is 0" if o.max_steps == 0 else "--epochs and --epochs-decay are both 0"
            )
            raise InvalidArgumentError(f"nothing to train: {why}; give at least one step")
        return total

    def run_config(self) -> dict[str, Any]:
        """What config.json records: the task, its options (as given), domains, size, networks,
        and the precision that ran (fp32 where this CPU only emulates the one asked for)."""
        from i2i import __version__

        return {
            "i2i_version": __version__,
            "task": self.task.name,
            "options": self.task.config,
            "domains": self.task.domains,
            "size": self.augment.size,
            "generators": self.task.generators(),
            "discriminators": self.task.discriminators(),
            "world_size": self.runtime.world_size,
            "precision": self.runtime.precision,
            "samples_from": self.data.samples_from,
            "images_per_epoch": len(self.dataset),  # a resume says when --data changed
            "started_from": self.recorded_start,  # --init-from's model; a Hub id with @COMMIT
        }

    # -- the loop ----------------------------------------------------------------------------
    def train(self) -> TrainResult:
        rt, o = self.runtime, self.options
        with self.folder.released_on_error():
            logger = RunLogger(self.run_dir, self.total_steps, self.step, enabled=rt.is_main)
        run_step = CompiledStep(self.task, rt, logger.print) if rt.compile else None
        run_step = run_step or self.task.train_step
        stop, sums, count, samples_path, sampled_at = StopFlag(), {}, 0, None, None
        stopping = False  # agreed by all ranks, unlike a signal that reached one of them
        logger.print(self._start_line())
        try:
            with stop.installed(), training_size_errors(self.augment):
                while self.step < self.total_steps and not stopping:
                    epoch, done_in_epoch = divmod(self.step, self.steps_per_epoch)
                    lr = self.set_learning_rate(epoch)
                    for raw in prefetch(self.loader(epoch, done_in_epoch * o.batch_size)):
                        if self.step < o.warmup_steps:
                            lr = self.set_learning_rate(epoch)
                        raw = self.data.usable(raw, logger.print)
                        if raw["A"] is not None:
                            losses = run_step(self.augment(self.data.to_device(raw)))
                            for key, value in losses.items():
                                sums[key] = sums.get(key, 0) + value  # a new tensor, no sync
                            count += 1
                        self.step += 1
                        logger.advance(self.step, epoch)
                        last = self.step >= self.total_steps
                        stopping = rt.agreed_stop(stop.raised)
                        # A stop between log steps logs its part of the interval, which the
                        # resumed run would not.
                        if self.step % o.log_every == 0 or last or stopping:
                            if count:
                                means = self._means(sums, count)
                                _stop_if_diverged(means, self.step)
                                logger.log(self.step, epoch, {**means, "lr": lr})
                            sums, count = {}, 0
                        if o.eval_every and self.step % o.eval_every == 0:
                            self.evaluate(logger, epoch)
                        if o.sample_every and self.step % o.sample_every == 0 and rt.is_main:
                            samples_path, sampled_at = self.write_samples(logger), self.step
                        if self.step % o.save_every == 0:
                            self.save()
                        if last or stopping:
                            break
                checkpoint = self.save()
                if rt.is_main and sampled_at != self.step:  # the last grid, once
                    samples_path = self.write_samples(logger)
                loss_curve = logger.write_loss_curve()
        except WriteError as error:
            if rt.is_main:
                self.folder.check_still_there(error)
            raise
        except KeyboardInterrupt:  # a second signal: out at once, but say what is left
            if rt.is_main:
                print_stopped_at_once(self.task.name, self.run_dir)
            raise
        finally:
            failed = sys.exc_info()[0] is not None
            try:
                logger.close(failed)
            finally:  # a close that fails (a full disk) still gives the folder up
                self.folder.release(failed)
        result = TrainResult(
            self.run_dir,
            self.step,
            checkpoint,
            samples_path,
            loss_curve,
            stopping,
            stop.signum if stopping else None,  # not one that came after the last step
        )
        if rt.is_main:
            files = {"checkpoint": checkpoint, "loss curve": loss_curve}
            print_summary(
                self.task.name, self.run_dir, self.step, stopping, files, len(self.data.skipped)
            )
        rt.close()
        return result

    def _start_line(self) -> str:
        rt, o = self.runtime, self.options
        recipe = f" (recipe {o.recipe})" if o.recipe not in (None, "none") else ""
        if not recipe and "quality" in self.task.recipes and not o.resume:
            recipe = " (no recipe; --recipe quality trains better pictures in short runs)"
        ranks = f" x{rt.world_size}" if rt.distributed else ""
        compiled = (", compiled" + (" with CUDA graphs" if rt.graphs else "")) if rt.compile else ""
        started = f"; {self.started_from}" if self.started_from else ""
        steps = errors.count(self.total_steps, "step")
        if o.max_steps is not None and o.max_steps > self.total_steps:  # the schedule ends first
            steps += (
                f" (the schedule's end: --epochs {o.epochs} + --epochs-decay {o.epochs_decay} at "
                f"{self.steps_per_epoch} steps each; more epochs train up to --max-steps "
                f"{o.max_steps})"
            )
        decay_start = o.epochs * self.steps_per_epoch
        if o.epochs_decay and self.total_steps <= decay_start:  # --max-steps ends it first
            steps += (
                f" at a constant learning rate (its decay starts at step {decay_start}, after "
                f"--max-steps; smaller --epochs and --epochs-decay put the decay within it)"
            )
        return (
            f"training {self.task.name}{recipe} on {errors.count(len(self.dataset), 'image')}/epoch "
            f"({self.task.data_root}), {steps}, device {rt.device}{ranks}, "
            f"{rt.precision}{compiled}{started}; run folder {self.run_dir}"
        )

    def _means(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """The interval's mean losses, read from the device (the loop's one wait), all ranks'."""
        return {k: float(self.runtime.mean_across_ranks(v / count).item()) for k, v in sums.items()}

    def set_learning_rate(self, epoch: int) -> float:
        o = self.options
        factor = schedule.lr_factor(epoch, o.epochs, o.epochs_decay, self.step, o.warmup_steps)
        return schedule.set_learning_rate(self.task.optimizers.values(), factor)

    def loader(self, epoch: int, start: int) -> torch.utils.data.DataLoader:
        workers = self.options.workers
        if workers is None:
            workers = 0 if self.in_memory else default_workers(self.runtime.device)
        return self.data.loader(epoch, start, workers)

    # -- outputs -----------------------------------------------------------------------------
    def save(self) -> Path | None:
        if self.runtime.is_main:
            self.folder.check_still_there()
        return checkpoints.save_run(
            self.run_dir,
            self.task,
            self.runtime,
            step=self.step,
            epoch=self.step // self.steps_per_epoch,
            batch_size=self.options.batch_size,
            skipped=self.data.skipped,
            keep=self.options.keep_checkpoints,
        )

    def evaluate(self, logger: RunLogger, epoch: int) -> None:
        self.outputs.evaluate(logger, self.step, epoch)

    def write_samples(self, logger: RunLogger) -> Path | None:
        return self.outputs.write_samples(logger, self.step)


def fit(task: Task) -> TrainResult:
    """Train a task built with ``i2i.create_task(name, **options)`` (the loop of ``i2i train``)."""
    return Trainer(task).train()


def _stop_if_diverged(means: dict[str, float], step: int) -> None:
    """Stop at the first log line whose losses are NaN or infinite: every later step would
    train on NaN and the saved model would write black pictures. The state of this interval
    is not saved; the run's earlier checkpoints stay as they were."""
    bad = [f"{name}={value}" for name, value in means.items() if not math.isfinite(value)]
    if bad:
        raise I2IError(
            f"training diverged by step {step} ({', '.join(bad)}) and stopped without saving "
            f"it; train again with a lower --lr (or --precision fp32)"
        )
