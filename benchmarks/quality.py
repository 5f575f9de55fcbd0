"""Translation quality against a known answer: train, translate held-out photos, score them.

The known-answer task is unpaired like any CycleGAN task, but its answer is known: domain A is
real photos (``../shared/data/monet2photo/testB``), domain B is *other* photos under a fixed
photographic look written here (:func:`film_look`: softening, a filmic tone curve with lifted
blacks, split toning, lower saturation and a vignette), and the held-out test photos come with
their looked versions. So ``G_AB(testA)`` can be scored against the truth (PSNR, SSIM) and
against "return the input unchanged" (the identity baseline), besides KID to domain B with the
offline ``efficientnet_lite0`` extractor. ``--pair monet2photo`` trains paintings <-> photos
instead, where no truth exists: KID both ways against held-out images, and sample grids.

    python3 benchmarks/quality.py --name paper --steps 1800                  # one configuration
    python3 benchmarks/quality.py --name hinge --opt gan_loss=hinge --opt disc_kw=spectral_norm=true
    python3 benchmarks/quality.py --pair monet2photo --name paper
    python3 benchmarks/quality.py --grid benchmarks/quality_grid.json --jobs 12 --device cuda \\
        --out /tmp/quality                                              # the README table
    python3 benchmarks/quality.py --table /tmp/quality/results.jsonl        # markdown again
    python3 benchmarks/quality.py --prepare --cache runs/quality_data       # datasets only, to carry

Every finished configuration prints one JSON line on stdout (progress goes to stderr). See
benchmarks/README.md for the fields and the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CACHE = Path(os.environ.get("I2I_HOME", Path.home() / ".cache" / "i2i")) / "benchmarks"

# Bump when the look or the split changes: cached datasets are keyed by it.
DATA_VERSION = 1
SPLIT_SEED = 2026
PHOTO_SPLIT = {"A": 300, "B": 300, "test": 151}  # of the 751 photos, disjoint
PAINTINGS_HELD_OUT = 40  # of the 121 paintings, for --pair monet2photo
# Networks of the setting (the paper's recipe, scaled to 64 px); a grid may override.
BASE_OPTIONS: dict[str, Any] = {"gen": "resnet6", "ngf": 32, "ndf": 32}
SHEET_IMAGES = 8
GRID_IMAGES = 6
EXTRACTOR = "efficientnet_lite0"
PAIRS = ("quality", "monet2photo")


class BenchmarkError(Exception):
    """Bad input to the benchmark: printed as one line, exit status 2."""


# -- the known answer -----------------------------------------------------------------------------
def film_look(image: Any) -> Any:
    """The photographic look of domain B: a float (3, H, W) image in [0, 1] -> the same.

    Softening (Gaussian, sigma 0.8% of the width), an S-shaped tone curve with lifted blacks and
    lowered whites, teal shadows and warm highlights, 20% less saturation, and a vignette that
    darkens the corners by 45%. Nothing random: the answer for a photo is fixed. The blur and
    the vignette depend on neighbours and on the position in the frame, so a per-pixel colour
    map cannot learn the whole of it.
    """
    import kornia
    import torch

    _, height, width = image.shape
    sigma = 0.008 * width
    kernel = 2 * math.ceil(3 * sigma) + 1
    x = kornia.filters.gaussian_blur2d(
        image[None], (kernel, kernel), (sigma, sigma), border_type="reflect"
    )[0]
    steepness = 2.5
    x = 0.5 + 0.5 * torch.tanh(steepness * (x - 0.5)) / math.tanh(steepness / 2)
    x = 0.07 + 0.86 * x
    luma = kornia.color.rgb_to_grayscale(x)
    shadows = torch.tensor([-0.05, 0.02, 0.07]).view(3, 1, 1)
    highlights = torch.tensor([0.08, 0.02, -0.08]).view(3, 1, 1)
    x = x + (1 - luma) ** 2 * shadows + luma**2 * highlights
    x = luma + 0.8 * (x - luma)
    rows, cols = torch.meshgrid(
        torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij"
    )
    x = x * (1 - 0.45 * (rows**2 + cols**2) / 2)
    return x.clamp(0, 1)


# -- datasets -------------------------------------------------------------------------------------
def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _shuffled(paths: list[Path]) -> list[Path]:
    paths = list(paths)
    random.Random(SPLIT_SEED).shuffle(paths)
    return paths


def photo_split(shared: Path) -> dict[str, list[Path]]:
    """The disjoint A / B / test photo subsets, the same on every machine (a seeded shuffle)."""
    photos = _images(shared / "monet2photo" / "testB")
    needed = sum(PHOTO_SPLIT.values())
    if len(photos) < needed:
        raise BenchmarkError(f"{shared}/monet2photo/testB has {len(photos)} photos; need {needed}")
    photos = _shuffled(photos)
    a, b = PHOTO_SPLIT["A"], PHOTO_SPLIT["B"]
    return {"A": photos[:a], "B": photos[a : a + b], "test": photos[a + b : needed]}


def _save(source: Path, target: Path, size: int, look: bool) -> None:
    import numpy as np
    import torch
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if look:
        x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
        array = (film_look(x) * 255).round().byte().permute(1, 2, 0).numpy()
        image = Image.fromarray(array)
    # The look is applied at the source resolution; everything is stored at the training
    # load size, so neither training nor evaluation resizes again.
    image.resize((size, size), Image.BICUBIC).save(target.with_suffix(".png"))


def _build(target: Path, folders: dict[str, list[tuple[Path, bool]]], size: int) -> Path:
    """Write the folders into a temporary sibling, then rename: never half a dataset."""
    if (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        for folder, items in folders.items():
            (tmp / folder).mkdir()
            for source, look in items:
                _save(source, tmp / folder / source.name, size, look)
        counts = {folder: len(items) for folder, items in folders.items()}
        manifest = {"version": DATA_VERSION, "size": size, "split_seed": SPLIT_SEED, **counts}
        (tmp / "manifest.json").write_text(json.dumps(manifest) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # built meanwhile by another process
            if not (target / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def quality_data(shared: Path, target: Path, size: int) -> Path:
    """trainA (photos), trainB (other photos, looked), testA, testB (= the truth for testA).

    ``testB/NAME.png`` is the looked version of ``testA/NAME.png``: the held-out B images and
    the ground truth at once, so the trainer's sample grids show real B images too.
    """
    split = photo_split(shared)
    folders = {
        "trainA": [(p, False) for p in split["A"]],
        "trainB": [(p, True) for p in split["B"]],
        "testA": [(p, False) for p in split["test"]],
        "testB": [(p, True) for p in split["test"]],
    }
    return _build(target, folders, size)


def monet_data(shared: Path, target: Path, size: int) -> Path:
    """Paintings (81 train, 40 held out) and untouched photos (the A subset; test held out)."""
    paintings = _shuffled(_images(shared / "monet2photo" / "testA"))
    if len(paintings) <= PAINTINGS_HELD_OUT + 1:
        raise BenchmarkError(f"{shared}/monet2photo/testA has only {len(paintings)} paintings")
    split = photo_split(shared)
    folders = {
        "trainA": [(p, False) for p in paintings[PAINTINGS_HELD_OUT:]],
        "trainB": [(p, False) for p in split["A"]],
        "testA": [(p, False) for p in paintings[:PAINTINGS_HELD_OUT]],
        "testB": [(p, False) for p in split["test"]],
    }
    return _build(target, folders, size)


def dataset(pair: str, shared: Path, cache: Path, size: int) -> Path:
    """The dataset folder of ``pair`` at ``size`` px: from the cache, else built from ``shared``.

    A cache built elsewhere (``--prepare``) works without ``shared``: it holds everything.
    """
    target = cache / f"{pair}-v{DATA_VERSION}-{size}px"
    if (target / "manifest.json").is_file():
        return target
    if not (shared / "monet2photo" / "testB").is_dir():
        raise BenchmarkError(
            f"no dataset at {target} and no photos at {shared}/monet2photo/testB to build it "
            "from; pass --shared-data (../shared/data) or a --cache built with --prepare"
        )
    return (quality_data if pair == "quality" else monet_data)(shared, target, size)


def load_folder(folder: Path) -> Any:
    """Every image of a dataset folder as a float (N, 3, H, W) batch in [-1, 1]."""
    import torch

    from i2i.data import load_image, to_float

    return to_float(torch.stack([load_image(p) for p in _images(folder)]))


# -- options ----------------------------------------------------------------------------------------
def parse_opts(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` flags (YAML values) into options; ``*_kw`` options collect ``K=V`` pairs."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise BenchmarkError(f"--opt takes KEY=VALUE, got {pair!r}")
        if key.endswith("_kw"):
            inner, sep, inner_value = value.partition("=")
            if not sep:
                raise BenchmarkError(f"--opt {key}= takes NAME=VALUE, got {value!r}")
            options.setdefault(key, {})[inner.strip()] = yaml.safe_load(inner_value)
        else:
            options[key] = yaml.safe_load(value) if value else ""
    return options


def schedule(lr_decay: bool, steps: int, batch_size: int, epoch_images: int) -> dict[str, int]:
    """Epoch options for the benchmark's schedule.

    The default keeps the learning rate constant for all ``steps`` (what a new user gets with
    ``--max-steps``). ``lr_decay`` is the paper's shape squeezed into the run: constant for the
    first half, then linear decay.
    """
    if not lr_decay:
        return {}
    epochs = max(2, math.ceil(steps / math.ceil(epoch_images / batch_size)))
    return {"epochs": epochs // 2, "epochs_decay": epochs - epochs // 2}


# -- one configuration ------------------------------------------------------------------------------
def train_run(
    args: argparse.Namespace, data: Path, run_dir: Path, options: dict[str, Any]
) -> dict[str, Any]:
    from i2i.train.trainer import train

    if run_dir.exists():
        raise BenchmarkError(f"{run_dir} exists; choose another --out or --name, or delete it")
    merged = {
        "data": str(data),
        "out": str(run_dir),
        "max_steps": args.steps,
        "crop_size": args.size,
        "load_size": load_size(args.size),
        "device": args.device,
        "seed": args.seed,
        "workers": 0,  # 2 tiny PNGs a step: a worker process would cost more than it saves
        "log_every": 100,
        "sample_every": args.steps,
        "save_every": 10**9,  # the final checkpoint only
        "keep_checkpoints": 1,
        **BASE_OPTIONS,
        **args.base,
        **options,
    }
    if args.threads:
        merged.setdefault("threads", args.threads)
    epoch_images = max(len(_images(data / "trainA")), len(_images(data / "trainB")))
    merged = {
        **schedule(args.lr_decay, args.steps, merged.get("batch_size", 1), epoch_images),
        **merged,
    }
    start = time.perf_counter()
    timer = None
    if args.seconds:
        # Equal wall time: at the budget, the trainer's own Ctrl-C path stops and saves.
        timer = threading.Timer(args.seconds, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
    try:
        result = train(args.task, **merged)
    finally:
        if timer is not None:
            timer.cancel()
    seconds = time.perf_counter() - start
    return {
        "steps": result.step,
        "train_s": round(seconds, 1),
        "it_per_s": round(result.step / seconds, 2),
        "interrupted": result.interrupted,
    }


def load_size(size: int) -> int:
    """The resize before the random crop, CycleGAN's 286/256 ratio (72 for 64, 144 for 128)."""
    return size * 9 // 8


def translate(run_dir: Path | None, images: Any, direction: str, device: str) -> Any:
    """G(images) from the run's last checkpoint (EMA weights where the run keeps them).

    None when the model has no such direction (a one-way task such as CUT).
    """
    if run_dir is None:  # the identity baseline
        return images.clone()
    import i2i

    translator = i2i.load(str(run_dir), device=device, batch_size=32)
    if direction not in translator.directions:
        return None
    return translator(images, direction=direction).clamp(-1, 1)


class Scorer:
    """KID with the offline extractor, reference features computed once per process."""

    def __init__(self, device: str) -> None:
        from i2i.core.device import resolve_device
        from i2i.eval.metrics import create_extractor

        self.extractor = create_extractor(EXTRACTOR, resolve_device(device))
        self._features: dict[str, Any] = {}

    def features(self, images: Any, key: str | None = None) -> Any:
        from i2i.eval.metrics import extract_features

        if key is not None and key in self._features:
            return self._features[key]
        features = extract_features(self.extractor, images, batch_size=64)
        if key is not None:
            self._features[key] = features
        return features

    def kid(
        self, reference: Any, images: Any, reference_key: str, images_key: str | None = None
    ) -> tuple[float, float]:
        """KID mean and std; features are kept under the keys given, for the next call."""
        from i2i.eval.metrics import kernel_inception_distance

        return kernel_inception_distance(
            self.features(reference, reference_key), self.features(images, images_key)
        )


def _mean(values: Any) -> float:
    return round(float(values.mean()), 4)


def score_quality(run_dir: Path | None, data: Path, device: str) -> tuple[dict, dict]:
    """PSNR/SSIM against the truth, the identity baseline, and KID to domain B (trainB)."""
    from i2i.eval.metrics import psnr, ssim

    if [p.name for p in _images(data / "testA")] != [p.name for p in _images(data / "testB")]:
        raise BenchmarkError(f"{data}: testA and testB must hold the same file names")
    inputs, truth = load_folder(data / "testA"), load_folder(data / "testB")
    outputs = translate(run_dir, inputs, "AtoB", device)
    scorer = Scorer(device)
    scorer.features(inputs, "testA")
    scorer.features(truth, "truth")
    domain_b = load_folder(data / "trainB")
    kid, kid_std = scorer.kid(domain_b, outputs, "trainB", "testA" if run_dir is None else None)
    metrics = {
        "psnr": _mean(psnr(outputs, truth)),
        "ssim": _mean(ssim(outputs, truth)),
        "identity_psnr": _mean(psnr(inputs, truth)),
        "identity_ssim": _mean(ssim(inputs, truth)),
        "kid": round(kid, 5),
        "kid_std": round(kid_std, 5),
        "kid_identity": round(scorer.kid(domain_b, inputs, "trainB", "testA")[0], 5),
        "kid_truth": round(scorer.kid(domain_b, truth, "trainB", "truth")[0], 5),
        "n_test": int(inputs.shape[0]),
        "n_domain_b": int(domain_b.shape[0]),
    }
    metrics["psnr_vs_identity"] = round(metrics["psnr"] - metrics["identity_psnr"], 3)
    panels = {"input": inputs, "output": outputs, "truth": truth}
    return metrics, panels


def score_monet(run_dir: Path | None, data: Path, device: str) -> tuple[dict, dict]:
    """KID of translations to held-out images of the other domain, each way the model has."""
    paintings, photos = load_folder(data / "testA"), load_folder(data / "testB")
    scorer = Scorer(device)
    metrics: dict[str, Any] = {
        "n_test_A": int(paintings.shape[0]),
        "n_test_B": int(photos.shape[0]),
    }
    panels: dict[str, Any] = {}
    for direction, source, target, title in (
        ("AtoB", ("paintings", paintings), ("photos", photos), ("painting", "as photo")),
        ("BtoA", ("photos", photos), ("paintings", paintings), ("photo", "as painting")),
    ):
        outputs = translate(run_dir, source[1], direction, device)
        # Features of the untranslated sources are kept: the identity baseline reuses them.
        same = source[0] if run_dir is None else None
        kid = (None, None) if outputs is None else scorer.kid(target[1], outputs, target[0], same)
        metrics[f"kid_{direction}"] = None if kid[0] is None else round(kid[0], 5)
        metrics[f"kid_{direction}_std"] = None if kid[1] is None else round(kid[1], 5)
        identity = scorer.kid(target[1], source[1], target[0], source[0])[0]
        metrics[f"kid_{direction}_identity"] = round(identity, 5)
        panels[title[0]] = source[1]
        if outputs is not None:
            panels[title[1]] = outputs
    return metrics, panels


def caption(record: dict[str, Any]) -> str:
    if record["pair"] == "quality":
        return (
            f"{record['name']}: PSNR {record['psnr']:.2f} dB (identity "
            f"{record['identity_psnr']:.2f}), SSIM {record['ssim']:.3f}, KID x1e3 "
            f"{_milli(record['kid'])}, {record['steps']} steps"
        )
    return (
        f"{record['name']}: KID x1e3 monet->photo {_milli(record['kid_AtoB'])}, "
        f"photo->monet {_milli(record['kid_BtoA'])}, {record['steps']} steps"
    )


SOURCES = ("input", "painting", "photo")  # each starts a panel of a sample sheet


def _panels(columns: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    panels: list[tuple[list[str], list[Any]]] = []
    for title, images in columns.items():
        if title in SOURCES or not panels:
            panels.append(([], []))
        panels[-1][0].append(title)
        panels[-1][1].append(images)
    return panels


def save_sheets(folder: Path, record: dict[str, Any], columns: dict[str, Any]) -> Path:
    """``sheet.png`` (the first images of each column) and one native-size strip per column."""
    import torch

    from i2i.viz import image_grid

    sheet = folder / "sheet.png"
    shown = {title: images[:SHEET_IMAGES] for title, images in columns.items()}
    image_grid(_panels(shown), caption=caption(record), min_tile=144).save(sheet)
    for title, images in columns.items():  # for the grid's combined sheets
        torch.save(images[:GRID_IMAGES].clone(), folder / f"strip_{title.replace(' ', '_')}.pt")
    return sheet


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """Train (unless the task is ``identity``), translate, score and draw one configuration."""
    import torch

    from i2i.core.device import resolve_device

    start = time.perf_counter()
    folder = Path(args.out) / args.name if not args.child else Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    data = dataset(args.pair, Path(args.shared_data), Path(args.cache), load_size(args.size))
    options = {**parse_opts(args.opt), **json.loads(args.options_json or "{}")}
    device = str(resolve_device(args.device))
    record: dict[str, Any] = {
        "bench": "quality",
        "name": args.name,
        "pair": args.pair,
        "task": args.task,
        "options": options,
        "lr_decay": args.lr_decay,
        "size": args.size,
        "load_size": load_size(args.size),
        "steps": 0,
    }
    run_dir = None
    if args.task != "identity":
        run_dir = folder / "run"
        record.update(train_run(args, data, run_dir, options))
    score = score_quality if args.pair == "quality" else score_monet
    metrics, panels = score(run_dir, data, device)
    record.update(metrics)
    record["sheet"] = str(save_sheets(folder, record, panels))
    record.update(
        wall_s=round(time.perf_counter() - start, 1),
        device=device,
        gpu=torch.cuda.get_device_name() if device.startswith("cuda") else None,
        run_dir=str(run_dir) if run_dir else None,
        torch=torch.__version__,
    )
    (folder / "result.json").write_text(json.dumps(record) + "\n")
    return record


# -- the grid: many configurations as parallel processes ------------------------------------------
def read_grid(path: Path) -> dict[str, Any]:
    try:
        grid = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"cannot read grid {path}: {error}") from None
    configs = grid.get("configs") if isinstance(grid, dict) else None
    if not isinstance(configs, list) or not configs:
        raise BenchmarkError(f"{path}: expected {{'configs': [{{name, task, options}}, ...]}}")
    names = [c.get("name") for c in configs]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise BenchmarkError(f"{path}: every config needs a unique, non-empty name")
    for c in configs:
        if c.get("pair", "quality") not in PAIRS:
            raise BenchmarkError(f"{path}: config {c['name']!r} has pair {c['pair']!r}")
    return grid


def child_command(
    args: argparse.Namespace, grid: dict, config: dict, folder: Path, threads: int
) -> list[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--name", config["name"],
        "--pair", config.get("pair", "quality"),
        "--task", config.get("task", "cyclegan"),
        "--options-json", json.dumps(config.get("options", {})),
        "--base-json", json.dumps(grid.get("base", {})),
        "--steps", str(config.get("steps") or args.steps or grid.get("steps", 1800)),
        "--size", str(args.size_given or grid.get("size", 64)),
        "--device", args.device,
        "--seed", str(args.seed),
        "--threads", str(threads),
        "--out", str(folder),
        "--cache", args.cache,
        "--shared-data", args.shared_data,
    ]  # fmt: skip
    command += ["--lr-decay"] if config.get("lr_decay") else []
    return command + (["--seconds", str(config["seconds"])] if config.get("seconds") else [])


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Traceback", "File "))]
    if not lines:
        return "no output"
    return lines[-1] if len(lines[-1]) <= 240 else lines[-1][:240] + "..."


def run_child(command: list[str], folder: Path, config: dict) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    start = time.perf_counter()
    with log.open("w") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    result = folder / "result.json"
    if status.returncode == 0 and result.is_file():
        return json.loads(result.read_text())
    return {
        "bench": "quality",
        "name": config["name"],
        "pair": config.get("pair", "quality"),
        "task": config.get("task", "cyclegan"),
        "options": config.get("options", {}),
        "error": _last_line(log),
        "log": str(log),
        "wall_s": round(time.perf_counter() - start, 1),
    }


_STEP_LINE = re.compile(r"^step (\d+) epoch \d+ ([\d.]+) it/s", re.MULTILINE)


def status_line(folders: list[Path], elapsed: float) -> str:
    """Where the unfinished runs are, from the trainer's loss lines in their logs."""
    parts, queued = [], 0
    for folder in folders:
        log = folder / "log.txt"
        if not log.is_file():
            queued += 1
            continue
        found = _STEP_LINE.findall(log.read_text(errors="replace"))
        parts.append(
            f"{folder.name} step {found[-1][0]} ({found[-1][1]} it/s)" if found else folder.name
        )
    return f"[{elapsed:.0f}s] running: {', '.join(parts)}; queued: {queued}"


def progress_line(done: int, total: int, record: dict[str, Any], elapsed: float) -> str:
    head = f"[{done}/{total} {elapsed:.0f}s] {record['name']}"
    if "error" in record:
        return f"{head}: FAILED {record['error']}"
    return f"{head}: {caption(record).split(': ', 1)[1]} ({record['wall_s']:.0f} s)"


def run_grid(args: argparse.Namespace) -> int:
    grid = read_grid(Path(args.grid))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="i2i_quality_work_"))
    results = out / "results.jsonl"
    results.write_text("")
    size = args.size_given or grid.get("size", 64)
    pairs = sorted({c.get("pair", "quality") for c in grid["configs"]})
    datasets = {
        p: dataset(p, Path(args.shared_data), Path(args.cache), load_size(size)) for p in pairs
    }
    jobs = max(1, args.jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    configs = grid["configs"]
    print(
        f"{len(configs)} configurations, {jobs} at a time, {args.steps or grid.get('steps')} "
        f"steps at {size} px on {args.device}; data {', '.join(map(str, datasets.values()))}; "
        f"runs in {work}; results in {out}",
        file=sys.stderr,
        flush=True,
    )
    start, records = time.perf_counter(), []
    with ThreadPoolExecutor(jobs) as pool:
        pending: dict[Future, dict] = {
            pool.submit(
                run_child,
                child_command(args, grid, c, work / c["name"], threads),
                work / c["name"],
                c,
            ): c
            for c in configs
        }
        while pending:
            finished, _ = wait(pending, timeout=args.status_every, return_when=FIRST_COMPLETED)
            if not finished:
                running = [work / c["name"] for c in pending.values()]
                print(
                    status_line(running, time.perf_counter() - start), file=sys.stderr, flush=True
                )
            for future in finished:
                pending.pop(future)
                record = future.result()
                records.append(record)
                with results.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
                elapsed = time.perf_counter() - start
                print(
                    progress_line(len(records), len(configs), record, elapsed),
                    file=sys.stderr,
                    flush=True,
                )
                write_summary(
                    out, sorted(records, key=lambda r: names(configs).index(r["name"])), datasets
                )
    # Appended as runs finished (so a killed grid keeps them); rewritten in the grid's order.
    ordered = sorted(records, key=lambda r: names(configs).index(r["name"]))
    results.write_text("".join(json.dumps(r) + "\n" for r in ordered))
    failed = sum("error" in r for r in records)
    print(
        f"done in {time.perf_counter() - start:.0f} s, {failed} failed; table {out / 'table.md'}",
        file=sys.stderr,
        flush=True,
    )
    return 1 if failed == len(records) else 0


def names(configs: list[dict]) -> list[str]:
    return [c["name"] for c in configs]


# -- summaries: the markdown table and the combined sheets ----------------------------------------
def _options_text(record: dict[str, Any]) -> str:
    parts = []
    for key, value in record.get("options", {}).items():
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        parts.append(f"{key}={value}")
    if record.get("lr_decay"):
        parts.append("lr decay over the 2nd half")
    if record.get("task") == "identity":
        return "no training: output = input"
    return "`" + " ".join(parts) + "`" if parts else "paper defaults"


def _milli(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f}"


def markdown_table(records: list[dict[str, Any]]) -> str:
    """The README tables (known answer; monet<->photo) from result records, in their order."""
    lines: list[str] = []
    quality = [r for r in records if r.get("pair", "quality") == "quality"]
    monet = [r for r in records if r.get("pair") == "monet2photo"]
    if quality:
        lines += [
            "| config | options | PSNR dB | vs identity dB | SSIM | KID x10³ | steps | it/s | wall s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in quality:
            if "error" in r:
                lines.append(f"| {r['name']} | {_options_text(r)} | failed: {r['error']} |||||||")
                continue
            lines.append(
                f"| {r['name']} | {_options_text(r)} | {r['psnr']:.2f} | "
                f"{r['psnr_vs_identity']:+.2f} | {r['ssim']:.3f} | {_milli(r['kid'])} | "
                f"{r['steps']} | {r.get('it_per_s', '-')} | {r['wall_s']:.0f} |"
            )
        truth = next((r for r in quality if "kid_truth" in r), None)
        if truth:
            lines.append(
                f"| *truth* | the looked test photos themselves | inf | - | 1.000 | "
                f"{_milli(truth['kid_truth'])} | - | - | - |"
            )
    if monet:
        lines += [
            "",
            "| config | options | KID x10³ monet→photo | KID x10³ photo→monet | steps | it/s | wall s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in monet:
            if "error" in r:
                lines.append(f"| {r['name']} | {_options_text(r)} | failed: {r['error']} |||||")
                continue
            lines.append(
                f"| {r['name']} | {_options_text(r)} | {_milli(r['kid_AtoB'])} | "
                f"{_milli(r['kid_BtoA'])} | {r['steps']} | {r.get('it_per_s', '-')} | "
                f"{r['wall_s']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def _strip(record: dict[str, Any], column: str) -> Any:
    import torch

    path = Path(record["sheet"]).parent / f"strip_{column.replace(' ', '_')}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def combined_sheet(records: list[dict[str, Any]], pair: str) -> Any:
    """Inputs (and the truth) next to every configuration's outputs, one column each."""
    from i2i.viz import image_grid

    done = [r for r in records if r.get("pair") == pair and "error" not in r]
    if not done:
        return None
    first = done[0]
    directions = (
        [("input", "output", "truth")]
        if pair == "quality"
        else [("painting", "as photo", None), ("photo", "as painting", None)]
    )
    panels = []
    for source, output, truth in directions:
        titles, columns = [source], [_strip(first, source)]
        if truth:
            titles.append(truth)
            columns.append(_strip(first, truth))
        for r in done:
            if r.get("task") != "identity":
                titles.append(r["name"])
                columns.append(_strip(r, output))
        kept = [(t, c) for t, c in zip(titles, columns, strict=True) if c is not None]
        panels.append(([t for t, _ in kept], [c for _, c in kept]))
    return image_grid(panels, min_tile=96)


def write_summary(out: Path, records: list[dict[str, Any]], datasets: dict[str, Path]) -> None:
    (out / "table.md").write_text(markdown_table(records))
    for pair in datasets:
        sheet = combined_sheet(records, pair)
        if sheet is not None:
            sheet.save(out / f"sheet_{pair}.png")


# -- command line ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default=None, help="configuration name (default: from the options)")
    p.add_argument("--task", default="cyclegan", help="training task, or 'identity' (no training)")
    p.add_argument("--pair", choices=PAIRS, default="quality", help="known answer or monet2photo")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="task option (repeatable), e.g. gan_loss=hinge, disc_kw=spectral_norm=true")  # fmt: skip
    p.add_argument("--lr-decay", action="store_true",
                   help="linear learning-rate decay over the second half of the steps")  # fmt: skip
    p.add_argument("--steps", type=int, default=None, help="training steps (default 1800)")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop training after this many seconds (equal wall time; --steps stays a cap)",
    )
    p.add_argument("--size", dest="size_given", type=int, default=None,
                   help="crop size; images are stored at 9/8 of it (default 64)")  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--out", default=None, help="output folder (default: a new one under /tmp)")
    p.add_argument("--cache", default=str(CACHE), help="where the built datasets are kept")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help="the ../shared/data folder")
    p.add_argument("--grid", default=None, help="JSON file of configurations to run in parallel")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs with --grid")
    p.add_argument("--work", default=None, help="run folders with --grid (default: under /tmp)")
    p.add_argument(
        "--status-every", type=float, default=30.0, help="seconds between --grid status lines"
    )
    p.add_argument("--table", default=None, help="print the markdown table of a results.jsonl")
    p.add_argument("--prepare", action="store_true",
                   help="only build the datasets into --cache (e.g. to carry them elsewhere)")  # fmt: skip
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--options-json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--base-json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.base = json.loads(args.base_json or "{}")
    args.size = args.size_given or 64
    if args.name is None:
        args.name = default_name(args)
    return args


def default_name(args: argparse.Namespace) -> str:
    if args.task == "identity":
        return "identity"
    label = "-".join(o.split("=", 1)[0] for o in args.opt) or "paper"
    return f"{label}-{args.pair}" if args.pair != "quality" else label


def main(argv: list[str] | None = None) -> int:
    from i2i.core.errors import I2IError

    args = parse_args(argv)
    try:
        if args.table:
            records = [
                json.loads(line)
                for line in Path(args.table).read_text().splitlines()
                if line.strip()
            ]
            sys.stdout.write(markdown_table(records))
            return 0
        if args.out is None:
            args.out = tempfile.mkdtemp(prefix="i2i_quality_")
        if args.prepare:
            for pair in PAIRS:
                path = dataset(pair, Path(args.shared_data), Path(args.cache), load_size(args.size))
                print(path, flush=True)
            return 0
        if args.grid:
            return run_grid(args)
        args.steps = args.steps or 1800
        record = run_config(args)
        print(json.dumps(record), flush=True)
        if not args.child:
            print(caption(record) + f"; sheet {record['sheet']}", file=sys.stderr, flush=True)
        return 0
    except (BenchmarkError, I2IError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
