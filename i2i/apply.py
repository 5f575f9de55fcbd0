"""Translating images with a trained model: any size, any number of files, big images in tiles.

Generators only take sizes that are multiples of their ``size_multiple`` (4 for the ResNets, 128
or 256 for the U-Nets), so every image is padded (reflect, or replicate when the image is too
small to reflect) to the next valid size, translated and cropped back: the output always has the
input's resolution and nothing is resized.

Images too big for memory can be translated in overlapping tiles that are blended with cosine
ramps, so there are no seams. A network with instance norm (the CycleGAN default) normalises each
tile with that tile's own statistics, so tiled output is close to, but not identical with, the
untiled output; a network without normalisation over space gives the same result up to the
edges of its receptive field.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import math
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from i2i.data import IMAGE_EXTENSIONS, _normalize_mode, _to_tensor, find_images, load_image
from i2i.errors import I2IError, ImageDecodeError, InvalidArgumentError
from i2i.train.runtime import PRECISIONS, resolve_device
from i2i.video import VIDEO_EXTENSIONS, require_av, translate_video

__all__ = ["ApplyReport", "Translator", "apply_paths"]

T = TypeVar("T")

# ITU-R 601-2 luma, the weights Pillow uses for "L", so tensors and files turn grey alike.
_LUMA = (0.299, 0.587, 0.114)
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


# -- checks --------------------------------------------------------------------------------------
def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_tiling(tile: int | None, overlap: int) -> None:
    if tile is None:
        return
    _check_positive("tile", tile)
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InvalidArgumentError(f"overlap must be an integer >= 0, got {overlap!r}")
    if tile <= 2 * overlap:
        raise InvalidArgumentError(
            f"tile ({tile}) must be more than twice the overlap ({overlap}); use a bigger tile "
            "or a smaller overlap"
        )


# -- padding and tiling --------------------------------------------------------------------------
def _valid_size(size: int, multiple: int, minimum: int) -> int:
    return max(-(-size // multiple), -(-minimum // multiple)) * multiple


def _pad_to_valid(x: torch.Tensor, multiple: int, minimum: int) -> tuple[torch.Tensor, int, int]:
    """Pad symmetrically to a size the network takes; returns the padded tensor and the offsets."""
    height, width = x.shape[-2:]
    extra_h = _valid_size(height, multiple, minimum) - height
    extra_w = _valid_size(width, multiple, minimum) - width
    if not extra_h and not extra_w:
        return x, 0, 0
    top, left = extra_h // 2, extra_w // 2
    pads = (left, extra_w - left, top, extra_h - top)
    # reflect cannot pad by as much as the side it mirrors
    fits = max(pads[:2]) < width and max(pads[2:]) < height
    return F.pad(x, pads, mode="reflect" if fits else "replicate"), top, left


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread tile origins covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def _ramp(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """1-D blending weight of one tile: cosine ramps on the sides that meet another tile.

    The ramps never reach zero, so every pixel keeps a positive total weight; image borders keep
    weight 1 because no other tile covers them.
    """
    weight = torch.ones(size)
    if overlap:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)
        if start > 0:
            weight[:overlap] = ramp
        if start + size < length:
            weight[-overlap:] = ramp.flip(0)
    return weight


def _match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        luma = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * luma).sum(1, keepdim=True)
    raise InvalidArgumentError(
        f"images must have 1 or 3 channels (this generator takes {channels}), got {x.shape[1]}"
    )


def _input_channels(net: nn.Module, spec: Mapping[str, Any]) -> int:
    """What the generator reads: its config kwargs say so, else its first convolution."""
    kwargs = spec.get("kwargs", {})
    if "in_channels" in kwargs:
        return int(kwargs["in_channels"])
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return module.in_channels
    return 3


# -- the translator ------------------------------------------------------------------------------
class Translator:
    """A loaded model, ready to translate PIL images or tensors of any size.

    Networks go to ``device`` once, in eval mode (channels-last on CUDA); ``precision`` bf16 or
    fp16 runs them under autocast on CUDA, while the CPU always runs fp32, where half precision
    is slower rather than faster. ``batch_size`` bounds how many images or tiles go through the
    network at once, which is what bounds memory.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        generators: Mapping[str, nn.Module],
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        batch_size: int = 4,
    ) -> None:
        if not generators:
            raise I2IError("a Translator needs at least one generator")
        if precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}"
            )
        self.device = resolve_device(str(device) if isinstance(device, torch.device) else device)
        self.precision = precision
        self.batch_size = _check_positive("batch_size", batch_size)
        self._config = dict(config)
        self._channels_last = self.device.type == "cuda"
        specs = self._config.get("generators", {})
        self._nets: dict[str, nn.Module] = {}
        self._in_channels: dict[str, int] = {}
        for direction, net in generators.items():
            net = net.to(self.device).eval()
            if self._channels_last:
                net = net.to(memory_format=torch.channels_last)
            self._nets[direction] = net
            self._in_channels[direction] = _input_channels(net, specs.get(direction, {}))

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self._nets)

    @property
    def domains(self) -> dict[str, str]:
        return dict(self._config.get("domains", {"A": "A", "B": "B"}))

    @property
    def config(self) -> dict[str, Any]:
        return self._config

    # -- the Hub object interface (like huggingface_hub's mixins and diffusers) ---------------
    @classmethod
    def from_pretrained(cls, model: str | Path, **kwargs: Any) -> Translator:
        """Same as ``i2i.load``: a Hub id (``user/repo[@rev]``), a model folder or a run."""
        from i2i.loader import load

        return load(model, **kwargs)

    def save_pretrained(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write this model as a model folder (config.json, model.safetensors, card)."""
        from i2i.model import save_model

        if "onnx" in self._config:
            raise I2IError("an ONNX Runtime model cannot be saved as safetensors; use the source")
        return save_model(Path(folder), self._config, self._nets, overwrite=overwrite)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> Any:
        """Upload to the Hub (``private``, ``revision``, ``message``, ``token`` as in ``i2i push``)."""
        import tempfile

        from i2i.hub import push

        with tempfile.TemporaryDirectory(prefix="i2i-") as tmp:
            return push(self.save_pretrained(Path(tmp) / "model"), repo_id, **kwargs)

    def resolve_direction(self, direction: str | None = None) -> str:
        """The direction to run: the only one a model has, else ``AtoB`` unless one is named."""
        if direction is None:
            direction = self.directions[0] if len(self._nets) == 1 else "AtoB"
        if direction not in self._nets:
            raise I2IError(
                f"this model has no direction {direction!r}; it has {', '.join(self.directions)}"
            )
        return direction

    def input_channels(self, direction: str | None = None) -> int:
        return self._in_channels[self.resolve_direction(direction)]

    def __call__(
        self,
        x: Image.Image | Sequence[Image.Image] | torch.Tensor,
        direction: str | None = None,
        *,
        tile: int | None = None,
        overlap: int = 32,
    ) -> Image.Image | list[Image.Image] | torch.Tensor:
        """Translate and return the same kind: PIL image(s) of the input sizes, or a tensor.

        A tensor is float in [-1, 1], (N, C, H, W) or (C, H, W), and comes back on its own
        device and dtype. ``tile`` splits images bigger than ``tile`` pixels into overlapping
        tiles (see the module docstring for how close that is to the untiled result).
        """
        direction = self.resolve_direction(direction)
        _check_tiling(tile, overlap)
        if isinstance(x, Image.Image):
            return self._translate_pil([x], direction, tile, overlap)[0]
        if isinstance(x, torch.Tensor):
            return self._translate_tensor(x, direction, tile, overlap)
        if isinstance(x, list | tuple) and all(isinstance(i, Image.Image) for i in x):
            return self._translate_pil(list(x), direction, tile, overlap)
        raise InvalidArgumentError(
            "expected a PIL image, a list of PIL images or a float tensor (N, C, H, W) in "
            f"[-1, 1], got {type(x).__name__}"
        )

    def translate_batch(
        self,
        images: torch.Tensor,
        direction: str | None = None,
        *,
        tile: int | None = None,
        overlap: int = 32,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """uint8 (N, C, H, W) on the CPU in, uint8 out: the path files and videos take.

        uint8 crosses to the device (a quarter of the bytes of float), is converted there, and
        the result comes back in one copy: no other host sync per image.
        """
        direction = self.resolve_direction(direction)
        _check_tiling(tile, overlap)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise InvalidArgumentError(
                f"translate_batch expects a uint8 (N, C, H, W) tensor, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if self.device.type == "cuda":
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).float() / 127.5 - 1.0
        out = self._infer(x, direction, tile, overlap, batch_size)
        # Outside inference mode, so the caller gets an ordinary tensor.
        return ((out.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).cpu()

    # -- internals -------------------------------------------------------------------------------
    def _translate_pil(
        self, images: list[Image.Image], direction: str, tile: int | None, overlap: int
    ) -> list[Image.Image]:
        """Same-size images share a batch; the results come back in the input order."""
        channels = self._in_channels[direction]
        tensors = [_to_tensor(_normalize_mode(img), channels) for img in images]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            by_size.setdefault(tuple(tensor.shape[-2:]), []).append(index)
        results: dict[int, Image.Image] = {}
        for indices in by_size.values():
            batch = torch.stack([tensors[i] for i in indices])
            out = self.translate_batch(batch, direction, tile=tile, overlap=overlap)
            results.update(zip(indices, map(_to_pil, out), strict=True))
        return [results[i] for i in range(len(images))]

    def _translate_tensor(
        self, x: torch.Tensor, direction: str, tile: int | None, overlap: int
    ) -> torch.Tensor:
        if not x.is_floating_point() or x.ndim not in (3, 4):
            raise InvalidArgumentError(
                "expected a float tensor in [-1, 1] of shape (N, C, H, W) or (C, H, W), got "
                f"{x.dtype} {tuple(x.shape)}; i2i.data.to_float converts uint8 images"
            )
        batch = x if x.ndim == 4 else x[None]
        out = self._infer(batch.to(self.device, torch.float32), direction, tile, overlap, None)
        out = out if x.ndim == 4 else out[0]
        # A copy outside inference mode: callers may use the result in autograd or in place.
        return out.to(device=x.device, dtype=x.dtype, copy=True)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "fp32" or self.device.type != "cuda":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=PRECISIONS[self.precision])

    def _infer(
        self,
        x: torch.Tensor,
        direction: str,
        tile: int | None,
        overlap: int,
        batch_size: int | None,
    ) -> torch.Tensor:
        """float (N, C, H, W) on the device in, float32 of the same size out."""
        net = self._nets[direction]
        batch_size = batch_size or self.batch_size
        x = _match_channels(x, self._in_channels[direction])
        with torch.inference_mode(), self._autocast():
            if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
                return torch.cat([self._run(net, chunk) for chunk in x.split(batch_size)])
            return self._run_tiled(net, x, tile, overlap, batch_size)

    def _run(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        multiple = getattr(net, "size_multiple", 1)
        padded, top, left = _pad_to_valid(x, multiple, getattr(net, "min_size", 1))
        if self._channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        out = net(padded)
        if out.shape[-2:] != padded.shape[-2:]:
            raise I2IError(
                f"the generator turned a {padded.shape[-2]}x{padded.shape[-1]} input into "
                f"{out.shape[-2]}x{out.shape[-1]}; apply needs generators that keep the size"
            )
        height, width = x.shape[-2:]
        return out[..., top : top + height, left : left + width].float()

    def _run_tiled(
        self, net: nn.Module, x: torch.Tensor, tile: int, overlap: int, batch_size: int
    ) -> torch.Tensor:
        """Run every tile of every image in batches, accumulate weighted, divide by the weights."""
        n, _, height, width = x.shape
        tile_h, tile_w = min(tile, height), min(tile, width)
        boxes = [
            (top, left)
            for top in _tile_starts(height, tile, overlap)
            for left in _tile_starts(width, tile, overlap)
        ]
        weights = {
            (top, left): (
                _ramp(top, tile_h, height, overlap)[:, None]
                * _ramp(left, tile_w, width, overlap)[None, :]
            ).to(x.device)
            for top, left in boxes
        }
        total = torch.zeros(height, width, device=x.device)
        for top, left in boxes:
            total[top : top + tile_h, left : left + tile_w] += weights[top, left]
        jobs = [(i, box) for i in range(n) for box in boxes]
        out: torch.Tensor | None = None
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            tiles = torch.stack([x[i, :, y : y + tile_h, z : z + tile_w] for i, (y, z) in chunk])
            result = self._run(net, tiles)
            if out is None:
                out = torch.zeros(n, result.shape[1], height, width, device=x.device)
            for (i, (y, z)), piece in zip(chunk, result, strict=True):
                out[i, :, y : y + tile_h, z : z + tile_w] += piece * weights[y, z]
        assert out is not None  # there is always at least one tile
        return out / total


def _to_pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


# -- files ---------------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    """What ``apply_paths`` did; ``failed`` holds (input path, reason) for unreadable inputs."""

    written: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path | None = None

    def summary(self) -> str:
        where = f" to {self.out_dir}" if self.out_dir is not None else ""
        parts = [f"Wrote {_count(len(self.written), 'file')}{where}"]
        if self.skipped_existing:
            parts.append(
                f"kept {_count(len(self.skipped_existing), 'existing output')} "
                "(pass --overwrite to replace them)"
            )
        if self.failed:
            shown = "; ".join(reason for _, reason in self.failed[:3])
            more = f"; and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            parts.append(f"skipped {_count(len(self.failed), 'unreadable input')}: {shown}{more}")
        return "; ".join(parts) + "."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class _Job:
    index: int
    src: Path
    dst: Path


def _has_magic(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def _glob_root(spec: str) -> Path:
    """The folder a glob searches: its path up to the first wildcard."""
    parts = Path(spec).parts
    fixed = list(itertools.takewhile(lambda part: not _has_magic(part), parts))
    return Path(*fixed) if fixed else Path()


def _earlier_outputs(root: Path, out_dir: Path) -> Callable[[Path], bool]:
    """Whether a file found under ``root`` sits in ``out_dir`` strictly inside it.

    Such files are outputs of an earlier run, and translating them again would nest outputs
    deeper on every run. When ``out_dir`` is ``root`` itself nothing is excluded, so the
    input-is-output check still fires.
    """
    root, out = root.resolve(), out_dir.resolve()
    if out == root or not out.is_relative_to(root):
        return lambda path: False
    return lambda path: path.resolve().is_relative_to(out)


def _expand(inputs: Sequence[str | os.PathLike[str]], out_dir: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs; a folder keeps relative paths, files and globs just names."""
    pairs: list[tuple[Path, Path]] = []
    suffixes = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            skip = _earlier_outputs(path, out_dir)
            pairs += [
                (image, out_dir / image.relative_to(path))
                for image in find_images(path)
                if not skip(image)
            ]
        elif path.is_file():
            pairs.append((path, out_dir / path.name))
        elif _has_magic(str(spec)):
            skip = _earlier_outputs(_glob_root(str(spec)), out_dir)
            for match in sorted(glob.glob(str(spec), recursive=True)):
                found = Path(match)
                wanted = found.is_file() and found.suffix.lower() in suffixes
                if wanted and not skip(found):
                    pairs.append((found, out_dir / found.name))
        else:
            raise I2IError(f"input {spec} does not exist (not a file, a folder or a glob)")
    return pairs


def _plan(inputs: Sequence[str | os.PathLike[str]], out_dir: Path) -> list[_Job]:
    """Every job, checked before anything runs: no input is ever an output, no output twice."""
    pairs = _expand(inputs, out_dir)
    if not pairs:
        names = ", ".join(str(i) for i in inputs) or "(no inputs given)"
        kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        raise I2IError(f"no images found in {names} (looked for {kinds})")
    sources = {src.resolve() for src, _ in pairs}
    by_dst: dict[Path, Path] = {}
    jobs: list[_Job] = []
    for src, dst in pairs:
        key = dst.resolve()
        if key in sources:
            raise I2IError(
                f"the output for {src} would be {dst}, which is an input; inputs are never "
                "overwritten, so choose an output folder outside the input folders"
            )
        if key in by_dst:
            if by_dst[key] != src.resolve():
                raise I2IError(
                    f"{by_dst[key]} and {src} would both be written to {dst}; translate them "
                    "into different output folders"
                )
            continue  # the same file named twice (say, a file and a glob matching it)
        by_dst[key] = src.resolve()
        jobs.append(_Job(len(jobs), src, dst))
    return jobs


def _pil_format(path: Path) -> str | None:
    """The Pillow writer for the suffix, or None when Pillow cannot write it."""
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return fmt if fmt in Image.SAVE else None


def _write_image(image: torch.Tensor, dst: Path) -> Path:
    """Temp file beside the target, then ``os.replace``: a reader never sees half an image."""
    fmt = _pil_format(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as file:  # unlike mkstemp, "x" honours the umask
            _to_pil(image).save(file, format=fmt, **_SAVE_OPTIONS.get(fmt or "", {}))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[_Job], T], jobs: Iterable[_Job], window: int
) -> Iterator[tuple[_Job, Future[T]]]:
    """``fn`` on the jobs in the pool, at most ``window`` ahead of the consumer, in order."""
    queue: deque[tuple[_Job, Future[T]]] = deque()
    for job in jobs:
        queue.append((job, pool.submit(fn, job)))
        if len(queue) >= window:
            yield queue.popleft()
    yield from queue


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


class _ImageRun:
    """The image half of ``apply_paths``: decode ahead, batch by size, write behind."""

    def __init__(
        self,
        translator: Translator,
        report: ApplyReport,
        direction: str,
        batch_size: int,
        tile: int | None,
        overlap: int,
    ) -> None:
        self.translator = translator
        self.report = report
        self.direction = direction
        self.batch_size = batch_size
        self.tile = tile
        self.overlap = overlap
        # Decoding runs this far ahead and writing this far behind, which bounds the memory.
        self.window = 2 * batch_size
        self.written: list[tuple[int, Path]] = []
        self.writes: deque[tuple[_Job, Future[Path]]] = deque()

    def run(self, jobs: list[_Job], progress: bool) -> None:
        channels = self.translator.input_channels(self.direction)
        # Same-size images wait for each other to fill a batch, but never more than this many.
        max_waiting = 4 * self.batch_size
        waiting: dict[tuple[int, ...], list[tuple[_Job, torch.Tensor]]] = {}
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool, _progress(progress) as bar:
            task = bar.add_task("translating", total=len(jobs))

            def flush(size: tuple[int, ...]) -> None:
                group = waiting.pop(size)
                self._flush(group, pool)
                bar.advance(task, len(group))

            def decode(job: _Job) -> torch.Tensor:
                return load_image(job.src, channels)

            for job, decoded in _ahead(pool, decode, jobs, self.window):
                try:
                    image = decoded.result()
                except ImageDecodeError as error:
                    self.report.failed.append((str(job.src), str(error)))
                    bar.advance(task)
                    continue
                size = tuple(image.shape[-2:])
                waiting.setdefault(size, []).append((job, image))
                if len(waiting[size]) >= self.batch_size:
                    flush(size)
                elif sum(map(len, waiting.values())) >= max_waiting:
                    flush(max(waiting, key=lambda k: len(waiting[k])))
            for size in list(waiting):
                flush(size)
            while self.writes:
                self._settle()
        self.report.written += [path for _, path in sorted(self.written)]

    def _flush(self, group: list[tuple[_Job, torch.Tensor]], pool: ThreadPoolExecutor) -> None:
        out = self.translator.translate_batch(
            torch.stack([image for _, image in group]),
            self.direction,
            tile=self.tile,
            overlap=self.overlap,
            batch_size=self.batch_size,
        )
        for (job, _), image in zip(group, out, strict=True):
            self.writes.append((job, pool.submit(_write_image, image, job.dst)))
        while len(self.writes) > self.window:
            self._settle()

    def _settle(self) -> None:
        job, future = self.writes.popleft()
        try:
            self.written.append((job.index, future.result()))
        except OSError as error:
            self.report.failed.append((str(job.src), f"cannot write {job.dst}: {error}"))


def apply_paths(
    translator: Translator,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    direction: str | None = None,
    batch_size: int = 4,
    overwrite: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    progress: bool = True,
) -> ApplyReport:
    """Translate files, folders (recursively), globs and videos into ``out_dir``.

    Everything that can be wrong with the request (a missing input, an output that would
    overwrite an input, two inputs with one output name, bad tiling, an unknown direction, video
    without PyAV) is an ``I2IError`` before the first image runs. After that, an unreadable file
    is skipped and reported, so one bad file never costs a long run.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise I2IError(f"output folder {out_dir} is a file")
    direction = translator.resolve_direction(direction)
    _check_positive("batch_size", batch_size)
    _check_tiling(tile, overlap)
    report = ApplyReport(out_dir=out_dir)
    todo: list[_Job] = []
    for job in _plan(inputs, out_dir):
        if job.dst.exists() and not overwrite:
            report.skipped_existing.append(job.dst)
        elif job.src.suffix.lower() not in VIDEO_EXTENSIONS and _pil_format(job.dst) is None:
            report.failed.append((str(job.src), f"Pillow cannot write {job.dst.suffix} files"))
        else:
            todo.append(job)
    videos = [job for job in todo if job.src.suffix.lower() in VIDEO_EXTENSIONS]
    images = [job for job in todo if job.src.suffix.lower() not in VIDEO_EXTENSIONS]
    if videos:
        require_av()
    if images:
        _ImageRun(translator, report, direction, batch_size, tile, overlap).run(images, progress)
    for job in videos:
        try:
            translate_video(
                translator, job.src, job.dst, direction, batch_size, tile, overlap, progress
            )
        except ImageDecodeError as error:
            report.failed.append((str(job.src), str(error)))
        else:
            report.written.append(job.dst)
    return report
