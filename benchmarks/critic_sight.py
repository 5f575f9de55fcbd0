"""Can a critic see a look? A critic that cannot tell a look from its input cannot teach a
generator to make it, whatever the generator, the losses or the budget.

For each known-answer look of the suite (``looks.py``) and each critic compared (the suite's
PatchGAN with a given normalisation, or the ``projected`` critic on frozen ImageNet features;
``--ndf``, 64 px crops of the 72 px images), the critic is trained alone for
``--steps`` steps on the look's unpaired domains, A photos against *other* photos under the
look, with the LSGAN objective and the training's Adam settings. It is then shown each
held-out photo and its looked version (never seen in training) and scored by

* ``sees``: the fraction of held-out photos whose looked version it rates more B-like than the
  photo itself: 0.5 is blind, 1.0 tells every one apart;
* ``gap``: the mean difference of the two ratings (mean logit), how far apart it puts them.

This found why the quality recipe learned almost nothing of ``teal``: its instance-normalised
critic is blind to that grade (``sees`` about 0.6), because instance norm zeroes each feature
channel's mean and spread, which is where a colour grade lives; ``--norm-d layer`` keeps them.

    python3 benchmarks/critic_sight.py                                   # every look, 4 critics
    python3 benchmarks/critic_sight.py --looks teal,soft --critics instance,projected --steps 300
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from quality_data import KNOWN_ANSWER, LOOKS, BenchmarkError, critic_ratings, dataset, load_folder

from i2i.core.errors import I2IError

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
NORMS = ("instance", "layer", "none", "batch")  # i2i.nets.norm.NORMS: PatchGAN with that norm
CRITICS = (*NORMS, "projected")  # and the critic on frozen EfficientNet-Lite0 features
SIZE, LOAD = 64, 72


def _crops(images: Any, count: int, generator: Any) -> Any:
    import torch

    index = torch.randint(0, images.shape[0], (count,), generator=generator)
    top, left = torch.randint(0, LOAD - SIZE + 1, (2,), generator=generator).tolist()
    return images[index, :, top : top + SIZE, left : left + SIZE]


def create_critic(critic: str, ndf: int) -> Any:
    """``projected``, or the suite's PatchGAN with the normalisation ``critic``."""
    import i2i

    if critic == "projected":
        return i2i.create_discriminator("projected", ndf=ndf)
    return i2i.create_discriminator("patchgan", ndf=ndf, norm=critic)


def load_domains(data: Path) -> dict[str, Any]:
    """A look's four folders as float batches, read once for every critic compared on it."""
    return {name: load_folder(data / name) for name in ("trainA", "trainB", "testA", "testB")}


def sight(
    domains: dict[str, Any], critic_name: str, steps: int, seed: int, ndf: int, batch: int
) -> dict[str, Any]:
    """Train one critic on the unpaired domains; score it on the held-out pairs."""
    import torch

    from i2i.losses import LSGANLoss

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    critic = create_critic(critic_name, ndf).train()
    trained = [p for p in critic.parameters() if p.requires_grad]
    adam = torch.optim.Adam(trained, 2e-4, betas=(0.5, 0.999))
    objective = LSGANLoss()
    start = time.perf_counter()
    for _ in range(steps):
        fake_side = critic(_crops(domains["trainA"], batch, generator))
        real_side = critic(_crops(domains["trainB"], batch, generator))
        loss = 0.5 * (objective(real_side, True) + objective(fake_side, False))
        adam.zero_grad()
        loss.backward()
        adam.step()
    gap = critic_ratings(critic, domains["testB"], SIZE) - critic_ratings(
        critic, domains["testA"], SIZE
    )
    return {
        "sees": round((gap > 0).float().mean().item(), 3),
        "gap": round(gap.mean().item(), 4),
        "train_s": round(time.perf_counter() - start, 1),
    }


def table(records: list[dict[str, Any]]) -> str:
    critics = list(dict.fromkeys(r["critic"] for r in records))
    looks = list(dict.fromkeys(r["look"] for r in records))
    seen = {(r["look"], r["critic"]): r for r in records}
    lines = [
        "| look | " + " | ".join(f"{c}: sees (gap)" for c in critics) + " |",
        "|---|" + "---|" * len(critics),
    ]
    for look in looks:
        cells = [
            f"{seen[look, n]['sees']:.2f} ({seen[look, n]['gap']:+.3f})"
            if (look, n) in seen
            else "-"
            for n in critics
        ]
        lines.append(f"| {look} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--looks", default=",".join(LOOKS), help="comma-separated looks or flaws")
    p.add_argument(
        "--critics",
        default="instance,layer,none,projected",
        help=f"critics to compare: a PatchGAN norm ({', '.join(NORMS)}) or projected",
    )
    p.add_argument("--steps", type=int, default=300, help="critic training steps")
    p.add_argument("--batch", type=int, default=8, help="images per domain per step")
    p.add_argument("--ndf", type=int, default=32, help="critic width (the suite's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--cache", default=None, help="built data sets (default: quality.py's)")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help="the ../shared/data folder")
    p.add_argument("--out", default=None, help="also append the JSON lines to this file")
    args = p.parse_args(argv)
    try:
        looks = [look for look in args.looks.split(",") if look]
        critics = [critic for critic in args.critics.split(",") if critic]
        unknown = [look for look in looks if look not in KNOWN_ANSWER]
        if unknown:
            choices = ", ".join(KNOWN_ANSWER)
            raise BenchmarkError(f"unknown look {unknown[0]!r}; choose from {choices}")
        if not looks or not critics:
            raise BenchmarkError("--looks and --critics need at least one name each")
        bad = [critic for critic in critics if critic not in CRITICS]
        if bad:
            raise BenchmarkError(f"unknown critic {bad[0]!r}; choose from {', '.join(CRITICS)}")
        for flag, value in (("--steps", args.steps), ("--batch", args.batch), ("--ndf", args.ndf)):
            if value < 1:
                raise BenchmarkError(f"{flag} must be at least 1, got {value}")
        if args.threads is not None and args.threads < 1:
            raise BenchmarkError(f"--threads must be at least 1, got {args.threads}")
        if args.out and Path(args.out).is_dir():
            raise BenchmarkError(f"--out {args.out} is a folder; give a file to append to")
        import torch
        from quality import CACHE

        if args.threads:
            torch.set_num_threads(args.threads)
        cache = Path(args.cache) if args.cache else CACHE
        records = []
        for look in looks:
            domains = load_domains(dataset(look, Path(args.shared_data), cache, LOAD))
            for critic in critics:
                record = {
                    "bench": "critic_sight", "look": look, "critic": critic, "steps": args.steps,
                    "batch": args.batch, "ndf": args.ndf, "seed": args.seed,
                    **sight(domains, critic, args.steps, args.seed, args.ndf, args.batch),
                    "torch": torch.__version__,
                }  # fmt: skip
                records.append(record)
                line = json.dumps(record)
                print(line, flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(line + "\n")
        print(table(records))
    except (BenchmarkError, I2IError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
