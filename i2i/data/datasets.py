"""The unaligned (CycleGAN) and aligned (pix2pix) folder datasets, their sampler and ``collate``.

A bad file never stops an epoch; it comes back as ``None`` plus a ``skipped`` entry, and
``collate`` drops it.
"""

from __future__ import annotations

import contextlib
import math
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from i2i.core.errors import DataError, I2IWarning, ImageDecodeError, InvalidArgumentError
from i2i.data.cache import Decoded, DecodedCache, KeepsDecoded
from i2i.data.images import (
    IMAGE_EXTENSIONS,
    PathLike,
    decode_image,
    find_files,
    image_header,
    kinds_of,
    load_image,
    to_tensor,
)

Item = dict[str, Any]


def _try_load(
    path: Path,
    channels: int,
    skipped: list[tuple[str, str]],
    cache: DecodedCache | None = None,
    min_side: int | None = None,
) -> torch.Tensor | None:
    try:
        if cache is None:
            return load_image(path, channels, min_side)
        return cache.get(
            (str(path), channels, min_side), lambda: load_image(path, channels, min_side)
        )
    except ImageDecodeError as e:
        skipped.append((str(path), str(e)))
        return None


# -- datasets ------------------------------------------------------------------------------------
def _check_max_images(max_images: int | None) -> int | None:
    if max_images is not None and (isinstance(max_images, bool) or max_images < 1):
        raise InvalidArgumentError(
            f"max_images must be a positive integer or None, got {max_images!r}"
        )
    return max_images


def _check_channel_pair(channels: Sequence[int]) -> tuple[int, int]:
    if len(channels) != 2:
        raise InvalidArgumentError(f"channels must be a pair (A, B), got {channels!r}")
    for domain, count in zip("ab", channels, strict=True):
        if count not in (1, 3):
            raise InvalidArgumentError(
                f"--channels-{domain} must be 1 (grey) or 3 (colour), got {count!r}"
            )
    return channels[0], channels[1]


def _extensions_hint() -> str:
    return ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


def _list_domain(folder: Path, layout: str, max_images: int | None) -> list[Path]:
    """The sorted images of one domain folder, or a ``DataError`` saying what layout was expected."""
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} is missing; expected {layout}")
    images, others = find_files(folder, IMAGE_EXTENSIONS)
    if not images:
        holds = f"; it holds {kinds_of(others)}" if others else ""
        raise DataError(
            f"dataset folder {folder} holds no images ({_extensions_hint()}); expected "
            f"{layout}{holds}"
        )
    return images[:max_images]


class UnalignedDataset(KeepsDecoded, torch.utils.data.Dataset):
    """Two unpaired image folders ``root/{split}A`` and ``root/{split}B`` for CycleGAN-style tasks.

    An epoch has ``max(|A|, |B|)`` steps, as in the original CycleGAN. Indices past the end encode
    later epochs, so the B partner of every step is a pure function of (seed, epoch, step): a
    resumed run, or one with a different number of DataLoader workers, sees the same pairs.
    """

    # Decode big images no bigger than this shorter side (``decode_image``): training sets it to
    # its load size, so a folder of phone photos costs what the training uses. (Aligned pairs
    # decode whole: partners and A|B halves must be sized as one.)
    min_side: int | None = None

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        max_images: int | None = None,
        channels: Sequence[int] = (3, 3),
        seed: int = 0,
    ):
        self.root = Path(root)
        self.split = split
        self.channels = _check_channel_pair(channels)
        self.seed = seed
        max_images = _check_max_images(max_images)
        folder_a, folder_b = self.root / f"{split}A", self.root / f"{split}B"
        layout = f"image folders {folder_a} and {folder_b}"
        self.paths_a = _list_domain(folder_a, layout, max_images)
        self.paths_b = _list_domain(folder_b, layout, max_images)

    def __len__(self) -> int:
        return max(len(self.paths_a), len(self.paths_b))

    def partner_index(self, index: int) -> int:
        """Which B image goes with step ``index``; a string seed keeps it free of ``hash()``."""
        epoch, i = divmod(index, len(self))
        rng = random.Random(f"i2i-unaligned:{self.seed}:{epoch}:{i}")
        return rng.randrange(len(self.paths_b))

    def __getitem__(self, index: int) -> Item:
        path_a = self.paths_a[index % len(self) % len(self.paths_a)]
        return self._item(path_a, self.paths_b[self.partner_index(index)])

    def fixed_item(self, index: int) -> Item:
        """A[index] with B[index], not a random partner: the same images in every sample grid."""
        return self._item(
            self.paths_a[index % len(self.paths_a)], self.paths_b[index % len(self.paths_b)]
        )

    def _images(self) -> int:
        return len(self.paths_a) + len(self.paths_b)

    def files(self) -> list[Path]:
        """Every image file of both domains."""
        return [*self.paths_a, *self.paths_b]

    def _probe(self, count: int) -> list[Decoded]:
        skipped: list[tuple[str, str]] = []
        return [
            _try_load(path, channels, skipped, self.cache, self.min_side)
            for paths, channels in zip((self.paths_a, self.paths_b), self.channels, strict=True)
            for path in paths[:count]
        ]

    def _item(self, path_a: Path, path_b: Path) -> Item:
        skipped: list[tuple[str, str]] = []
        return {
            "A": _try_load(path_a, self.channels[0], skipped, self.cache, self.min_side),
            "B": _try_load(path_b, self.channels[1], skipped, self.cache, self.min_side),
            "A_path": str(path_a),
            "B_path": str(path_b),
            "skipped": skipped,
        }


def _warn_unless_side_by_side(paths: list[Path], folder_a: Path, folder_b: Path) -> None:
    """Plain photos in the side-by-side layout train without complaint on their left half ->
    right half; an A|B pair is about twice as wide as it is tall, so say so when none of the
    first few images is (header reads only)."""
    sizes = []
    for path in paths:
        with contextlib.suppress(ImageDecodeError):
            sizes.append((path, image_header(path)[:2]))
    if sizes and all(width < 1.5 * height for _, (width, height) in sizes):
        path, (width, height) = sizes[0]
        warnings.warn(
            f"{path} is {width}x{height}, but a side-by-side A|B pair is about twice as wide as "
            f"tall: each image is read as left half -> right half. Put inputs and targets in "
            f"{folder_a.name}/ and {folder_b.name}/ under matching names instead, unless these "
            f"are pairs of tall images",
            I2IWarning,
            stacklevel=3,
        )


def _same_size(
    img_a: Image.Image, path_a: Path, img_b: Image.Image, path_b: Path
) -> tuple[Image.Image, Image.Image]:
    """Partners of one shape at the larger one's size (both are resized for training anyway);
    partners of different shapes cannot be aligned pixel for pixel."""
    if img_a.size == img_b.size:
        return img_a, img_b
    (wa, ha), (wb, hb) = img_a.size, img_b.size
    if abs(wa * hb - wb * ha) > 0.01 * max(wa * hb, wb * ha):
        raise ImageDecodeError(
            f"{path_a} is {wa}x{ha} but its partner {path_b} is {wb}x{hb}: a pair must show "
            f"the same view, so crop them to one shape"
        )
    size = max(img_a.size, img_b.size)
    resample = Image.Resampling.BICUBIC
    return img_a.resize(size, resample), img_b.resize(size, resample)


class AlignedDataset(KeepsDecoded, torch.utils.data.Dataset):
    """Paired images for pix2pix-style tasks, in either of the two common layouts.

    ``root/{split}/`` holding side-by-side images (A left half, B right half), or two folders
    ``root/{split}A`` and ``root/{split}B`` whose files pair up by name (relative path without
    extension). When both layouts exist the two folders win, being the more explicit one. A file
    without a partner fails at construction time, before any training. Partners of different
    sizes but one shape are brought to the larger size; a pair of different shapes is only
    found on loading and is skipped with the reason.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        direction: str = "AtoB",
        max_images: int | None = None,
        channels: Sequence[int] = (3, 3),
    ):
        if direction not in ("AtoB", "BtoA"):
            raise InvalidArgumentError(f"direction must be 'AtoB' or 'BtoA', got {direction!r}")
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.channels = _check_channel_pair(channels)
        max_images = _check_max_images(max_images)
        combined = self.root / split
        folder_a, folder_b = self.root / f"{split}A", self.root / f"{split}B"
        layout = (
            f"side-by-side AB images in {combined} or matching file names in "
            f"{folder_a} and {folder_b}"
        )
        self.pairs: list[tuple[Path, Path]]
        if folder_a.is_dir() or folder_b.is_dir():
            self.side_by_side = False
            paths_a = _list_domain(folder_a, layout, None)
            paths_b = _list_domain(folder_b, layout, None)
            self.pairs = self._match(paths_a, folder_a, paths_b, folder_b)[:max_images]
        else:
            self.side_by_side = True
            self.pairs = [(p, p) for p in _list_domain(combined, layout, max_images)]
            _warn_unless_side_by_side([p for p, _ in self.pairs[:8]], folder_a, folder_b)

    @staticmethod
    def _match(
        paths_a: list[Path], folder_a: Path, paths_b: list[Path], folder_b: Path
    ) -> list[tuple[Path, Path]]:
        def by_key(paths: list[Path], folder: Path) -> dict[str, Path]:
            keyed: dict[str, Path] = {}
            for path in paths:
                key = path.relative_to(folder).with_suffix("").as_posix()
                if key in keyed:
                    raise DataError(
                        f"{path} and {keyed[key]} have the same name; aligned pairs are matched "
                        "by file name, so rename or remove one"
                    )
                keyed[key] = path
            return keyed

        keyed_a, keyed_b = by_key(paths_a, folder_a), by_key(paths_b, folder_b)
        for keyed, other, other_folder in (
            (keyed_a, keyed_b, folder_b),
            (keyed_b, keyed_a, folder_a),
        ):
            for key, path in keyed.items():
                if key not in other:
                    raise DataError(
                        f"{path} has no partner named {key}.* in {other_folder}; aligned datasets need "
                        f"the same file names in {folder_a} and {folder_b}"
                    )
        return [(keyed_a[key], keyed_b[key]) for key in keyed_a]

    def __len__(self) -> int:
        return len(self.pairs)

    def _load_pair(self, path_a: Path, path_b: Path) -> tuple[Image.Image, Image.Image]:
        if self.side_by_side:
            img = decode_image(path_a)
            half = img.width // 2
            if half == 0:
                raise ImageDecodeError(f"{path_a} is 1 pixel wide; it cannot hold an A|B pair")
            img_a, img_b = (
                img.crop((0, 0, half, img.height)),
                img.crop((half, 0, 2 * half, img.height)),
            )
        else:
            img_a, img_b = _same_size(decode_image(path_a), path_a, decode_image(path_b), path_b)
        return (img_b, img_a) if self.direction == "BtoA" else (img_a, img_b)

    def _tensors(self, pair: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
        img_a, img_b = self._load_pair(*pair)
        return to_tensor(img_a, self.channels[0]), to_tensor(img_b, self.channels[1])

    def _images(self) -> int:
        return 2 * len(self.pairs)

    def _probe(self, count: int) -> list[Decoded]:
        items = [self[i] for i in range(min(count, len(self)))]
        return [(item["A"], item["B"]) if item["A"] is not None else None for item in items]

    def __getitem__(self, index: int) -> Item:
        pair = self.pairs[index % len(self)]
        path_a, path_b = pair[::-1] if self.direction == "BtoA" else pair
        item: Item = {"A": None, "B": None, "A_path": str(path_a), "B_path": str(path_b)}
        try:
            if self.cache is None:
                item["A"], item["B"] = self._tensors(pair)
            else:
                item["A"], item["B"] = self.cache.get(pair, lambda: self._tensors(pair))
        except ImageDecodeError as e:
            # the file at fault, as the message names it (the input's when both or neither)
            at_fault = path_b if str(path_b) in str(e) and str(path_a) not in str(e) else path_a
            item["skipped"] = [(str(at_fault), str(e))]
            return item
        item["skipped"] = []
        return item


# -- sampling ------------------------------------------------------------------------------------
class EpochSampler(torch.utils.data.Sampler[int]):
    """Shuffled indices that encode the epoch, so datasets can vary pairs from epoch to epoch.

    Each epoch yields ``epoch * length + perm[j]``. The permutation comes from its own generator
    seeded with ``seed + epoch`` (never the global RNG), so it is the same on every rank and after
    a resume; ``start`` skips the steps this rank already took, for an exact mid-epoch resume.
    Shards are padded by wrapping around, like ``DistributedSampler``, so all ranks take the same
    number of steps.
    """

    def __init__(
        self,
        length: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if length < 1:
            raise InvalidArgumentError(f"EpochSampler needs a dataset length >= 1, got {length}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise InvalidArgumentError(
                f"EpochSampler needs 0 <= rank < world_size, got rank {rank}, world_size {world_size}"
            )
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    @property
    def shard_size(self) -> int:
        return math.ceil(self.length / self.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        if start < 0:
            raise InvalidArgumentError(f"start must be >= 0, got {start}")
        self.epoch = epoch
        self.start = start

    def _shard(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        total = self.shard_size * self.world_size
        padded = (order * math.ceil(total / self.length))[:total]
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        offset = self.epoch * self.length
        return iter([offset + i for i in self._shard()[self.start :]])

    def __len__(self) -> int:
        return max(self.shard_size - self.start, 0)


# -- batching ------------------------------------------------------------------------------------
def _resize_uint8(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    resized = F.interpolate(
        x[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return resized[0].round().clamp(0, 255).to(torch.uint8)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack, resizing to the first tensor's size so batches from mixed-size folders work."""
    size = tuple(tensors[0].shape[-2:])
    return torch.stack([t if t.shape[-2:] == size else _resize_uint8(t, size) for t in tensors])


def collate(items: Sequence[Item]) -> dict[str, Any]:
    """Batch dataset items: drop unreadable ones, keep their reasons, stack the rest as uint8."""
    skipped = [entry for item in items for entry in item.get("skipped", ())]
    kept = [item for item in items if item["A"] is not None and item["B"] is not None]
    return {
        "A": _stack([item["A"] for item in kept]) if kept else None,
        "B": _stack([item["B"] for item in kept]) if kept else None,
        "A_path": [item["A_path"] for item in kept],
        "B_path": [item["B_path"] for item in kept],
        "skipped": skipped,
    }
