"""Translation quality against known answers: train, translate held-out photos, score them.

A known-answer task is unpaired like any CycleGAN task, but its answer is known: domain A is
real photos, domain B is *other* photos under a fixed look (``looks.py``: film, crisp,
graduated, cnn, autumn, dusk), and the held-out photos come with their looked versions. So
``G_AB(testA)`` is scored against the truth (PSNR, SSIM) and against returning the input
unchanged (the identity baseline), besides KID to domain B with the offline
``efficientnet_lite0`` extractor. ``--pair monet2photo`` (or ``ukiyoe2photo``, a style no recipe
was chosen on) trains paintings <-> photos instead, where no truth exists: KID both ways against
held-out images. ``--pair toynight`` is the built-in toy's day -> night, whose held-out days
come with their nights (the same scenes), scored like a look and on whether the sun became the
moon.

    python3 benchmarks/quality.py --suite                  # every recipe on every look, 3 seeds
    python3 benchmarks/quality.py --suite --steps 1000 --seeds 0 --rows quality   # a quick look
    python3 benchmarks/quality.py --pair dusk --name paper --steps 1000,5000   # one configuration
    python3 benchmarks/quality.py --pair film --name hinge --opt gan_loss=hinge
    python3 benchmarks/quality.py --grid benchmarks/quality_grid.json --jobs 12 --device cuda
    python3 benchmarks/quality.py --table OUT/results.jsonl  # the table(s) again
    python3 benchmarks/quality.py --prepare --cache DIR      # data sets only, to carry

A configuration trains once to its last ``--steps`` milestone, resuming its own run from one
milestone to the next (the learning rate is constant, so the run at 1000 steps is the first
1000 steps of the 5000-step run), and is scored at each. Every score prints one JSON line on
stdout (progress goes to stderr). See benchmarks/README.md for the fields and the tables.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from quality_data import (
    FLAWS,
    LOOKS,
    MONET,
    PAINTINGS,
    PAIRS,
    TOY_NIGHT,
    BenchmarkError,
    critic_ratings,
    dataset,
    images_in,
    load_folder,
)
from quality_report import caption, combined_sheet, grid_table, is_look, save_sheets, suite_table

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CACHE = Path(os.environ.get("I2I_HOME", Path.home() / ".cache" / "i2i")) / "benchmarks"
SUITE = Path(__file__).resolve().parent / "quality_suite.json"
# Networks of the benchmark's setting (the paper's recipe, scaled to 64 px); a grid may override.
BASE_OPTIONS: dict[str, Any] = {"gen": "resnet6", "ngf": 32, "ndf": 32}
EXTRACTOR = "efficientnet_lite0"


# -- options ----------------------------------------------------------------------------------------
def parse_opts(pairs: list[str]) -> dict[str, Any]:
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


def parse_steps(text: str | int | list[int], option: str = "--steps") -> list[int]:
    """Step counts from ``1000,5000`` (or a number, or a list): ascending, positive; ``option``
    names where they came from in the error."""
    if isinstance(text, list):
        values = text
    elif isinstance(text, int) and not isinstance(text, bool):
        values = [text]
    else:
        try:
            values = [int(v) for v in str(text).split(",") if v.strip()]
        except ValueError:
            raise BenchmarkError(f"{option} takes numbers like 1000,5000; got {text!r}") from None
    if not values or any(type(v) is not int or v <= 0 for v in values):
        raise BenchmarkError(f"{option} needs positive step counts; got {text!r}")
    return sorted(set(values))


def schedule(lr_decay: bool, steps: int, batch_size: int, epoch_images: int) -> dict[str, int]:
    """Epoch options for the benchmark's schedule.

    The default keeps the learning rate constant for all ``steps`` (what a new user gets with
    ``--max-steps``). ``lr_decay`` is the paper's shape squeezed into the run: constant for the
    first half, then linear decay (a run with milestones then decays over its last one).
    """
    if not lr_decay:
        return {}
    per_epoch = -(-epoch_images // batch_size)
    epochs = max(2, -(-steps // per_epoch))
    return {"epochs": epochs // 2, "epochs_decay": epochs - epochs // 2}


def load_size(size: int) -> int:
    """The resize before the random crop, CycleGAN's 286/256 ratio (72 for 64, 144 for 128)."""
    return size * 9 // 8


# -- one configuration ------------------------------------------------------------------------------
def train_run(
    args: argparse.Namespace, data: Path, run_dir: Path, options: dict[str, Any], steps: int
) -> dict[str, Any]:
    """Train the run to ``steps``: a new run, or the same run resumed from its last milestone."""
    import i2i

    resume = (run_dir / "config.json").is_file()
    merged = {
        "data": str(data),
        "out": str(run_dir),
        "max_steps": steps,
        "crop_size": args.size,
        "load_size": load_size(args.size),
        "device": args.device,
        "seed": args.seed,
        "workers": 0,  # 2 tiny PNGs a step: a worker process would cost more than it saves
        "log_every": 100,
        "sample_every": steps,
        "save_every": 10**9,  # the final checkpoint of each milestone only
        "keep_checkpoints": 1,
        **BASE_OPTIONS,
        **args.base,
        **options,
    }
    if args.threads:
        merged.setdefault("threads", args.threads)
    epoch_images = max(len(images_in(data / "trainA")), len(images_in(data / "trainB")))
    batch = merged.get("batch_size", 1)
    merged = {**schedule(args.lr_decay, args.milestones[-1], batch, epoch_images), **merged}
    if resume:
        merged["resume"] = str(run_dir)
    start = time.perf_counter()
    timer, budget_spent = None, threading.Event()
    if args.seconds:
        # Equal wall time: at the budget, the trainer's own Ctrl-C path stops and saves.
        def spend_budget() -> None:
            budget_spent.set()
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(args.seconds, spend_budget)
        timer.start()
    try:
        result = i2i.fit(i2i.create_task(args.task, **merged))
    finally:
        if timer is not None:
            timer.cancel()
    if result.interrupted and not budget_spent.is_set():
        # Stopped from outside (Ctrl-C, SIGTERM, the suite's parent): no milestone to score.
        raise BenchmarkError(f"stopped at step {result.step}, before milestone {steps}")
    seconds = time.perf_counter() - start
    return {"steps": result.step, "train_s": round(seconds, 1), "interrupted": result.interrupted}


def load_model(run_dir: Path | None, device: str, steps: int | None = None) -> Any:
    """The run's last checkpoint (EMA weights where the run keeps them), loaded once for every
    direction it is scored in; None for the identity baseline. ``steps``: a bridge model's
    (UNSB's) number of predictions, None for all of them."""
    if run_dir is None:
        return None
    import i2i

    return i2i.load(str(run_dir), device=device, batch_size=32, steps=steps)


def translate(model: Any, images: Any, direction: str) -> Any:
    """G(images) with a model from ``load_model`` (the images themselves for the identity);
    None when the model has no such direction (a one-way task such as CUT)."""
    if model is None:  # the identity baseline
        return images.clone()
    if direction not in model.directions:
        return None
    return model(images, direction=direction).clamp(-1, 1)


class Scorer:
    """KID with the offline extractor, reference features computed once per process."""

    def __init__(self, device: str) -> None:
        from i2i.core.device import resolve_device
        from i2i.eval.extractors import create_extractor

        self.extractor = create_extractor(EXTRACTOR, resolve_device(device))
        self._features: dict[str, Any] = {}

    def features(self, images: Any, key: str | None = None) -> Any:
        from i2i.eval.extractors import embed_images

        if key is not None and key in self._features:
            return self._features[key]
        features = embed_images(self.extractor, images, batch_size=64)
        if key is not None:
            self._features[key] = features
        return features

    def kid(self, reference: Any, images: Any, reference_key: str, images_key: str | None = None):
        """KID mean and std; features are kept under the keys given, for the next call."""
        from i2i.eval.statistics import kernel_inception_distance

        return kernel_inception_distance(
            self.features(reference, reference_key), self.features(images, images_key)
        )


def _mean(values: Any) -> float:
    return round(float(values.mean()), 4)


def score_look(
    run_dir: Path | None, data: Path, device: str, scorer: Scorer, steps: int | None = None
):
    """PSNR/SSIM against the truth, the identity baseline, and KID to domain B (trainB); for
    the toy's night (a data set with ``discs.json``), whether the sun became the moon."""
    from i2i.eval.statistics import psnr, ssim

    if [p.name for p in images_in(data / "testA")] != [p.name for p in images_in(data / "testB")]:
        raise BenchmarkError(f"{data}: testA and testB must hold the same file names")
    inputs, truth = load_folder(data / "testA"), load_folder(data / "testB")
    model = load_model(run_dir, device, steps)
    outputs = translate(model, inputs, "AtoB")
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
    metrics.update(look_progress(inputs, outputs, truth))
    if (data / "discs.json").is_file():
        discs = read_json(data / "discs.json", "discs")["discs"]
        metrics.update(discs_drawn(outputs, truth, discs))
    # A model with the reverse direction (CycleGAN's F) is scored on taking the look off: the
    # truth translated back against the inputs, a second known answer from the same run (PSNR
    # is symmetric, so the identity baseline is the same).
    undone = None if model is None else translate(model, truth, "BtoA")
    if undone is not None:
        metrics["psnr_BtoA"] = _mean(psnr(undone, inputs))
        metrics["psnr_vs_identity_BtoA"] = round(metrics["psnr_BtoA"] - metrics["identity_psnr"], 3)
        progress = look_progress(truth, undone, inputs)
        metrics.update({f"{key}_BtoA": value for key, value in progress.items()})
    return metrics, {"input": inputs, "output": outputs, "truth": truth}


def look_progress(inputs: Any, outputs: Any, truth: Any) -> dict[str, float]:
    """How much of the look a model made, apart from how wrong it is elsewhere.

    Over all held-out pixels, the output's change (output - input) is split along the look's own
    change (truth - input) and across it: ``way`` is the fraction of the look made (0: returned
    the input, 1: the look's full size in its direction), ``off`` the size of the change across
    it, as a fraction of the look's size. A recipe can be near its input because it moves too
    little (``way`` near 0, ``off`` small) or because it moves wrongly (``off`` large).
    """
    want = (truth - inputs).flatten().double()
    got = (outputs - inputs).flatten().double()
    size = want.dot(want)
    if size == 0:
        return {"way": 0.0, "off": 0.0}
    way = got.dot(want) / size
    return {
        "way": round(way.item(), 3),
        "off": round(((got - way * want).norm() / size.sqrt()).item(), 3),
    }


DISC_IN_SIGHT = 0.8  # a disc the hills hide more of asks for no moon: not scored


def discs_drawn(outputs: Any, truth: Any, discs: list[dict[str, float]]) -> dict[str, Any]:
    """Whether the toy's sun became the moon: a look that moves one small object, which the
    linear colour map between the training sets does not make (it darkens the sun with the
    sky: 0 drawn), though a map bent per pixel could.

    ``discs_drawn``: the fraction of pictures whose disc stands out from the sky around it (the
    mean brightness inside 0.7 of its radius over that of the sky between 1.5 and 2.5 radii)
    by at least half as much as in the true night. ``disc_shape``: the correlation of output
    and truth brightness in the 3-radius square around the disc, blind to the overall
    brightness and contrast: whether whatever the disc became is round, in place and set off
    from the sky (the day 0.79, the sets' colour map 0.67; a blob scores less). Discs the hills
    hide by more than a fifth are left out; None when none is left."""
    import torch

    weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
    side = outputs.shape[-1]
    at = (torch.arange(side) + 0.5) / side
    drawn, shape = [], []
    for output, night, disc in zip(outputs, truth, discs, strict=True):
        if disc["visible"] < DISC_IN_SIGHT:
            continue
        got, want = (((x + 1) / 2 * weights).sum(0) for x in (output, night))
        x, y, r = disc["x"], disc["y"], disc["radius"]
        dist = torch.hypot(at[None, :] - x, at[:, None] - y)
        inner, sky = dist < 0.7 * r, (dist > 1.5 * r) & (dist < 2.5 * r) & (want < 0.6)
        contrast = [v[inner].mean() - v[sky].mean() for v in (got, want)]
        drawn.append(float(contrast[0] >= 0.5 * contrast[1]))
        square = ((at[None, :] - x).abs() < 1.5 * r) & ((at[:, None] - y).abs() < 1.5 * r)
        pair = torch.stack([got[square], want[square]])
        shape.append(float(torch.corrcoef(pair)[0, 1].nan_to_num()) + 0.0)
    if not drawn:
        return {"discs_drawn": None, "disc_shape": None}
    return {
        "discs_drawn": round(sum(drawn) / len(drawn), 3),
        "disc_shape": round(sum(shape) / len(shape), 3),
    }


def score_painting(
    run_dir: Path | None, data: Path, device: str, scorer: Scorer, steps: int | None = None
):
    """KID of translations to held-out images of the other domain, each way the model has
    (a painting pair: paintings or prints in A, photos in B)."""
    paintings, photos = load_folder(data / "testA"), load_folder(data / "testB")
    metrics: dict[str, Any] = {
        "n_test_A": int(paintings.shape[0]),
        "n_test_B": int(photos.shape[0]),
    }
    panels: dict[str, Any] = {}
    model = load_model(run_dir, device, steps)
    for direction, source, target, title in (
        ("AtoB", ("paintings", paintings), ("photos", photos), ("painting", "as photo")),
        ("BtoA", ("photos", photos), ("paintings", paintings), ("photo", "as painting")),
    ):
        outputs = translate(model, source[1], direction)
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


# The critic that judges domain B, per task whose critics read an image alone (UNSB's read the
# step too); the memory measure below needs it.
B_CRITIC = {"cyclegan": "D_B", "cut": "D", "fastcut": "D"}


def critic_memory(run_dir: Path | None, data: Path, size: int) -> float | None:
    """How much more B-like the run's critic of domain B rates the B images it trained on than
    held-out B images (mean logit, centre crops; for a look, held-out B is the truth).

    A critic shown the same few hundred images for thousands of steps learns them by heart
    (Karras et al. 2020, "Training GANs with limited data"): it then rewards the generator for
    anything that tells training photos apart, not for the look, and the translation drifts.
    Near 0 the critic judges held-out images as it judges its own; a value that grows from one
    milestone to the next is that memorising. None for the identity and other tasks.
    """
    if run_dir is None:
        return None
    from i2i.core.registry import discriminators
    from i2i.models.build import build_checked
    from i2i.models.checkpoint import latest_checkpoint, load_checkpoint, read_run_config

    config = read_run_config(run_dir)
    name = B_CRITIC.get(config["task"])
    checkpoint = latest_checkpoint(run_dir)
    if name is None or checkpoint is None:
        return None
    networks, _ = load_checkpoint(checkpoint)
    spec = config["discriminators"][name]
    critic = build_checked(discriminators, spec, networks[name], f"critic {name}").eval()
    seen = critic_ratings(critic, load_folder(data / "trainB"), size).mean()
    held_out = critic_ratings(critic, load_folder(data / "testB"), size).mean()
    return round(float(seen - held_out), 4)


def run_config(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Train (unless the task is ``identity``) to each milestone in turn; translate, score and
    draw at each. Returns one record per milestone (one for the identity)."""
    import torch

    from i2i.bridge import PATH_NOISE
    from i2i.core.device import resolve_device

    folder = Path(args.out) / args.name if not args.child else Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    data = dataset(args.pair, Path(args.shared_data), Path(args.cache), load_size(args.size))
    options = {**parse_opts(args.opt), **json.loads(args.options_json or "{}")}
    device = str(resolve_device(args.device))
    scorer = Scorer(device)
    score = score_look if is_look(args.pair) else score_painting
    run_dir = None if args.task == "identity" else folder / "run"
    if run_dir is not None and run_dir.exists():
        raise BenchmarkError(f"{run_dir} exists; choose another --out or --name, or delete it")
    records = []
    for steps in args.milestones if run_dir is not None else [0]:
        start = time.perf_counter()
        record: dict[str, Any] = {
            "bench": "quality",
            "name": args.name,
            "row": args.row or args.name,
            "pair": args.pair,
            "task": args.task,
            "options": options,
            "seed": args.seed,
            "lr_decay": args.lr_decay,
            "size": args.size,
            "load_size": load_size(args.size),
            "steps": 0,
            **({"seconds": args.seconds} if args.seconds and run_dir is not None else {}),
        }
        if run_dir is not None:
            record.update(train_run(args, data, run_dir, options, steps))
            done = record["steps"] - (records[-1]["steps"] if records else 0)
            record["it_per_s"] = round(done / max(record["train_s"], 1e-9), 2)
            record["memory"] = critic_memory(run_dir, data, args.size)
        # A bridge model (UNSB) is scored once per sampling step count, each as its own row,
        # walking the path's mean (records without path_noise walked the paper's noise, 1).
        for sampled in args.sample_steps or [None]:
            scored = dict(record)
            if sampled is not None:
                scored.update(
                    row=f"{record['row']}-{sampled}step",
                    sample_steps=sampled,
                    path_noise=PATH_NOISE,
                )
            metrics, panels = score(run_dir, data, device, scorer, sampled)
            scored.update(metrics)
            scored["sheet"] = str(save_sheets(folder, scored, panels))
            scored.update(
                wall_s=round(time.perf_counter() - start, 1),
                device=device,
                gpu=torch.cuda.get_device_name() if device.startswith("cuda") else None,
                run_dir=str(run_dir) if run_dir else None,
                torch=torch.__version__,
            )
            records.append(scored)
            with (folder / "result.jsonl").open("a") as f:
                f.write(json.dumps(scored) + "\n")
            print(json.dumps(scored), flush=True)
        if record.get("interrupted"):
            break  # a wall-time budget ran out: later milestones were not reached
    return records


# -- many configurations as parallel processes -------------------------------------------------
def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BenchmarkError(f"cannot read {what} {path}: {error}") from None
    if not isinstance(value, dict):
        raise BenchmarkError(f"{path}: expected a JSON object")
    return value


def grid_jobs(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A grid file: ``{"steps", "size", "base", "configs": [{name, task, pair, options}]}``."""
    grid = read_json(path, "grid")
    configs = grid.get("configs")
    if not isinstance(configs, list) or not configs:
        raise BenchmarkError(f"{path}: expected {{'configs': [{{name, task, options}}, ...]}}")
    names = [c.get("name") for c in configs]
    if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
        raise BenchmarkError(f"{path}: every config needs a unique, non-empty name")
    for c in configs:
        c.setdefault("pair", "film")
        if c["pair"] not in PAIRS:
            raise BenchmarkError(f"{path}: config {c['name']!r} has pair {c['pair']!r}")
    return grid, configs


def suite_jobs(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every row of the suite file on every look and painting pair with every seed (the
    suite's, or the row's own ``seeds`` and ``steps`` where it has them), plus the untrained
    identity on each; ``--rows``, ``--looks`` and ``--seeds`` select."""
    suite = read_json(Path(args.suite), "suite")
    rows = suite.get("rows")
    if not isinstance(rows, list) or not rows or any("name" not in r for r in rows):
        raise BenchmarkError(f"{args.suite}: expected 'rows': [{{name, task, options}}, ...]")
    if args.rows:
        wanted = args.rows.split(",")
        unknown = sorted(set(wanted) - {r["name"] for r in rows})
        if unknown:
            raise BenchmarkError(f"--rows: no row(s) {unknown} in {args.suite}")
        rows = [r for r in rows if r["name"] in wanted]
    looks = args.looks.split(",") if args.looks else suite.get("looks", list(LOOKS))
    unknown = sorted(set(looks) - set(PAIRS))
    if unknown:
        raise BenchmarkError(
            f"unknown look(s) {unknown}; the looks are {', '.join(LOOKS)}, the flaws "
            f"{', '.join(FLAWS)}, the toy's {TOY_NIGHT}, the painting pairs "
            f"{', '.join(PAINTINGS)}"
        )
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    paintings = suite.get("paintings", [MONET])
    if not isinstance(paintings, list) or not all(
        isinstance(p, str) and p in PAINTINGS for p in paintings
    ):
        raise BenchmarkError(
            f"{args.suite}: 'paintings' takes a list of {', '.join(PAINTINGS)}; got {paintings!r}"
        )
    # A pair named twice would be two runs of one name, in one folder: each runs once.
    pairs = list(dict.fromkeys([*looks, *([] if args.looks else paintings)]))
    jobs = [{"name": f"identity.{pair}", "row": "identity", "task": "identity", "pair": pair}
            for pair in pairs]  # fmt: skip
    for row in rows:
        where = f"{args.suite}: row {row['name']!r}:"
        if "sample_steps" in row:
            parse_steps(row["sample_steps"], f"{where} sample_steps")
        seconds = row.get("seconds")
        if seconds is not None and (type(seconds) not in (int, float) or not 0 < seconds < 1e7):
            raise BenchmarkError(f"{where} seconds must be a positive number; got {seconds!r}")
        for pair in pairs:
            for seed in seeds or row.get("seeds", suite.get("seeds", [0])):
                jobs.append(
                    {
                        **row,
                        "name": f"{row['name']}.{pair}.s{seed}",
                        "row": row["name"],
                        "pair": pair,
                        "seed": seed,
                    }
                )
    suite["looks"] = [pair for pair in looks if is_look(pair)]  # painting pairs are KID columns
    return suite, jobs


def child_command(
    args: argparse.Namespace, spec: dict, job: dict, folder: Path, threads: int
) -> list[str]:
    steps = job.get("steps") or args.steps or spec.get("steps", 1800)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--name", job["name"],
        "--row", job.get("row", job["name"]),
        "--pair", job["pair"],
        "--task", job.get("task", "cyclegan"),
        "--options-json", json.dumps(job.get("options", {})),
        "--base-json", json.dumps(spec.get("base", {})),
        "--steps", ",".join(map(str, parse_steps(steps))),
        "--size", str(args.size_given or spec.get("size", 64)),
        "--device", args.device,
        "--seed", str(job.get("seed", args.seed)),
        "--threads", str(threads),
        "--out", str(folder),
        "--cache", args.cache,
        "--shared-data", args.shared_data,
    ]  # fmt: skip
    command += ["--lr-decay"] if job.get("lr_decay") else []
    if job.get("sample_steps"):
        command += ["--sample-steps", ",".join(map(str, job["sample_steps"]))]
    return command + (["--seconds", str(job["seconds"])] if job.get("seconds") else [])


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith(("Traceback", "File "))]
    if not lines:
        return "no output"
    return lines[-1] if len(lines[-1]) <= 240 else lines[-1][:240] + "..."


def hold_folder(folder: Path) -> int:
    """Lock ``folder`` for this process's life (the descriptor stays open): two runs into one
    ``--out`` or ``--work`` would interleave and overwrite each other's results."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".quality-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BenchmarkError(
            f"another quality.py run is writing to {folder}; give this one another folder"
        ) from None
    return fd


class Children:
    """The running child processes, so that a stopped parent (Ctrl-C, SIGTERM) stops them too
    instead of leaving them training into its folders."""

    def __init__(self) -> None:
        self.running: set[subprocess.Popen] = set()
        self.stopped = False
        self.lock = threading.Lock()

    def run(self, command: list[str], out: Any) -> int | None:
        """The child's exit status; None when the parent stops before it starts."""
        with self.lock:
            if self.stopped:
                return None
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            self.running.add(process)
        try:
            return process.wait()
        finally:
            with self.lock:
                self.running.discard(process)

    def stop(self) -> None:
        with self.lock:
            self.stopped = True
            for process in self.running:
                process.terminate()


def run_child(
    command: list[str], folder: Path, job: dict, children: Children
) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    start = time.perf_counter()
    with log.open("w") as out:
        returncode = children.run(command, out)
    result = folder / "result.jsonl"
    if returncode == 0 and result.is_file():
        return [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
    keys = ("name", "row", "pair", "task", "options", "seed")
    return [
        {
            "bench": "quality",
            **{k: job[k] for k in keys if k in job},
            "error": _last_line(log),
            "log": str(log),
            "wall_s": round(time.perf_counter() - start, 1),
        }
    ]


_STEP_LINE = re.compile(r"^step (\d+)(?:/\d+)? epoch \d+ ([\d.]+) it/s", re.MULTILINE)


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


def run_jobs(args: argparse.Namespace, spec: dict[str, Any], jobs: list[dict]) -> int:
    """Run ``jobs`` as child processes, ``--jobs`` at a time; keep ``OUT``'s results, tables
    and sheets current after every finished job."""
    out = Path(args.out)
    work = Path(args.work or tempfile.mkdtemp(prefix="i2i_quality_work_"))
    held = [hold_folder(out)]
    try:
        held.append(hold_folder(work))
        records = _run_held(args, spec, jobs, out, work)
    finally:
        for fd in held:
            os.close(fd)
    return 1 if all("error" in r for r in records) else 0


def _run_held(
    args: argparse.Namespace, spec: dict[str, Any], jobs: list[dict], out: Path, work: Path
) -> list[dict[str, Any]]:
    results = out / "results.jsonl"
    results.write_text("")
    size = args.size_given or spec.get("size", 64)
    for pair in sorted({j["pair"] for j in jobs}):  # built once, before the children start
        dataset(pair, Path(args.shared_data), Path(args.cache), load_size(size))
    parallel = max(1, args.jobs)
    # --threads given wins: several suites may share the machine.
    threads = args.threads or max(1, (os.cpu_count() or 1) // parallel)
    print(
        f"{len(jobs)} runs, {parallel} at a time ({threads} threads each), steps "
        f"{args.steps or spec.get('steps')} at {size} px on {args.device}; runs in {work}; "
        f"results in {out}",
        file=sys.stderr,
        flush=True,
    )
    start, children = time.perf_counter(), Children()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
    try:
        records = _run_children(args, spec, jobs, out, work, children, threads, start)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    results.write_text("".join(json.dumps(r) + "\n" for r in records))
    failed = sum("error" in r for r in records)
    print(
        f"done in {time.perf_counter() - start:.0f} s, {failed} failed; tables in {out}",
        file=sys.stderr,
        flush=True,
    )
    return records


def _run_children(
    args: argparse.Namespace,
    spec: dict[str, Any],
    jobs: list[dict],
    out: Path,
    work: Path,
    children: Children,
    threads: int,
    start: float,
) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        pending: dict[Future, dict] = {
            pool.submit(
                run_child,
                child_command(args, spec, j, work / j["name"], threads),
                work / j["name"],
                j,
                children,
            ): j
            for j in jobs
        }
        try:
            records = _collect(args, spec, jobs, pending, work, out, start)
        except BaseException:
            children.stop()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return records


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM ends the parent as Ctrl-C does: its children are stopped on the way out."""
    raise SystemExit(128 + signum)


def _collect(
    args: argparse.Namespace,
    spec: dict[str, Any],
    jobs: list[dict],
    pending: dict[Future, dict],
    work: Path,
    out: Path,
    start: float,
) -> list[dict[str, Any]]:
    """Wait for the jobs; append each one's records to ``OUT/results.jsonl`` as it finishes,
    keep the table and sheets current, and print where the unfinished runs are."""
    results, order = out / "results.jsonl", [j["name"] for j in jobs]
    records: list[dict[str, Any]] = []
    finished_jobs = 0
    while pending:
        finished, _ = wait(pending, timeout=args.status_every, return_when=FIRST_COMPLETED)
        if not finished:
            running = [work / j["name"] for j in pending.values()]
            print(status_line(running, time.perf_counter() - start), file=sys.stderr, flush=True)
        for future in finished:
            job = pending.pop(future)
            finished_jobs += 1
            new = future.result()
            records += new
            with results.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
            for r in new:
                print(json.dumps(r), flush=True)
            last = new[-1]
            summary = f"FAILED {last['error']}" if "error" in last else caption(last)
            elapsed = time.perf_counter() - start
            print(
                f"[{finished_jobs}/{len(jobs)} {elapsed:.0f}s] {job['name']}: {summary}",
                file=sys.stderr,
                flush=True,
            )
            records.sort(key=lambda r: (order.index(r["name"]), r.get("steps", 0)))
            write_summary(out, records, spec)
    return records


def _seed(record: dict[str, Any]) -> int:
    return record.get("seed", 0)


def _row(record: dict[str, Any]) -> str:
    return record.get("row", record["name"])


def write_summary(out: Path, records: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    """``table.md`` (the suite's table when ``spec`` has looks, else the grid's) and one
    combined sheet per pair: its inputs, each configuration's outputs (its lowest seed, its
    last milestone), its truth."""
    looks = spec.get("looks")
    suite = looks is not None
    (out / "table.md").write_text(suite_table(records, looks) if suite else grid_table(records))
    for pair in sorted({r["pair"] for r in records}):
        ours = [r for r in records if r["pair"] == pair]
        drawn = sorted((r for r in ours if "sheet" in r), key=_seed, reverse=True)
        first_seed = {_row(r): _seed(r) for r in drawn}
        last: dict[str, int] = defaultdict(int)
        for r in drawn:
            last[_row(r)] = max(last[_row(r)], r.get("steps", 0))
        shown = [
            r
            for r in ours
            if r.get("steps", 0) == last[_row(r)] and _seed(r) == first_seed.get(_row(r))
        ]
        sheet = combined_sheet(shown, pair, label="row" if suite else "name")
        if sheet is not None:
            sheet.save(out / f"sheet_{pair}.png")


# -- command line ---------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", nargs="?", const=str(SUITE), default=None, metavar="FILE",
                   help=f"every row of a suite file on every look (default file {SUITE.name})")  # fmt: skip
    p.add_argument("--rows", default=None, help="with --suite: only these rows (comma-separated)")
    p.add_argument(
        "--looks", default=None, help="with --suite: only these looks (no painting pairs)"
    )
    p.add_argument("--seeds", default=None, help="with --suite: seeds, e.g. 0,1,2")
    p.add_argument("--name", default=None, help="configuration name (default: from the options)")
    p.add_argument("--task", default="cyclegan", help="training task, or 'identity' (no training)")
    p.add_argument(
        "--pair", choices=PAIRS, default="film", help="a look, the toy's night, or a painting pair"
    )
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="task option (repeatable), e.g. gan_loss=hinge, disc_kw=spectral_norm=true")  # fmt: skip
    p.add_argument("--lr-decay", action="store_true",
                   help="linear learning-rate decay over the second half of the last milestone")  # fmt: skip
    p.add_argument("--steps", default=None, help="training steps, or milestones: 1000,5000")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop training after this many seconds (equal wall time; --steps stays a cap)",
    )
    p.add_argument(
        "--sample-steps",
        default=None,
        help="a bridge model (UNSB): score at each of these sampling step counts, e.g. 1,5; "
        "each is a row of its own (in a suite file: the row's 'sample_steps')",
    )
    p.add_argument("--size", dest="size_given", type=int, default=None,
                   help="crop size; images are stored at 9/8 of it (default 64)")  # fmt: skip
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--out", default=None, help="output folder (default: a new one under /tmp)")
    p.add_argument("--cache", default=str(CACHE), help="where the built data sets are kept")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help="the ../shared/data folder")
    p.add_argument("--grid", default=None, help="JSON file of configurations to run in parallel")
    p.add_argument("--jobs", type=int, default=2, help="parallel runs with --grid or --suite")
    p.add_argument("--work", default=None, help="run folders of --grid/--suite (default: /tmp)")
    p.add_argument("--status-every", type=float, default=60.0, help="seconds between status lines")
    p.add_argument("--table", nargs="+", default=None, metavar="RESULTS",
                   help="print the table of results.jsonl file(s) or --out folder(s); with "
                   "--out, also write it, the combined results and the sheets there")  # fmt: skip
    p.add_argument("--prepare", action="store_true",
                   help="only build the data sets into --cache (e.g. to carry them elsewhere)")  # fmt: skip
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
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
        return f"identity-{args.pair}"
    label = "-".join(o.split("=", 1)[0] for o in args.opt) or "paper"
    return f"{label}-{args.pair}"


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results file, or of the ``--out`` folder of an earlier invocation (its
    results.jsonl); anything else is a one-line error naming the file and line."""
    file = path / "results.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise BenchmarkError(
            f"--table: no results file {file}; give a results.jsonl or an --out folder"
        )
    try:
        lines = file.read_text().splitlines()
    except UnicodeDecodeError:
        raise BenchmarkError(f"--table: {file} is not a text file of JSON lines") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise BenchmarkError(
                f"--table: {file}, line {number}: not JSON ({error.msg})"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("pair"), str):
            raise BenchmarkError(f"--table: {file}, line {number}: not a quality.py record")
        records.append(record)
    return records


def print_tables(paths: list[Path], out: Path | None) -> None:
    """The table of one or more results files (runs of one suite made by several invocations,
    say seeds on different machines); with ``out``, also its table.md, results and sheets."""
    records = [record for path in paths for record in read_results(path)]
    if not records:
        raise BenchmarkError(f"--table: no records in {', '.join(map(str, paths))}")
    looks = list(dict.fromkeys(r["pair"] for r in records if "row" in r and is_look(r["pair"])))
    suite = any(r.get("row") not in (None, r.get("name")) for r in records)
    sys.stdout.write(suite_table(records, looks) if suite else grid_table(records))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        from i2i.core.files import atomic_write_text

        # Atomic: with --table OUT --out OUT the file read is the file written.
        atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        write_summary(out, records, {"looks": looks} if suite else {})


MIN_SIZE = 16


def main(argv: list[str] | None = None) -> int:
    from i2i.core.errors import I2IError

    args = parse_args(argv)
    try:
        for flag, value in (("--threads", args.threads), ("--jobs", args.jobs)):
            if value is not None and value < 1:
                raise BenchmarkError(f"{flag} must be at least 1, got {value}")
        if args.size_given is not None and args.size_given < MIN_SIZE:
            raise BenchmarkError(
                f"--size must be at least {MIN_SIZE} px (the looks blur and the critics "
                f"downsample 16x), got {args.size_given}"
            )
        if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
            raise BenchmarkError(f"--out {args.out} is a file; give a folder (new or earlier)")
        if args.table:
            print_tables([Path(p) for p in args.table], Path(args.out) if args.out else None)
            return 0
        if args.out is None:
            args.out = tempfile.mkdtemp(prefix="i2i_quality_")
        if args.prepare:
            for pair in PAIRS:
                path = dataset(pair, Path(args.shared_data), Path(args.cache), load_size(args.size))
                print(path, flush=True)
            return 0
        if args.suite or args.grid:
            spec, jobs = suite_jobs(args) if args.suite else grid_jobs(Path(args.grid))
            if args.steps:
                args.steps = ",".join(map(str, parse_steps(args.steps)))
            return run_jobs(args, spec, jobs)
        args.milestones = parse_steps(args.steps or 1800)
        if args.sample_steps is not None:
            args.sample_steps = parse_steps(args.sample_steps, "--sample-steps")
        records = run_config(args)
        if not args.child:
            last = records[-1]
            print(caption(last) + f"; sheet {last['sheet']}", file=sys.stderr, flush=True)
        return 0
    except (BenchmarkError, I2IError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
