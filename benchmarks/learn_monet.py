"""Evidence that the CycleGAN task learns on real images: Monet paintings <-> landscape photos.

Builds a dataset folder of symlinks into ``../shared/data/monet2photo`` (trainA: the first 100
paintings, trainB: the first 500 photos, testA/testB: held-out images of each), trains
``cyclegan`` for a fixed wall-clock budget through ``i2i.train.trainer.train`` (a short
calibration chunk, then chunks sized from the measured s/iter, continued with ``resume``), and
prints one JSON line: cycle-reconstruction PSNR on the held-out images in both directions, the
same at initialisation and two baselines for context, and where the run folder, sample grids and
loss curve are.

    python benchmarks/learn_monet.py --minutes 15            # ~15 min on 2 CPU cores
    python benchmarks/learn_monet.py --minutes 2 --out /tmp/monet_quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "monet2photo"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget")
    p.add_argument("--out", default=None, help="output folder (default: a new one under /tmp)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="monet2photo folder (testA, testB)")
    p.add_argument("--train-a", type=int, default=100, help="paintings to train on")
    p.add_argument("--train-b", type=int, default=500, help="photos to train on")
    p.add_argument("--test", type=int, default=20, help="held-out images per domain")
    p.add_argument("--size", type=int, default=128, help="crop size (training resolution)")
    p.add_argument("--load", type=int, default=143, help="resize before the random crop")
    p.add_argument("--gen", default="resnet6")
    p.add_argument("--ngf", type=int, default=32)
    p.add_argument("--ndf", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's, one per core); 1 is much faster when "
        "other processes compete for the cores",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibrate-steps", type=int, default=20, help="first, timed chunk")
    p.add_argument("--sample-every", type=int, default=100)
    return p.parse_args(argv)


def _images(folder: Path) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png"}
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in exts)


def build_dataset(src: Path, dst: Path, n_a: int, n_b: int, n_test: int) -> dict[str, int]:
    """trainA/trainB/testA/testB of symlinks; the held-out images follow the training ones."""
    paintings, photos = _images(src / "testA"), _images(src / "testB")
    n_a, n_b = min(n_a, len(paintings) - 1), min(n_b, len(photos) - 1)
    split = {
        "trainA": paintings[:n_a],
        "trainB": photos[:n_b],
        "testA": paintings[n_a : n_a + n_test],
        "testB": photos[n_b : n_b + n_test],
    }
    for name, files in split.items():
        folder = dst / name
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            link = folder / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
    return {name: len(files) for name, files in split.items()}


# -- evaluation ---------------------------------------------------------------------------------
def _load_split(folder: Path, size: int, device: Any) -> Any:
    import torch
    import torch.nn.functional as F

    from i2i.data import load_image, to_float

    x = torch.stack([load_image(p) for p in _images(folder)]).to(device)
    x = to_float(x)
    # As the trainer's sample grids do: the whole image resized to the training resolution.
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def _psnr(x: Any, y: Any) -> float:
    """Mean over images of the PSNR between two batches in [-1, 1], on a [0, 1] scale."""
    mse = (((x - y) / 2) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * (1 / mse).log10()).mean())


def _colour_stats(x: Any) -> Any:
    """Per-channel mean and standard deviation over a batch: a crude domain signature."""
    import torch

    return torch.cat([x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))])


def _generators(run_config: dict[str, Any], device: Any, checkpoint: Path | None) -> dict:
    import torch
    from safetensors.torch import load_file

    import i2i
    from i2i.models.checkpoint import split_state_dicts

    torch.manual_seed(run_config["options"]["seed"])
    nets = {
        name: i2i.create_generator(spec["name"], **spec["kwargs"])
        for name, spec in run_config["generators"].items()
    }
    if checkpoint is not None:
        weights = split_state_dicts(load_file(str(checkpoint / "networks.safetensors")))
        for name, net in nets.items():
            net.load_state_dict(weights[name])
    return {name: net.to(device).eval() for name, net in nets.items()}


def evaluate(run_dir: Path, data: Path, checkpoint: Path | None) -> dict[str, float]:
    import torch

    run_config = json.loads((run_dir / "config.json").read_text())
    size = run_config["size"]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    nets = _generators(run_config, device, checkpoint)
    G_AB, G_BA = nets["G_AB"], nets["G_BA"]
    real_A, real_B = (
        _load_split(data / "testA", size, device),
        _load_split(data / "testB", size, device),
    )
    with torch.no_grad():
        fake_B = torch.cat([G_AB(x) for x in real_A.split(8)])
        fake_A = torch.cat([G_BA(x) for x in real_B.split(8)])
        rec_A = torch.cat([G_BA(x) for x in fake_B.split(8)])
        rec_B = torch.cat([G_AB(x) for x in fake_A.split(8)])
        idt_B = torch.cat([G_AB(x) for x in real_B.split(8)])
        idt_A = torch.cat([G_BA(x) for x in real_A.split(8)])
    stats_A, stats_B = _colour_stats(real_A), _colour_stats(real_B)
    return {
        "cycle_psnr_A": _psnr(real_A, rec_A),  # A -> B -> A
        "cycle_psnr_B": _psnr(real_B, rec_B),  # B -> A -> B
        # Baseline: the reconstruction if the second generator were the identity, i.e. how far
        # the translation itself moves an image. A cycle PSNR well above it means the way back
        # undoes the change, rather than both generators doing (almost) nothing.
        "identity_baseline_psnr_A": _psnr(real_A, fake_B),
        "identity_baseline_psnr_B": _psnr(real_B, fake_A),
        # The identity-loss term: a generator fed an image already of its output domain.
        "identity_mapping_psnr_A": _psnr(real_A, idt_A),
        "identity_mapping_psnr_B": _psnr(real_B, idt_B),
        # Colour statistics (per-channel mean, std): distance of the fakes to the target domain,
        # next to the distance between the two real domains.
        "colour_gap_real_A_to_B": float((stats_A - stats_B).norm()),
        "colour_gap_fake_B_to_B": float((_colour_stats(fake_B) - stats_B).norm()),
        "colour_gap_fake_A_to_A": float((_colour_stats(fake_A) - stats_A).norm()),
        "n_test_A": real_A.shape[0],
        "n_test_B": real_B.shape[0],
    }


# -- training in chunks against a wall-clock budget ---------------------------------------------
def train_for(args: argparse.Namespace, data: Path, run_dir: Path) -> dict[str, Any]:
    import i2i

    budget = args.minutes * 60
    start = time.perf_counter()
    options = {
        "data": str(data),
        "out": str(run_dir),
        "gen": args.gen,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "load_size": args.load,
        "crop_size": args.size,
        "batch_size": args.batch,
        "lr": args.lr,
        "device": args.device,
        "workers": args.workers,
        "seed": args.seed,
        "log_every": 25,
        "sample_every": args.sample_every,
        "save_every": 10**9,  # each chunk saves when it ends
        "num_samples": 4,
    }
    chunks = []
    t0 = time.perf_counter()
    result = i2i.fit(i2i.create_task("cyclegan", max_steps=args.calibrate_steps, **options))
    chunks.append({"steps": result.step, "seconds": round(time.perf_counter() - t0, 1)})
    # Chunk wall time includes setup, the sample grid and the checkpoint, so this errs slow.
    s_per_iter = (time.perf_counter() - t0) / max(result.step, 1)
    while True:
        left = budget - (time.perf_counter() - start)
        more = int(left * 0.97 / s_per_iter)
        if more < 5:
            break
        t0, before = time.perf_counter(), result.step
        result = i2i.fit(
            i2i.create_task("cyclegan", resume=str(run_dir), max_steps=result.step + more)
        )
        done = result.step - before
        chunks.append({"steps": done, "seconds": round(time.perf_counter() - t0, 1)})
        s_per_iter = (time.perf_counter() - t0) / max(done, 1)
        if result.interrupted or done < more:
            break
    return {
        "result": result,
        "train_seconds": round(time.perf_counter() - start, 1),
        "chunks": chunks,
        "s_per_iter": round(s_per_iter, 3),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = Path(args.data)
    if not (src / "testA").is_dir() or not (src / "testB").is_dir():
        print(
            json.dumps(
                {"bench": "learn_monet", "skipped": f"no monet2photo data at {src} (testA, testB)"}
            ),
            flush=True,
        )
        return 0
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="i2i_learn_monet_", dir="/tmp"))
    out.mkdir(parents=True, exist_ok=True)
    data, run_dir = out / "data", out / "run"
    counts = build_dataset(src, data, args.train_a, args.train_b, args.test)
    print(f"dataset {data}: {counts}; run folder {run_dir}", file=sys.stderr, flush=True)

    trained = train_for(args, data, run_dir)
    result = trained["result"]
    metrics = evaluate(run_dir, data, result.checkpoint)
    initial = evaluate(run_dir, data, None)
    from i2i.models.losslog import read_records

    losses = read_records(run_dir / "losses.jsonl")
    samples = sorted((run_dir / "samples").glob("step_*.png"))
    record = {
        "bench": "learn_monet",
        "steps": result.step,
        "epochs": round(result.step * args.batch / max(counts["trainA"], counts["trainB"]), 2),
        "minutes_budget": args.minutes,
        "train_seconds": trained["train_seconds"],
        "s_per_iter": trained["s_per_iter"],
        "chunks": trained["chunks"],
        "size": args.size,
        "load": args.load,
        "gen": args.gen,
        "ngf": args.ngf,
        "ndf": args.ndf,
        "batch": args.batch,
        "counts": counts,
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()},
        "at_init": {
            k: round(v, 3)
            for k, v in initial.items()
            if k.startswith(("cycle_psnr", "identity_baseline", "colour_gap_fake"))
        },
        "first_losses": losses[0] if losses else None,
        "last_losses": losses[-1] if losses else None,
        "run_dir": str(run_dir),
        "samples": [str(p) for p in samples],
        "loss_curve": str(run_dir / "loss_curve.png"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    record = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
    line = json.dumps(record)
    (out / "learn_monet.json").write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
