"""Image folders, decoding and the unaligned (CycleGAN) and aligned (pix2pix) datasets.

Everything here runs on the CPU (in DataLoader workers or a background thread) and hands over
uint8 tensors: augmentation and the conversion to float happen later on the training device
(Kornia), where they are cheap. A bad file never stops an epoch; it comes back as ``None`` plus a
``skipped`` entry, and ``collate`` drops it.

Two things keep decoding off the training step's critical path: ``prefetch`` runs the loader in
a background thread a few batches ahead, and ``keep_decoded`` keeps a dataset's decoded images in
memory when they fit, so after the first epoch nothing is decoded at all.
"""

from __future__ import annotations

import abc
import math
import os
import queue
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from i2i.core.errors import DataError, ImageDecodeError, InvalidArgumentError

__all__ = [
    "IMAGE_EXTENSIONS",
    "AlignedDataset",
    "DecodedCache",
    "EpochSampler",
    "UnalignedDataset",
    "collate",
    "default_cache_bytes",
    "find_images",
    "keep_decoded",
    "load_image",
    "prefetch",
    "save_image",
    "to_float",
    "to_uint8",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)

PathLike = str | os.PathLike[str]
Item = dict[str, Any]

_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


# -- finding files -------------------------------------------------------------------------------
def find_images(folder: PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by relative path so every machine sees one order.

    Hidden files and folders (``.DS_Store``, macOS ``._x.jpg`` forks, ``.ipynb_checkpoints``) are
    skipped because they are never training data. Symlinked sub-folders are followed, since
    datasets are often assembled from links, but each real folder is visited once and a link
    to a folder above is not followed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames.clear()
            continue
        seen.add(real)
        # A link to a folder above (``trainA/loop -> ..``) would pull the other domain in.
        dirnames[:] = (
            [d for d in dirnames if not d.startswith(".") and not _links_up(dirpath, d, real)]
            if recursive
            else []
        )
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath, name)
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda rel_path: rel_path[0])
    return [path for _, path in found]


def _links_up(dirpath: str, name: str, real: str) -> bool:
    """Whether sub-folder ``name`` of ``dirpath`` (real path ``real``) resolves to an ancestor."""
    target = os.path.realpath(os.path.join(dirpath, name))
    return real == target or real.startswith(target.rstrip(os.sep) + os.sep)


# -- decoding ------------------------------------------------------------------------------------
def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _scale_to_8bit(array: np.ndarray) -> Image.Image:
    """Map high-bit-depth or float samples onto 0..255 by range, because Pillow would clip them.

    Integer modes (``I;16*``, ``I``) are taken as 16-bit data. Float data is taken as 0..1 when it
    fits there, else as 0..255, else as 16-bit, which covers the files that tools actually write.
    """
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if array.dtype.kind == "f":
        peak = values.max(initial=0.0)
        full_scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    else:
        full_scale = 65535.0
    scaled = np.clip(values, 0.0, full_scale) * (255.0 / full_scale)
    return Image.fromarray(np.rint(scaled).astype(np.uint8))


def _normalize_mode(img: Image.Image) -> Image.Image:
    """Reduce any Pillow mode to ``L`` or ``RGB``; transparency is flattened onto white."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _scale_to_8bit(np.asarray(img))
    if mode == "1":
        return img.convert("L")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, _WHITE)
        return Image.alpha_composite(background, img).convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("RGB")  # P, CMYK, YCbCr, HSV, ...


def decode_image(path: Path) -> Image.Image:
    """Open, orient and normalize ``path``; every failure becomes an ``ImageDecodeError``.

    The size a file claims is checked before it is decoded: above Pillow's decompression-bomb
    limit (``Image.MAX_IMAGE_PIXELS``, 89 MP) it is refused, where Pillow would only warn up to
    twice that. An animated image gives its first frame, as a still image does.
    """
    try:
        with Image.open(path) as img:
            if img.width * img.height > (Image.MAX_IMAGE_PIXELS or math.inf):
                raise Image.DecompressionBombError(
                    f"it claims {img.width}x{img.height} pixels, more than "
                    f"{Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (a decompression bomb?)"
                )
            img.load()
            oriented = ImageOps.exif_transpose(img)
            return _normalize_mode(oriented)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"cannot read image {path}: {_one_line(e)}") from e


def image_header(path: Path) -> tuple[int, int, bool]:
    """(width, height, animated) that ``path`` claims, read from its header without decoding."""
    try:
        with Image.open(path) as img:
            return img.width, img.height, bool(getattr(img, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"cannot read image {path}: {_one_line(e)}") from e


def _check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise InvalidArgumentError(f"channels must be 1 or 3, got {channels!r}")
    return channels


def _to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    img = img.convert("L" if channels == 1 else "RGB")
    array = np.array(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_image(path: PathLike, channels: int = 3) -> torch.Tensor:
    """Decode any image Pillow reads into a uint8 ``(C, H, W)`` tensor with C = ``channels``.

    Camera photos are turned upright from their EXIF orientation, transparent pixels become white
    (the usual look of a cut-out), 16-bit and float images are rescaled rather than clipped, and
    ``channels=1`` gives luminance. A file that cannot be decoded raises ``ImageDecodeError``.
    """
    return _to_tensor(decode_image(Path(path)), _check_channels(channels))


# -- keeping decoded images ----------------------------------------------------------------------
Decoded = Any  # a uint8 tensor, or a tuple of them for an aligned pair


def _nbytes(value: Decoded) -> int:
    tensors = value if isinstance(value, tuple) else (value,)
    return sum(t.numel() * t.element_size() for t in tensors)


class DecodedCache:
    """Decoded images kept in memory, up to ``max_bytes``; once full, later images are decoded
    each time as usual. Values are never modified (``collate`` stacks copies), so one decoded
    image can serve every epoch. Safe to use from the prefetch thread and the main thread."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._values: dict[Any, Decoded] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Any, decode: Callable[[], Decoded]) -> Decoded:
        """The value kept for ``key``, or ``decode()`` (kept when it fits; errors propagate)."""
        value = self._values.get(key)
        if value is not None:
            return value
        value = decode()
        size = _nbytes(value)
        with self._lock:
            if key not in self._values and self.bytes + size <= self.max_bytes:
                self._values[key] = value
                self.bytes += size
        return value


def default_cache_bytes() -> int:
    """How much memory decoded images may take in one training process: a quarter of what is
    available, shared among the processes torchrun starts on this machine, at most 4 GiB."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux: assume little
        available = 4 * 2**30
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return min(4 * 2**30, available // (4 * max(processes, 1)))


class _KeepsDecoded(abc.ABC):
    """What the folder datasets share: an optional ``DecodedCache`` and the estimate that
    decides whether the whole dataset fits in it."""

    cache: DecodedCache | None = None

    @abc.abstractmethod
    def _images(self) -> int:
        """How many decoded images the whole dataset holds."""

    @abc.abstractmethod
    def _probe(self, count: int) -> list[Decoded]:
        """Decode the first ``count`` entries (kept in the cache when one is set); ``None``
        for unreadable ones."""

    def keep_decoded(self, max_bytes: int, probe: int = 8) -> bool:
        """Keep every decoded image in memory if the dataset fits in ``max_bytes``.

        The size is measured, not guessed: the first ``probe`` entries are decoded and their
        mean size scaled to the whole dataset (images of one folder are usually alike). Returns
        whether the dataset is kept; when it is not, nothing changes.
        """
        self.cache = DecodedCache(max_bytes)
        decoded = [value for value in self._probe(probe) if value is not None]
        images = sum(len(v) if isinstance(v, tuple) else 1 for v in decoded)
        per_image = sum(_nbytes(v) for v in decoded) / max(images, 1)
        if per_image * self._images() > max_bytes:
            self.cache = None
        return self.cache is not None


def keep_decoded(dataset: Any, max_bytes: int | None = None) -> bool:
    """Keep ``dataset``'s decoded images in memory when they all fit (``default_cache_bytes()``
    unless given); returns whether it does. Datasets other than the built-in folder datasets
    are left alone (``False``).

    Worth it with in-process loading (``num_workers=0`` plus ``prefetch``): worker processes
    would each keep a copy, and lose it when the loader is rebuilt.
    """
    if not isinstance(dataset, _KeepsDecoded):
        return False
    return dataset.keep_decoded(default_cache_bytes() if max_bytes is None else max_bytes)


def _try_load(
    path: Path, channels: int, skipped: list[tuple[str, str]], cache: DecodedCache | None = None
) -> torch.Tensor | None:
    try:
        if cache is None:
            return load_image(path, channels)
        return cache.get((str(path), channels), lambda: load_image(path, channels))
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
    return _check_channels(channels[0]), _check_channels(channels[1])


def _extensions_hint() -> str:
    return ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))


def _list_domain(folder: Path, layout: str, max_images: int | None) -> list[Path]:
    """The sorted images of one domain folder, or a ``DataError`` saying what layout was expected."""
    if not folder.is_dir():
        raise DataError(f"dataset folder {folder} is missing; expected {layout}")
    images = find_images(folder)
    if not images:
        raise DataError(
            f"dataset folder {folder} holds no images ({_extensions_hint()}); expected {layout}"
        )
    return images[:max_images]


class UnalignedDataset(_KeepsDecoded, torch.utils.data.Dataset):
    """Two unpaired image folders ``root/{split}A`` and ``root/{split}B`` for CycleGAN-style tasks.

    An epoch has ``max(|A|, |B|)`` steps, as in the original CycleGAN. Indices past the end encode
    later epochs, so the B partner of every step is a pure function of (seed, epoch, step): a
    resumed run, or one with a different number of DataLoader workers, sees the same pairs.
    """

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

    def _probe(self, count: int) -> list[Decoded]:
        skipped: list[tuple[str, str]] = []
        return [
            _try_load(path, channels, skipped, self.cache)
            for paths, channels in zip((self.paths_a, self.paths_b), self.channels, strict=True)
            for path in paths[:count]
        ]

    def _item(self, path_a: Path, path_b: Path) -> Item:
        skipped: list[tuple[str, str]] = []
        return {
            "A": _try_load(path_a, self.channels[0], skipped, self.cache),
            "B": _try_load(path_b, self.channels[1], skipped, self.cache),
            "A_path": str(path_a),
            "B_path": str(path_b),
            "skipped": skipped,
        }


class AlignedDataset(_KeepsDecoded, torch.utils.data.Dataset):
    """Paired images for pix2pix-style tasks, in either of the two common layouts.

    ``root/{split}/`` holding side-by-side images (A left half, B right half), or two folders
    ``root/{split}A`` and ``root/{split}B`` whose files pair up by name (relative path without
    extension). When both layouts exist the two folders win, being the more explicit one. A file
    without a partner fails at construction time, before any training; a pair whose sizes differ
    is only found on loading and is skipped with the reason.
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
            img_a, img_b = decode_image(path_a), decode_image(path_b)
            if img_a.size != img_b.size:
                raise ImageDecodeError(
                    f"{path_a} is {img_a.width}x{img_a.height} but its partner {path_b} is "
                    f"{img_b.width}x{img_b.height}; aligned pairs must be the same size"
                )
        return (img_b, img_a) if self.direction == "BtoA" else (img_a, img_b)

    def _tensors(self, pair: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
        img_a, img_b = self._load_pair(*pair)
        return _to_tensor(img_a, self.channels[0]), _to_tensor(img_b, self.channels[1])

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
            item["skipped"] = [(str(path_a), str(e))]
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


# -- overlapping loading with training ------------------------------------------------------------
T = TypeVar("T")
_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``batches`` in a background thread, up to ``depth`` items ahead of the consumer.

    Meant for a DataLoader with ``num_workers=0``: decoding (Pillow releases the GIL), collation
    and pinning then run while the main thread steps the networks, without worker processes to
    start every epoch or copies of the dataset in each. Items arrive in order; an exception in
    the loader is raised in the consumer at the item where it happened; stopping early (``break``,
    an error, Ctrl-C) stops the thread after the item it is on. The consumer still moves pinned
    batches to the device itself (``non_blocking=True``), on its own CUDA stream.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidArgumentError(f"prefetch depth must be a positive integer, got {depth!r}")
    return _prefetched(batches, depth)


def _prefetched(batches: Iterable[T], depth: int) -> Iterator[T]:
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    threads = torch.get_num_threads()

    def produce() -> None:
        # Torch work here (collation, resizing) would run its own OpenMP team beside the step's,
        # and on a CPU with few cores the two teams' threads wait on each other: on 2 cores the
        # step ran 1.8x slower. One thread here leaves the cores to the networks. This also sets
        # the count that threads starting meanwhile take up; restoring it from the consumer
        # right away (rather than here, at the end) measured the 1.8x slowdown again.
        torch.set_num_threads(1)
        try:
            for item in batches:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # handed over and raised in the consumer
            put(_Raised(error))
        finally:
            torch.set_num_threads(threads)  # threads started later get the process's count

    thread = threading.Thread(target=produce, name="i2i-prefetch", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


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


# -- conversion and saving -----------------------------------------------------------------------
def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 to float32 -1..1, the range the generators' tanh output lives in."""
    if x.dtype != torch.uint8:
        raise InvalidArgumentError(f"to_float expects a uint8 tensor, got {x.dtype}")
    return x.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float -1..1 to uint8, clamping the overshoot that a generator may produce."""
    return ((x.detach().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


def save_image(image: torch.Tensor, path: PathLike) -> Path:
    """Write a ``(C, H, W)`` uint8 or float -1..1 tensor, C in {1, 3}, in the suffix's format."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InvalidArgumentError(
            f"save_image expects a (C, H, W) tensor with 1 or 3 channels, got {tuple(image.shape)}"
        )
    if image.dtype != torch.uint8:
        image = to_uint8(image)
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    pil.save(path, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    return path
