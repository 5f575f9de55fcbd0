"""The training images as the loop takes them: the dataset, its epoch order, its loaders, the
held-out images of samples and eval, and what to do about unreadable files.

The data order is a pure function of (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from i2i.core.errors import DataError, I2IWarning, ImageDecodeError, count
from i2i.data import EpochSampler, UnalignedDataset, collate, to_float
from i2i.data.images import image_header
from i2i.kit.task import Task
from i2i.train.augmentation import BatchAugmentation
from i2i.train.runtime import Runtime


def default_workers(device: torch.device) -> int:
    """Decoding in worker processes pays on GPUs; on the CPU they steal the cores the networks
    need (a JPEG decodes in milliseconds, a CPU training step takes far longer)."""
    if device.type == "cpu":
        return 0
    return min(4, max(0, (os.cpu_count() or 1) - 1))


class DataFeed:
    def __init__(
        self,
        task: Task,
        runtime: Runtime,
        augment: BatchAugmentation,
        *,
        batch_size: int,
        seed: int,
    ) -> None:
        self.task, self.runtime, self.augment = task, runtime, augment
        self.batch_size, self.seed = batch_size, seed
        self.dataset = self._decoded_for_training(task.dataset("train"))
        if len(self.dataset) == 0:
            raise DataError(f"no training images in {task.data_root}")
        if isinstance(self.dataset, UnalignedDataset):  # (aligned partners are sized as pairs)
            if augment.crops:
                _warn_about_odd_images(self.dataset.files(), augment.decode_size)
            else:
                _check_one_size(self.dataset.files())
        self.sampler = EpochSampler(
            len(self.dataset),
            seed=seed,
            shuffle=True,
            rank=runtime.rank,
            world_size=runtime.world_size,
        )
        self.steps_per_epoch = math.ceil(self.sampler.shard_size / batch_size)
        self.skipped: dict[str, str] = {}
        self.samples_from: str | None = None  # set by held_out_batch
        self._last_good: dict[str, Any] | None = None

    def loader(self, epoch: int, start: int, workers: int) -> torch.utils.data.DataLoader:
        """The batches of ``epoch`` from its ``start``-th image of this rank's shard on."""
        self.sampler.set_epoch(epoch, start=start)
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.runtime.device.type == "cuda",
            # Worker seeds come from this generator, never from the global RNG that resume
            # restores, so creating a loader mid-epoch does not shift any random stream.
            generator=torch.Generator().manual_seed(self.seed + epoch),
            prefetch_factor=4 if workers else None,
        )

    def to_device(self, raw: dict[str, Any]) -> dict[str, torch.Tensor]:
        """A decoded batch as floats on the device."""
        return {k: to_float(self.runtime.to_device(raw[k])) for k in ("A", "B")}

    def first_readable_item(self) -> dict[str, Any]:
        """The first item whose images decode (at most one pass over the data, and only as far
        as the first good item): a domain whose every file is unreadable cannot be trained."""
        readable = {"A": False, "B": False}
        reasons: list[tuple[str, str]] = []
        for index in range(len(self.dataset)):
            item = self.dataset[index]
            if item["A"] is not None and item["B"] is not None:
                return item
            reasons += item.get("skipped", [])
            for key in readable:
                readable[key] |= item[key] is not None
        missing = [k for k, ok in readable.items() if not ok] or ["A", "B"]
        example = f" (e.g. {reasons[0][0]}: {reasons[0][1]})" if reasons else ""
        raise DataError(
            f"no readable image in domain {' or '.join(missing)} of {self.task.data_root}: "
            f"none could be used{example}; replace or remove those files"
        )

    def _decoded_for_training(self, dataset: Any) -> Any:
        """i2i's unpaired folders decode big photos no bigger than the training resizes them to
        (aligned pairs and a third party's dataset decode as they do)."""
        if isinstance(dataset, UnalignedDataset):
            dataset.min_side = self.augment.decode_size
        return dataset

    def held_out(self, raw: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Decoded held-out images to floats on the device, at the training size."""
        return self.augment.held_out(self.to_device(raw))

    def held_out_batch(self, n: int) -> dict[str, torch.Tensor]:
        """The same few images for every sample grid and eval: held-out ones when there are
        (``samples_from`` says which it took: "test" or "train")."""
        try:
            dataset = self._decoded_for_training(self.task.dataset("test"))
            self.samples_from = "test"
        except DataError as error:
            dataset, self.samples_from = self.dataset, "train"
            root = self.task.data_root
            if root is not None and any((root / n).exists() for n in ("test", "testA", "testB")):
                warnings.warn(  # a test split meant but unusable: say why the grids are not of it
                    f"the test split is not used ({error}); sample grids show training images",
                    I2IWarning,
                    stacklevel=2,
                )
        n = min(n, len(dataset))
        batch = collate([self.task.held_out_item(dataset, i) for i in range(n)])
        return {} if batch["A"] is None else self.held_out(batch)

    def usable(self, raw: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
        """``raw`` with its unreadable files noted. Under DDP every rank must step (gradients are
        synchronised), so a batch whose images were all unreadable is replaced by this rank's
        previous good batch, or before its first by the data's first readable item."""
        for path, reason in raw.get("skipped", []):
            if path not in self.skipped:
                self.skipped[path] = reason
                say(f"warning: skipping an unreadable file: {reason}")  # the reason names it
        if raw["A"] is not None:
            self._last_good = raw
        elif self.runtime.distributed:
            if self._last_good is None:
                self._last_good = collate([self.first_readable_item()])
            raw = self._last_good
        return raw


# An image smaller than a quarter of the load size on a side is blown up into a blur, and one
# over four times as long as it is wide is squashed or cut to a sliver: neither shows the look.
_BLOWN_UP = 4
_ELONGATED = 4
_LOOKED_AT = 1000  # headers read, spread over the folder: a few milliseconds, even for 100k


def _warn_about_odd_images(files: list[Path], load_size: int) -> None:
    """Say when a folder holds thumbnails, icons or banners (a scraped data set often does),
    which train without an error but teach blur and stretched shapes; from the headers of an
    even spread of the files, before training."""
    looked_at = files[:: max(1, math.ceil(len(files) / _LOOKED_AT))]
    small: list[tuple[Path, int, int]] = []
    elongated: list[tuple[Path, int, int]] = []
    for path in looked_at:
        try:
            width, height, _ = image_header(path)
        except ImageDecodeError:
            continue  # skipped with its reason when training reads it
        if min(width, height) * _BLOWN_UP < load_size:
            small.append((path, width, height))
        elif max(width, height) > _ELONGATED * min(width, height):
            elongated.append((path, width, height))
    of = "" if len(looked_at) == len(files) else f" of the {len(looked_at)} looked at"
    for found, verbs, what, advice in (
        (small, ("is", "are"), f"under {math.ceil(load_size / _BLOWN_UP)} px on a side, which "
         f"--load-size {load_size} blows up into a blur", "remove them, or train at a smaller "
         "--load-size"),
        (elongated, ("has", "have"), f"one side over {_ELONGATED} times the other, which "
         "resizing squashes or cuts to a sliver", "crop them, or remove them"),
    ):  # fmt: skip
        if found:
            path, width, height = found[0]
            warnings.warn(
                f"{count(len(found), 'training image')}{of} {verbs[len(found) > 1]} {what} "
                f"(e.g. {path}, {width}x{height}); {advice}",
                I2IWarning,
                stacklevel=3,
            )


def _check_one_size(files: list[Path]) -> None:
    """With --preprocess none every image keeps its size, and a step sets A and B images side by
    side (and stacks a batch): all must have one size. Told before training, from the files'
    headers, naming two that differ, not at the step that first meets them."""
    first: tuple[Path, tuple[int, int]] | None = None
    for path in files:
        try:
            size = image_header(path)[:2]
        except ImageDecodeError:
            continue  # skipped with its reason when training reads it
        if first is None:
            first = (path, size)
        elif size != first[1]:
            raise DataError(
                f"--preprocess none keeps each image's size, so all must have one: {first[0]} "
                f"is {first[1][0]}x{first[1][1]} but {path} is {size[0]}x{size[1]}; resize "
                f"them to one size, or use --preprocess resize_crop (the default)"
            )
