"""The benchmark's data sets, built once from ``../shared/data`` photos and cached.

Known-answer data (one per look of ``looks.py``): domain A is 300 photos, domain B is 300
*other* photos under the look, and the 151 held-out photos come with their looked versions
(``testB/NAME.png`` is the truth for ``testA/NAME.png``). The split is the same for every look,
so the looks differ only in the answer. The painting pairs (``monet2photo``, ``ukiyoe2photo``)
train paintings or prints against the 300 A photos and keep some paintings and the held-out
photos for KID; no truth exists there. ``toynight`` is the built-in toy's day -> night with a
known answer: each held-out day has its night, the same scene (horizon, hills, disc) in the
night's palette, so it is scored like a look, and on whether the sun became the moon.

Images are stored at the training load size, and a look is applied at that size, so that the
truth is exactly the look of the input the network sees.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from looks import FLAWS, KNOWN_ANSWER, apply_look, downsample
from looks import LOOKS as LOOKS  # re-exported: the suite and critic_sight take it from here

# Bump when a look or the split changes: cached data sets are keyed by it.
DATA_VERSION = 2
SPLIT_SEED = 2026
PHOTO_SPLIT = {"A": 300, "B": 300, "test": 151}  # of the 751 photos, disjoint
# Painting pairs: the folder of paintings (or prints) under the shared data, and how many of
# them are held out for KID. ukiyoe2photo is what no recipe was chosen on: a real style it has
# never seen, scored as monet2photo is.
PAINTINGS = {"monet2photo": ("monet2photo/testA", 40), "ukiyoe2photo": ("ukiyoe2photo/testA", 80)}
MONET = "monet2photo"
TOY_NIGHT = "toynight"
TOY_NIGHT_TEST = 64  # held-out day/night pairs (the training sets are the toy's 200 + 200)
TOY_SEED = 0  # the toy's training sets, as ``i2i train`` draws them without --data
TOY_FOLDERS = ("trainA", "trainB", "testA", "testB")
KNOWN_PAIRS = (*KNOWN_ANSWER, TOY_NIGHT)  # scored against a truth
PAIRS = (*KNOWN_PAIRS, *PAINTINGS)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class BenchmarkError(Exception):
    """Bad input to the benchmark: printed as one line, exit status 2."""


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _shuffled(paths: list[Path]) -> list[Path]:
    paths = list(paths)
    random.Random(SPLIT_SEED).shuffle(paths)
    return paths


def photo_split(shared: Path) -> dict[str, list[Path]]:
    """The disjoint A / B / test photo subsets, the same on every machine (a seeded shuffle)."""
    photos = images_in(shared / "monet2photo" / "testB")
    needed = sum(PHOTO_SPLIT.values())
    if len(photos) < needed:
        raise BenchmarkError(f"{shared}/monet2photo/testB has {len(photos)} photos; need {needed}")
    photos = _shuffled(photos)
    a, b = PHOTO_SPLIT["A"], PHOTO_SPLIT["B"]
    return {"A": photos[:a], "B": photos[a : a + b], "test": photos[a + b : needed]}


def read_photo(path: Path, size: int) -> Any:
    """A photo as a float (3, size, size) tensor in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    array = np.array(Image.open(path).convert("RGB"))
    image = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    return downsample(image, size)


def _save(source: Path, target: Path, size: int, look: str | None) -> None:
    from PIL import Image

    image = read_photo(source, size)
    if look is not None:
        image = apply_look(look, image)
    array = (image * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(array).save(target.with_suffix(".png"))


def _build(target: Path, folders: dict[str, list[tuple[Path, str | None]]], size: int) -> Path:
    """The folders of photos (each with its look or None) at ``size`` px."""

    def write(tmp: Path) -> dict[str, int]:
        for folder, items in folders.items():
            (tmp / folder).mkdir()
            for source, look in items:
                _save(source, tmp / folder / source.name, size, look)
        return {folder: len(items) for folder, items in folders.items()}

    return _built(target, write, size)


def _built(target: Path, write: Callable[[Path], dict[str, Any]], size: int) -> Path:
    """``write`` (which returns what the manifest records besides the version and size: each
    folder's count) into a temporary sibling, then renamed: never half a data set."""
    if (target / "manifest.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        manifest = {"version": DATA_VERSION, "size": size, "split_seed": SPLIT_SEED, **write(tmp)}
        (tmp / "manifest.json").write_text(json.dumps(manifest) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # built meanwhile by another process
            if not (target / "manifest.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def look_data(look: str, shared: Path, target: Path, size: int) -> Path:
    """trainA (photos), trainB (other photos, looked), testA, testB (= the truth for testA).
    For a flaw, the flaw is on the A side: trainA and testA are flawed, and testB, the truth,
    is the clean test photos."""
    split = photo_split(shared)
    a_side, b_side = (look, None) if look in FLAWS else (None, look)
    folders = {
        "trainA": [(p, a_side) for p in split["A"]],
        "trainB": [(p, b_side) for p in split["B"]],
        "testA": [(p, a_side) for p in split["test"]],
        "testB": [(p, b_side) for p in split["test"]],
    }
    return _build(target, folders, size)


def painting_data(pair: str, shared: Path, target: Path, size: int) -> Path:
    """Paintings (monet2photo: 81 train, 40 held out; ukiyoe2photo: 183 and 80) and untouched
    photos (the A subset; test held out)."""
    folder, held_out = PAINTINGS[pair]
    if not (shared / folder).is_dir():
        raise BenchmarkError(f"no paintings at {shared / folder} to build {pair} from")
    paintings = _shuffled(images_in(shared / folder))
    if len(paintings) <= held_out + 1:
        raise BenchmarkError(f"{shared / folder} has only {len(paintings)} paintings")
    split = photo_split(shared)
    folders = {
        "trainA": [(p, None) for p in paintings[held_out:]],
        "trainB": [(p, None) for p in split["A"]],
        "testA": [(p, None) for p in paintings[:held_out]],
        "testB": [(p, None) for p in split["test"]],
    }
    return _build(target, folders, size)


def toy_night_data(target: Path, size: int) -> Path:
    """The toy's training days and nights (``i2i.toydata``, unpaired), and held-out days with
    their nights (``testB``), drawn at ``size`` px; ``discs.json`` says where each sun is."""
    from i2i.toydata import TOY_VERSION, make_toy_pairs, make_toy_unpaired

    def write(tmp: Path) -> dict[str, Any]:
        make_toy_unpaired(tmp, n_test=0, size=size, seed=TOY_SEED)
        discs = make_toy_pairs(tmp / "testA", tmp / "testB", TOY_NIGHT_TEST, size, SPLIT_SEED)
        (tmp / "discs.json").write_text(json.dumps({"discs": [d._asdict() for d in discs]}) + "\n")
        counts = {folder: len(images_in(tmp / folder)) for folder in TOY_FOLDERS}
        return {"toy_version": TOY_VERSION, "toy_seed": TOY_SEED, **counts}

    return _built(target, write, size)


def dataset(pair: str, shared: Path, cache: Path, size: int) -> Path:
    """The data set folder of ``pair`` (a look, the toy's night or a painting pair) at ``size``
    px: from the cache, else built from ``shared`` (the toy's, drawn). A cache built elsewhere
    (``--prepare``) needs no ``shared``: it holds everything."""
    if pair not in PAIRS:
        raise BenchmarkError(f"unknown pair {pair!r}; choose from {', '.join(PAIRS)}")
    if cache.exists() and not cache.is_dir():
        raise BenchmarkError(f"--cache {cache} is a file; give a folder for the data sets")
    target = cache / f"{pair}-v{DATA_VERSION}-{size}px"
    if pair == TOY_NIGHT:  # drawn, not read: a new drawing of the toy is a new data set
        from i2i.toydata import TOY_VERSION

        target = cache / f"{pair}-v{DATA_VERSION}-toy{TOY_VERSION}-{size}px"
    if (target / "manifest.json").is_file():
        return target
    if pair == TOY_NIGHT:
        return toy_night_data(target, size)
    if not (shared / "monet2photo" / "testB").is_dir():
        raise BenchmarkError(
            f"no data set at {target} and no photos at {shared}/monet2photo/testB to build it "
            "from; pass --shared-data (../shared/data) or a --cache built with --prepare"
        )
    if pair in PAINTINGS:
        return painting_data(pair, shared, target, size)
    return look_data(pair, shared, target, size)


def load_folder(folder: Path) -> Any:
    """Every image of a data set folder as a float (N, 3, H, W) batch in [-1, 1]."""
    import torch

    from i2i.data import load_image, to_float

    return to_float(torch.stack([load_image(p) for p in images_in(folder)]))


def critic_ratings(critic: Any, images: Any, size: int) -> Any:
    """Per image, a critic's mean logit on the centre ``size`` crop (a multi-scale critic's
    maps averaged map by map), in batches, without gradients."""
    import torch

    top, left = (images.shape[-2] - size) // 2, (images.shape[-1] - size) // 2
    centre = images[:, :, top : top + size, left : left + size]
    with torch.no_grad():
        ratings = []
        for batch in centre.split(32):
            prediction = critic(batch)
            maps = prediction if isinstance(prediction, list) else [prediction]
            ratings.append(sum(m.mean((1, 2, 3)) for m in maps) / len(maps))
        return torch.cat(ratings)


def each_look(
    argv: list[str] | None, doc: str, bench: str, measure: Callable[[Path], dict[str, Any]]
) -> int:
    """The command line of the no-training look benchmarks (``shift_target.py``,
    ``colour_map.py``): ``measure`` on each look's data set (built at 72 px), one JSON line each."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--looks", default=",".join(KNOWN_ANSWER), help="comma-separated looks")
    p.add_argument("--cache", default=None, help="built data sets (default: quality.py's)")
    p.add_argument("--shared-data", default=str(SHARED_DATA), help="the ../shared/data folder")
    args = p.parse_args(argv)
    try:
        looks = [look for look in args.looks.split(",") if look]
        unknown = [look for look in looks if look not in KNOWN_ANSWER]
        if unknown or not looks:
            choices = ", ".join(KNOWN_ANSWER)
            raise BenchmarkError(f"unknown look {(unknown or [''])[0]!r}; choose from {choices}")
        from quality import CACHE

        cache = Path(args.cache) if args.cache else CACHE
        for look in looks:
            record = {"bench": bench, "look": look}
            record.update(measure(dataset(look, Path(args.shared_data), cache, 72)))
            print(json.dumps(record), flush=True)
    except BenchmarkError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0
