"""Training speed of the training tasks: one JSON line per configuration, never an assertion.

Each configuration (device, crop size, batch, precision, compile) runs in a fresh subprocess so
that its peak memory is its own: peak RSS on the CPU (``ru_maxrss``), ``max_memory_allocated`` on
CUDA. What is timed is the task's real training step (``task.train_step``) on synthetic float batches
in [-1, 1], already at crop size and on the device, so data loading and augmentation are left
out; warm-up steps are excluded and CUDA is synchronised only around the timed region.

Each line also carries the FLOPs of one step and the achieved GFLOP/s as a fraction of the
device's matmul and convolution peaks, measured in the same process (``peak.py``), so "at the
limit" is a number on any machine. Comparisons are only with what the same run measured
(``--plain``, and bf16 against fp32).

    python benchmarks/train_speed.py                                 # CPU, plus CUDA when present
    python benchmarks/train_speed.py --sizes 128 --batches 1 --steps 3   # a quick look
    python benchmarks/train_speed.py --devices cuda --precisions fp32,bf16 --compile both
    python benchmarks/train_speed.py --tasks cyclegan,cut,unsb --sizes 256 --batches 1  # side by side

A UNSB step walks its bridge to a random step first (0 to 4 generator passes without gradients),
so its time varies from step to step: time enough steps for the mean (5 steps draw the same
step numbers in every run, from the seed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

import torch
from peak import measure_peak, rate_fields, task_step_flops

from i2i.core.device import native_half


def _csv(kind: type) -> Any:
    return lambda text: [kind(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=_csv(int), default=[128, 256], help="crop sizes, e.g. 128,256")
    p.add_argument("--batches", type=_csv(int), default=[1, 4], help="batch sizes, e.g. 1,4")
    p.add_argument(
        "--devices",
        type=_csv(str),
        default=None,
        help="cpu and/or cuda (default: cpu, plus cuda when available)",
    )
    p.add_argument(
        "--precisions",
        type=_csv(str),
        default=None,
        help="precisions (default fp32,bf16 on CUDA and on CPUs with native bf16, else fp32)",
    )
    p.add_argument(
        "--compile",
        choices=("off", "on", "both"),
        default=None,
        help="torch.compile the networks (default: both on CUDA, off on the CPU)",
    )
    p.add_argument("--steps", type=int, default=None, help="timed steps (default CPU 3, CUDA 20)")
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed steps first (default: 1 on the CPU, 3 on CUDA or compiled)",
    )
    p.add_argument(
        "--tasks",
        type=_csv(str),
        default=["cyclegan"],
        help="registered tasks to time side by side, e.g. cyclegan,cut,fastcut",
    )
    p.add_argument("--gen", default="resnet9")
    p.add_argument("--disc", default="patchgan")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each run")
    p.add_argument(
        "--channels-last",
        choices=("auto", "on", "off"),
        default="auto",
        help="memory format of networks and batches (auto: the Runtime's choice, on for CUDA)",
    )
    p.add_argument(
        "--quick-peak",
        action="store_true",
        help="tiny peak microbenchmarks (smoke tests: the fractions are then meaningless)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        help="print a torch.profiler table (this many rows) of the timed steps to stderr",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="also time a plain step after each task step: the same networks and losses with "
        "one network call per term and no image pool, as the official code orders them (a "
        "same-moment comparison on a busy machine)",
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- one configuration, in its own process ------------------------------------------------------
def plain_step(task: Any) -> Any:
    """A step of the same objective written plainly, one network call per term (no merged
    batches, no image pool), for comparison with ``task.train_step``; returns a callable."""
    import torch

    rt = task.runtime
    G_AB, G_BA, D_A, D_B = task.G_AB, task.G_BA, task.D_A, task.D_B
    lam_a, lam_b, lam_idt = task.lambda_a, task.lambda_b, task.lambda_idt
    gan, l1 = task.gan_loss, torch.nn.functional.l1_loss

    def step(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        with rt.autocast(), task.optimizing("G") as g:
            fake_B = G_AB(real_A)
            rec_A = G_BA(fake_B)
            fake_A = G_BA(real_B)
            rec_B = G_AB(fake_A)
            idt_A, idt_B = G_BA(real_A), G_AB(real_B)
            loss_G = (
                gan(D_B(fake_B), True, for_discriminator=False)
                + gan(D_A(fake_A), True, for_discriminator=False)
                + l1(rec_A, real_A) * lam_a
                + l1(rec_B, real_B) * lam_b
                + l1(idt_A, real_A) * lam_a * lam_idt
                + l1(idt_B, real_B) * lam_b * lam_idt
            )
            g.minimize(loss_G)
        with rt.autocast(), task.optimizing("D") as d:
            loss_D_A = 0.5 * (gan(D_A(real_A), True) + gan(D_A(fake_A.detach()), False))
            loss_D_B = 0.5 * (gan(D_B(real_B), True) + gan(D_B(fake_B.detach()), False))
            d.minimize(loss_D_A)
            d.minimize(loss_D_B)
        rt.scaler.update()
        return {"G": loss_G.detach(), "D_A": loss_D_A.detach(), "D_B": loss_D_B.detach()}

    return step


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    import i2i
    from i2i.kit.groups import RunOptions
    from i2i.train.runtime import Runtime

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    size, batch = spec["size"], spec["batch"]
    given = {
        # Any data path: it keeps the toy defaults out, and the step never reads it.
        "data": os.devnull,
        "gen": spec["gen"],
        "disc": spec["disc"],
        "ngf": spec["ngf"],
        "ndf": spec["ndf"],
        "crop_size": size,
        "load_size": size,
        "batch_size": batch,
        "device": spec["device"],
        "precision": spec["precision"],
        "compile": spec["compile"],
    }
    task = i2i.create_task(spec["task"], **given)
    run = RunOptions.of(task.config)
    runtime = Runtime(run.device, run.precision, run.compile)
    if spec["channels_last"] != "auto":
        runtime.channels_last = spec["channels_last"] == "on"
    device = runtime.device
    cuda = device.type == "cuda"
    torch.manual_seed(run.seed)
    task.attach(runtime, seed=run.seed)
    generator = torch.Generator(device=device).manual_seed(1)

    def synthetic() -> dict[str, torch.Tensor]:
        shape = (batch, 3, size, size)
        return {
            k: runtime.to_device(torch.rand(shape, generator=generator, device=device) * 2 - 1)
            for k in ("A", "B")
        }

    batches = [synthetic() for _ in range(2)]
    task.build(batches[0])  # CUT sizes its patch heads from a first batch

    def make_step() -> Any:
        return plain_step(task) if spec.get("impl") == "plain" else task.train_step

    step = make_step()

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    for i in range(spec["warmup"]):
        step(batches[i % 2])
    flops = task_step_flops(task, make_step, batches[0])
    sync()
    profiler = None
    if spec["profile"]:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        profiler = profile(activities=activities, record_shapes=False)
        profiler.__enter__()
    sync()
    load_before = os.getloadavg()[0]
    cpu_start = time.process_time()
    start = time.perf_counter()
    losses = {}
    step_times = []  # per step on the CPU only, where a step is synchronous anyway
    for i in range(spec["steps"]):
        t = time.perf_counter()
        losses = step(batches[i % 2])
        if not cuda:
            step_times.append(time.perf_counter() - t)
    sync()
    elapsed = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if profiler is not None:
        profiler.__exit__(None, None, None)
        averages = profiler.key_averages()
        try:
            sort = "self_device_time_total" if cuda else "self_cpu_time_total"
            table = averages.table(sort_by=sort, row_limit=spec["profile"])
        except (AttributeError, KeyError):  # older torch names the device column "cuda"
            table = averages.table(sort_by="self_cuda_time_total", row_limit=spec["profile"])
        print(table, file=sys.stderr, flush=True)
    finite = all(bool(torch.isfinite(v).all()) for v in losses.values())

    s_per_iter = elapsed / spec["steps"]
    result: dict[str, Any] = {"bench": "train_speed", "device": device.type}
    if cuda:
        result["gpu_name"] = torch.cuda.get_device_name(device)
    result.update(
        task=spec["task"],
        impl=spec.get("impl", "task"),
        size=size,
        batch=batch,
        # The networks the task built (unsb: unsb_resnet9 for --gen resnet9).
        gen=next(iter(task.generators().values()))["name"],
        disc=next(iter(task.discriminators().values()))["name"],
        ngf=spec["ngf"],
        ndf=spec["ndf"],
        precision=spec["precision"],
        compile=spec["compile"],
        channels_last=runtime.channels_last,
        warmup=spec["warmup"],
        steps=spec["steps"],
        s_per_iter=round(s_per_iter, 4),
        # Images per second per domain: a step translates `batch` A images and `batch` B images.
        images_per_s=round(batch / s_per_iter, 3),
    )
    if step_times:
        # The fastest step: the least disturbed by other processes on a shared machine.
        result["s_per_iter_min"] = round(min(step_times), 4)
    result.update(
        # Process CPU seconds per step: ~threads x s_per_iter when the cores are ours alone.
        cpu_s_per_iter=round(cpu_seconds / spec["steps"], 4),
        # 1-minute load average before and after the timed steps; above the core count, other
        # processes were competing for the CPU and the figures are pessimistic.
        load_avg=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    if cuda:
        # The whole process's peak, warm-up (and compilation) included: what training needs.
        result["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    else:
        # Linux reports ru_maxrss in KiB.
        result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    # The peaks last, so that their large matrices stay out of the memory figures above.
    peak = measure_peak(device, spec["precision"], quick=spec["quick_peak"])
    result.update(rate_fields(flops, s_per_iter, peak))
    result.update(
        losses_finite=finite,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
    )
    return result


# -- the driver ---------------------------------------------------------------------------------
def configurations(args: argparse.Namespace, cuda_available: bool) -> list[dict[str, Any]]:
    devices = args.devices or (["cpu", "cuda"] if cuda_available else ["cpu"])
    specs = []
    for device in devices:
        if device == "cuda" and not cuda_available:
            print(
                json.dumps({"bench": "train_speed", "device": "cuda", "skipped": "no CUDA here"}),
                flush=True,
            )
            continue
        if device == "cuda":
            precisions = args.precisions or ["fp32", "bf16"]
            compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile or "both"]
            steps = args.steps or 20
        else:
            native = native_half(torch.device("cpu"), torch.bfloat16)
            precisions = args.precisions or (["fp32", "bf16"] if native else ["fp32"])
            compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile or "off"]
            steps = args.steps or 3
        for task, size in ((t, z) for t in args.tasks for z in args.sizes):
            for batch in args.batches:
                for precision in precisions:
                    for compiled in compiles:
                        default_warmup = 3 if compiled or device == "cuda" else 1
                        warmup = args.warmup if args.warmup is not None else default_warmup
                        specs.append(
                            {
                                "task": task,
                                "device": device,
                                "size": size,
                                "batch": batch,
                                "precision": precision,
                                "compile": compiled,
                                "steps": steps,
                                "warmup": warmup,
                                "gen": args.gen,
                                "disc": args.disc,
                                "ngf": args.ngf,
                                "ndf": args.ndf,
                                "threads": args.threads,
                                "channels_last": args.channels_last,
                                "quick_peak": args.quick_peak,
                                "profile": args.profile,
                            }
                        )
                        if args.plain:
                            specs.append({**specs[-1], "impl": "plain"})
    return specs


def add_comparisons(result: dict[str, Any], ours_fp32: dict[tuple, float]) -> None:
    """bf16 against fp32 of the same configuration, when this run measured both."""
    key = (result["task"], result["device"], result["size"], result["batch"], result["compile"])
    if result["precision"] == "bf16" and key in ours_fp32:
        result["speedup_vs_fp32"] = round(result["images_per_s"] / ours_fp32[key], 2)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        print(json.dumps(run_one(json.loads(args.worker))), flush=True)
        return 0

    specs = configurations(args, torch.cuda.is_available())
    ours_fp32: dict[tuple, float] = {}
    failures = 0
    for spec in specs:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.stderr.strip() and (proc.returncode or spec["profile"]):
            print(proc.stderr.rstrip(), file=sys.stderr, flush=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode or not lines:
            failures += 1
            error = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            keys = ("task", "device", "size", "batch", "precision", "compile")
            record = {"bench": "train_speed", **{k: spec[k] for k in keys}, "error": error}
            print(json.dumps(record), flush=True)
            continue
        result = json.loads(lines[-1])
        if result["precision"] == "fp32" and result["impl"] == "task":
            key = (
                result["task"],
                result["device"],
                result["size"],
                result["batch"],
                result["compile"],
            )
            ours_fp32[key] = result["images_per_s"]
        add_comparisons(result, ours_fp32)
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
