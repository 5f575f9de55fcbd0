"""A whole short CycleGAN training run, data included, next to its step alone.

``train_speed.py`` times ``task.train_step`` on batches already on the device. A real run also
decodes and collates images, moves them to the device, augments them, logs, and writes samples
and a checkpoint. This script trains real runs through ``i2i.train.trainer.Trainer`` and reports, per
variant of the data path:

* ``step_s_per_iter``: the same trainer's ``task.train_step`` alone, on one augmented batch kept
  on the device, timed just before the run (the limit the run can reach), and
  ``step_in_run_s_per_iter``: every step of the run timed as it happened (same moments as the
  loop, so other work on a shared machine weighs on both alike);
* ``loop_s_per_iter``: the training loop per step (data, augmentation, step, logging);
* ``whole_s_per_iter``: the whole ``train()`` per step, with the fixed costs a longer run spreads
  over more steps (``logger_start_s``; ``outputs_s``: final checkpoint, sample grid, loss curve);
* ``data_wait_s`` and ``augment_s_per_iter``: where the loop's time beyond the step goes;
* ``loop_over_step`` and ``loop_over_step_in_run``: the price of the data path (target: 1.05).

Variants: ``baseline`` is the loader as the trainer builds it (worker processes with CUDA, none
on the CPU); ``overlap`` keeps the decoded dataset in memory when it fits (``keep_decoded``) and
runs the loader in a background thread (``prefetch``), with no worker processes when the dataset
is in memory.

Then, when a checkout of junyanz/pytorch-CycleGAN-and-pix2pix is at hand (``--official``, else
``I2I_OFFICIAL_CYCLEGAN``, else ``../shared/anchors/pytorch-CycleGAN-and-pix2pix`` beside the
repository when it exists), it runs the official ``train.py`` and ``i2i train`` on the same data
and settings as two processes, one after the other, and compares their wall-clock times and
peak memory (``process_cost.py``); ``--variants ""`` runs only that comparison.

    python benchmarks/whole_run.py                          # small networks, CPU or CUDA
    python benchmarks/whole_run.py --gen resnet9 --ngf 64 --ndf 64 --size 256 --steps 300
    python benchmarks/whole_run.py --variants "" --steps 200 --images 200 --official-repeats 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import torch
from peak import measure_peak, rate_fields, synchronize, task_step_flops
from process_cost import run_measured

import i2i
from i2i.data import find_images, keep_decoded, prefetch, to_float
from i2i.train import trainer as trainer_module
from i2i.train.logger import RunLogger
from i2i.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "monet2photo"
PEER_ENV = "I2I_OFFICIAL_CYCLEGAN"
ANCHOR = REPO.parent / "shared" / "anchors" / "pytorch-CycleGAN-and-pix2pix"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="DIR with trainA/trainB (default: monet2photo)")
    p.add_argument("--images", type=int, default=100, help="images per domain (one epoch)")
    p.add_argument("--steps", type=int, default=None, help="run length (default CPU 20, CUDA 300)")
    p.add_argument("--step-only", type=int, default=None, help="steps timed alone (default 10/50)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (1 CPU, 5 CUDA)")
    p.add_argument("--gen", default="resnet6")
    p.add_argument("--ngf", type=int, default=16)
    p.add_argument("--ndf", type=int, default=16)
    p.add_argument("--size", type=int, default=64, help="crop size")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--variants", default="baseline,overlap", help="comma-separated")
    p.add_argument(
        "--out",
        default=None,
        help="keep the run folders here, without their checkpoints (default: temporary)",
    )
    p.add_argument("--quick-peak", action="store_true", help="tiny peaks (smoke tests)")
    p.add_argument(
        "--official",
        default=os.environ.get(PEER_ENV) or (str(ANCHOR) if ANCHOR.is_dir() else None),
        help=f"checkout of the official code to run beside i2i train, or 'off' (default: "
        f"${PEER_ENV}, else {ANCHOR} when it exists)",
    )
    p.add_argument(
        "--official-repeats",
        type=int,
        default=1,
        help="pairs of runs, in alternating order (official first, then i2i first, ...)",
    )
    args = p.parse_args(argv)
    if args.official in ("", "off"):
        args.official = None
    return args


# -- data ----------------------------------------------------------------------------------------
def dataset_root(args: argparse.Namespace, work: Path) -> Path:
    """``--data``; else monet2photo's test split linked as a train split (256 px JPEGs); else the
    toy images enlarged to 256 px JPEGs, so that decoding costs what a real dataset's does."""
    if args.data:
        return Path(args.data)
    root = work / "data"
    if (SHARED / "testA").is_dir() and (SHARED / "testB").is_dir():
        for domain in "AB":
            (root / f"train{domain}").mkdir(parents=True, exist_ok=True)
            for image in sorted((SHARED / f"test{domain}").glob("*.jpg"))[: args.images]:
                (root / f"train{domain}" / image.name).symlink_to(image)
        return root
    from PIL import Image

    from i2i.toydata import toy_dataset_dir

    toy = toy_dataset_dir()
    for domain in "AB":
        (root / f"train{domain}").mkdir(parents=True, exist_ok=True)
        for image in sorted((toy / f"train{domain}").glob("*.png"))[: args.images]:
            with Image.open(image) as small:
                large = small.convert("RGB").resize((256, 256), Image.Resampling.BICUBIC)
            large.save(root / f"train{domain}" / f"{image.stem}.jpg", quality=95)
    return root


# -- the in-process runs -------------------------------------------------------------------------
class WaitTimed:
    """Iterates ``items`` and adds the time spent waiting for each one to ``totals["wait"]``."""

    def __init__(self, items: Iterable[Any], totals: dict[str, float]) -> None:
        self.items, self.totals = items, totals

    def __iter__(self) -> Iterator[Any]:
        iterator = iter(self.items)
        while True:
            start = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self.totals["wait"] += time.perf_counter() - start
            yield item


# Whether the trainer itself runs its loader through ``prefetch`` (and keeps decoded images):
# then the variants switch that off or on from outside, rather than adding a second layer.
WIRED = hasattr(trainer_module, "prefetch")


class BenchTrainer(Trainer):
    """The trainer with its data path chosen by ``variant`` and its waits and outputs timed."""

    def __init__(self, options: dict[str, Any], variant: str) -> None:
        super().__init__(i2i.create_task("cyclegan", **options))
        self.variant = variant
        self.totals = {"wait": 0.0, "outputs": 0.0, "logger_start": 0.0}
        if variant == "overlap":
            self.in_memory = getattr(self, "in_memory", False) or keep_decoded(self.dataset)
        else:
            self.in_memory = False
            self.dataset.cache = None
        if self.in_memory:
            self.options = dataclasses.replace(self.options, workers=0)
        self.spans: dict[str, list[Any]] = {"step": [], "augment": []}

    @contextmanager
    def waits_timed(self) -> Iterator[None]:
        """While the run lasts, the batches the loop takes come through ``WaitTimed``, after
        ``prefetch`` for the overlap and without it for the baseline."""
        if not WIRED:
            yield  # loader() below does it
            return
        real = trainer_module.prefetch

        def chosen(batches: Iterable[Any], depth: int = 2) -> Iterable[Any]:
            ahead = real(batches, depth) if self.variant == "overlap" else batches
            return WaitTimed(ahead, self.totals)

        trainer_module.prefetch = chosen
        try:
            yield
        finally:
            trainer_module.prefetch = real

    def time_in_run(self) -> None:
        """Time every ``task.train_step`` and every augmentation of the run as they happen, without
        waiting for the device: host clocks on the CPU (where both are synchronous), CUDA events
        around them on a GPU (their span is the work as the device ran it, gaps included)."""
        self.task.train_step = self._spanned(self.task.train_step, self.spans["step"])
        self.augment = self._spanned(self.augment, self.spans["augment"])

    def _spanned(self, fn: Any, spans: list[Any]) -> Any:
        cuda = self.runtime.device.type == "cuda"

        def timed(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            if not cuda:
                start = time.perf_counter()
                out = fn(batch)
                spans.append(time.perf_counter() - start)
                return out
            events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            events[0].record()
            out = fn(batch)
            events[1].record()
            spans.append(events)
            return out

        return timed

    def seconds_in_run(self, name: str) -> float:
        """Mean span of ``name`` ("step" or "augment"; after synchronising the device)."""
        spans = self.spans[name]
        total = sum(
            span if isinstance(span, float) else span[0].elapsed_time(span[1]) / 1000
            for span in spans
        )
        return total / max(len(spans), 1)

    def loader(self, epoch: int, start: int) -> Any:
        batches = super().loader(epoch, start)
        self.workers = batches.num_workers
        if WIRED:
            return batches
        return WaitTimed(prefetch(batches) if self.variant == "overlap" else batches, self.totals)

    def _timed_output(self, method: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args)
        finally:
            self.totals["outputs"] += time.perf_counter() - start

    def save(self) -> Any:
        return self._timed_output(super().save)

    def write_samples(self, logger: RunLogger) -> Any:
        return self._timed_output(super().write_samples, logger)

    def evaluate(self, logger: RunLogger, epoch: int) -> None:
        self._timed_output(super().evaluate, logger, epoch)


def augmented_batch(trainer: Trainer) -> dict[str, torch.Tensor]:
    """One real training batch, as the loop would hand it to ``task.train_step``."""
    raw = next(iter(Trainer.loader(trainer, 0, 0)))
    rt = trainer.runtime
    return trainer.augment({k: to_float(rt.to_device(raw[k])) for k in ("A", "B")})


def run_variant(args: argparse.Namespace, variant: str, data: Path, out: Path) -> dict[str, Any]:
    cuda_default = torch.cuda.is_available() and args.device in ("auto", "cuda")
    steps = args.steps or (300 if cuda_default else 20)
    step_only = args.step_only or (50 if cuda_default else 10)
    warmup = args.warmup if args.warmup is not None else (5 if cuda_default else 1)
    given = {
        "data": str(data),
        "out": str(out / variant),
        "gen": args.gen,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "crop_size": args.size,
        "load_size": round(args.size * 286 / 256),
        "batch_size": args.batch,
        "max_images": args.images,
        "max_steps": steps,
        "device": args.device,
        "precision": args.precision,
        "compile": args.compile,
        "threads": args.threads,
    }
    start = time.perf_counter()
    trainer = BenchTrainer(given, variant)
    setup_s = time.perf_counter() - start
    task, device = trainer.task, trainer.runtime.device

    batch = augmented_batch(trainer)
    for _ in range(warmup):
        task.train_step(batch)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(step_only):
        task.train_step(batch)
    synchronize(device)
    step_s = (time.perf_counter() - start) / step_only

    # Before the run: train() ends DDP's process group, which a wrapped network needs.
    flops = task_step_flops(task, lambda: task.train_step, batch)
    load_before = os.getloadavg()[0]
    trainer.time_in_run()
    start = time.perf_counter()
    # The trainer's summary goes to stderr with its progress: stdout carries JSON lines only.
    with logger_timed(trainer.totals), trainer.waits_timed(), redirect_stdout(sys.stderr):
        trainer.train()
    synchronize(device)
    whole_s = time.perf_counter() - start
    loop_s = whole_s - trainer.totals["outputs"] - trainer.totals["logger_start"]
    step_in_run_s = trainer.seconds_in_run("step")
    if trainer.runtime.is_main:  # samples, losses and curve stay; weights are not the point
        shutil.rmtree(trainer.run_dir / "checkpoints", ignore_errors=True)
    result: dict[str, Any] = {
        "bench": "whole_run",
        "variant": variant,
        "device": device.type,
        "gen": args.gen,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "size": args.size,
        "batch": args.batch,
        "precision": args.precision,
        "compile": args.compile,
        "world_size": trainer.runtime.world_size,
        "images_per_domain": len(trainer.dataset),
        "steps": steps,
        "epochs": round(steps / trainer.steps_per_epoch, 2),
        "workers": trainer.workers,
        "in_memory": trainer.in_memory,
        "setup_s": round(setup_s, 2),
        "step_s_per_iter": round(step_s, 5),
        "step_in_run_s_per_iter": round(step_in_run_s, 5),
        "loop_s_per_iter": round(loop_s / steps, 5),
        "augment_s_per_iter": round(trainer.seconds_in_run("augment"), 5),
        "whole_s_per_iter": round(whole_s / steps, 5),
        "logger_start_s": round(trainer.totals["logger_start"], 2),
        "outputs_s": round(trainer.totals["outputs"], 2),
        "data_wait_s": round(trainer.totals["wait"], 3),
        "step_steps_per_s": round(1 / step_s, 3),
        "loop_steps_per_s": round(steps / loop_s, 3),
        "whole_steps_per_s": round(steps / whole_s, 3),
        "loop_over_step": round(loop_s / steps / step_s, 3),
        "loop_over_step_in_run": round(loop_s / steps / step_in_run_s, 3),
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if device.type == "cuda":
        result["gpu_name"] = torch.cuda.get_device_name(device)
    peak = measure_peak(device, args.precision, quick=args.quick_peak)
    result.update(rate_fields(flops, loop_s / steps, peak))
    return result


@contextmanager
def logger_timed(totals: dict[str, float]) -> Iterator[None]:
    """Time what ``train()`` does through its ``RunLogger`` once per run, not per step: opening
    it (the TensorBoard writer) and drawing the loss curve at the end."""
    opened, drawn = RunLogger.__init__, RunLogger.write_loss_curve

    def timed(method: Any, key: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start

        return call

    RunLogger.__init__ = timed(opened, "logger_start")
    RunLogger.write_loss_curve = timed(drawn, "outputs")
    try:
        yield
    finally:
        RunLogger.__init__, RunLogger.write_loss_curve = opened, drawn


# -- the peer: the official code and i2i train as two processes ----------------------------------
def peer_on_cuda(args: argparse.Namespace) -> bool:
    return torch.cuda.is_available() and args.device in ("auto", "cuda")


def peer_commands(
    args: argparse.Namespace, data: Path, work: Path, steps: int
) -> dict[str, tuple[list[str], Path | None]]:
    """``i2i train`` and the official ``train.py`` with the same data, networks and length.

    Options are passed only when the official checkout declares them, so older and newer
    versions of its option files both work.
    """
    source = Path(args.official)
    options = "".join(
        path.read_text(errors="replace") for path in (source / "options").glob("*_options.py")
    )
    cuda = peer_on_cuda(args)
    net = {"resnet9": "resnet_9blocks", "resnet6": "resnet_6blocks"}.get(args.gen, args.gen)
    images = steps * args.batch
    official = {
        "--dataroot": data,
        "--name": "bench",
        "--model": "cycle_gan",
        "--checkpoints_dir": work / "official",
        "--netG": net,
        "--ngf": args.ngf,
        "--ndf": args.ndf,
        "--batch_size": args.batch,
        "--load_size": round(args.size * 286 / 256),
        "--crop_size": args.size,
        "--max_dataset_size": images,
        "--n_epochs": 1,
        "--n_epochs_decay": 0,
        "--gpu_ids": 0 if cuda else -1,
        "--display_id": 0,
        "--print_freq": 10**9,
        "--save_latest_freq": 10**9,
        "--save_epoch_freq": 10**9,
    }
    official_cmd = [sys.executable, str(source / "train.py")]
    for flag, value in official.items():
        if re.search(rf"['\"]{flag}['\"]", options):
            official_cmd += [flag, str(value)]
    if re.search(r"['\"]--no_html['\"]", options):
        official_cmd.append("--no_html")
    ours_cmd = [sys.executable, "-m", "i2i", "train", "cyclegan", "--data", str(data)]
    ours_cmd += ["--out", str(work / "i2i"), "--gen", args.gen, "--ngf", str(args.ngf)]
    ours_cmd += ["--ndf", str(args.ndf), "--batch-size", str(args.batch)]
    ours_cmd += ["--load-size", str(round(args.size * 286 / 256)), "--crop-size", str(args.size)]
    ours_cmd += ["--max-images", str(images), "--epochs", "1", "--epochs-decay", "0"]
    ours_cmd += ["--device", "cuda" if cuda else "cpu", "--precision", args.precision]
    return {"official": (official_cmd, source), "i2i": (ours_cmd, None)}


# Stand-ins for what the official code imports at the top but never calls in a run without
# wandb and HTML pages (``--no_html``), written only where the real package is not installed.
OFFICIAL_STUBS = {
    "wandb": {
        "wandb.py": "run = None\n\n\ndef init(*args, **kwargs):\n"
        "    raise RuntimeError('wandb is not installed')\n\n\nclass Image:\n    pass\n",
    },
    "dominate": {
        "dominate/__init__.py": "def document(*args, **kwargs):\n"
        "    raise RuntimeError('dominate is not installed')\n",
        "dominate/tags.py": "def __getattr__(name):\n"
        "    if name.startswith('__'):\n"
        "        raise AttributeError(name)\n"
        "    return document\n\n\n"
        "from dominate import document  # noqa: E402\n",
    },
}


def official_env(work: Path) -> tuple[dict[str, str], list[str]]:
    """The environment for the official process, and which packages were stood in for."""
    from importlib.util import find_spec

    stubs = work / "official_stubs"
    missing = [name for name in OFFICIAL_STUBS if find_spec(name) is None]
    for name in missing:
        for relative, text in OFFICIAL_STUBS[name].items():
            (stubs / relative).parent.mkdir(parents=True, exist_ok=True)
            (stubs / relative).write_text(text)
    env = dict(os.environ)
    if missing:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stubs), env.get("PYTHONPATH")]))
    return env, missing


def steps_in_one_epoch(data: Path, images: int, batch: int) -> int:
    """What both programs run for one epoch of at most ``images`` per domain: the larger
    domain's count (both read unpaired data that way), in batches, the last one partial."""
    per_domain = [min(len(find_images(data / f"train{d}")), images) for d in "AB"]
    return -(-max(per_domain) // batch)


def run_peer(args: argparse.Namespace, data: Path, work: Path, repeat: int = 0) -> dict[str, Any]:
    """One pair of whole runs, their folders and logs under ``work``; odd repeats start with
    i2i, so drift in the machine's load weighs on both sides alike over a pair of repeats."""
    asked = args.steps or (300 if torch.cuda.is_available() else 20)
    commands = peer_commands(args, data, work / f"peer{repeat}", asked)
    env, stubbed = official_env(work)
    record: dict[str, Any] = {
        "bench": "whole_run_peer",
        "official": str(args.official),
        "device": "cuda" if peer_on_cuda(args) else "cpu",
        "gen": args.gen,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "size": args.size,
        "batch": args.batch,
        "precision": args.precision,
        "steps": steps_in_one_epoch(data, asked * args.batch, args.batch),
        "repeat": repeat,
        "order": ["official", "i2i"] if repeat % 2 == 0 else ["i2i", "official"],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "official_stubs": stubbed,
    }
    for name in record["order"]:
        cmd, cwd = commands[name]
        log = work / f"peer{repeat}_{name}.log"
        load_before = os.getloadavg()[0]
        measured = run_measured(cmd, log, cwd=cwd, env=env if name == "official" else None)
        record[f"{name}_whole_s"] = round(measured["wall_s"], 2)
        record[f"{name}_max_rss_mb"] = round(measured["max_rss_mb"])
        pss = measured["peak_pss_mb"]
        record[f"{name}_peak_pss_mb"] = None if pss is None else round(pss)
        record[f"{name}_load_avg"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        if measured["returncode"]:
            lines = log.read_text(errors="replace").strip().splitlines() or ["no output"]
            record[f"{name}_error"] = lines[-1]
    shutil.rmtree(work / f"peer{repeat}" / "i2i" / "checkpoints", ignore_errors=True)
    if "official_error" not in record and "i2i_error" not in record:
        official_s, ours_s = record["official_whole_s"], record["i2i_whole_s"]
        record["speedup_vs_official"] = round(official_s / ours_s, 3)
        record["wall_ratio_i2i_over_official"] = round(ours_s / official_s, 3)
        memory = "peak_pss_mb" if record["i2i_peak_pss_mb"] is not None else "max_rss_mb"
        record["memory_ratio_i2i_over_official"] = round(
            record[f"i2i_{memory}"] / record[f"official_{memory}"], 3
        )
        record["memory_ratio_of"] = memory
        record["max_rss_ratio_i2i_over_official"] = round(
            record["i2i_max_rss_mb"] / record["official_max_rss_mb"], 3
        )
    return record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="i2i-whole-run-") as tmp:
        work = Path(tmp)
        out = Path(args.out) if args.out else work / "runs"
        data = dataset_root(args, work)
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            result = run_variant(args, variant, data, out)
            if int(os.environ.get("RANK", "0")) == 0:  # under torchrun: one line per run
                print(json.dumps(result), flush=True)
        if int(os.environ.get("RANK", "0")) != 0:
            pass
        elif args.official:
            for repeat in range(args.official_repeats):
                print(json.dumps(run_peer(args, data, out, repeat)), flush=True)
        elif not args.variants.strip():  # asked for the comparison alone: say why there is none
            skipped = f"no official checkout (--official, ${PEER_ENV} or {ANCHOR})"
            print(json.dumps({"bench": "whole_run_peer", "skipped": skipped}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
