"""``i2i apply``: translate files, folders, globs and videos into an output folder.

Inputs are decoded ahead in threads while the network runs; outputs mirror the input names,
are written atomically and never replace an input. Under torchrun each process translates its
own share of the inputs into the common output folder, and outputs that exist already are kept,
so a job that was stopped resumes where it was (and removes the temp files of a killed one).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

from i2i.core.errors import (
    I2IError,
    ImageDecodeError,
    InputSizeError,
    count,
    first_of,
    one_line,
    writing,
)
from i2i.core.files import remove_killed_writes
from i2i.core.progress import progress_bar
from i2i.core.ranks import Ranks, sum_over_ranks
from i2i.data import decode_image, image_format, image_header, save_image
from i2i.data.images import to_tensor
from i2i.infer.plan import Job, plan
from i2i.infer.temporal import require_cv2
from i2i.infer.translator import Translator, check_tiling
from i2i.infer.video import VIDEO_EXTENSIONS, VideoOptions, require_av, translate_video

__all__ = ["ApplyReport", "ApplyStopped", "apply_paths", "job_counts"]

T = TypeVar("T")


# -- files ---------------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    """What ``apply_paths`` did. ``failed`` holds (input, reason) for inputs it could not
    translate (unreadable, too big without tiles); ``notes`` what the user should know about a
    result (an animated image gave its first frame)."""

    written: list[Path] = field(default_factory=list)
    skipped_existing: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    out_dir: Path | None = None
    ranks: Ranks = field(default_factory=Ranks)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        where = f" to {self.out_dir}" if self.out_dir is not None else ""
        parts = [f"Wrote {count(len(self.written), 'file')}{where}"]
        if self.skipped_existing:
            parts.append(
                f"kept {count(len(self.skipped_existing), 'existing output')} "
                "(pass --overwrite to replace them)"
            )
        if self.failed:
            shown = "; ".join(reason for _, reason in self.failed[:3])
            more = f"; and {len(self.failed) - 3} more" if len(self.failed) > 3 else ""
            parts.append(f"skipped {count(len(self.failed), 'input')}: {shown}{more}")
        parts += self.notes[:3]
        return self.ranks.prefix + "; ".join(parts) + "."


def job_counts(report: ApplyReport) -> tuple[int, int, int]:
    """Outputs written, existing outputs kept and inputs failed by the whole torchrun job.

    Every process must call it: it sums their reports, and returns once the slowest is done.
    """
    counts = [len(report.written), len(report.skipped_existing), len(report.failed)]
    written, kept, failed = sum_over_ranks(report.ranks, counts)
    return written, kept, failed


def _reason(job: Job, error: Exception) -> str:
    """Why an input was skipped, naming it (a decoding error names it already)."""
    return str(error) if isinstance(error, ImageDecodeError) else f"{job.src.name}: {error}"


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[Job], T], jobs: Iterable[Job], window: int
) -> Iterator[tuple[Job, Future[T]]]:
    """``fn`` on the jobs in the pool, at most ``window`` ahead of the consumer, in order."""
    queue: deque[tuple[Job, Future[T]]] = deque()
    for job in jobs:
        queue.append((job, pool.submit(fn, job)))
        if len(queue) >= window:
            yield queue.popleft()
    yield from queue


class _ImageRun:
    """The image half of ``apply_paths``: decode ahead, batch by size, write behind."""

    def __init__(
        self,
        translator: Translator,
        report: ApplyReport,
        direction: str,
        tile: int | None,
        overlap: int,
        prefix: str,
    ) -> None:
        self.translator = translator
        self.report = report
        self.direction = direction
        self.batch_size = batch_size = translator.batch_size
        self.tile = tile
        self.overlap = overlap
        self.prefix = prefix
        # Decoding runs this far ahead and writing this far behind, which bounds the memory.
        self.window = 2 * batch_size
        self.written: list[tuple[int, Path]] = []
        self.writes: deque[tuple[Job, Future[Path]]] = deque()
        self.transparent: list[str] = []  # names of inputs flattened onto white
        # Inputs this many times the model's training scale, or more, are worth a note on
        # --scale model (none is given where the model records no scale, or one is chosen).
        self.big_from: int | None = None
        if translator.scale is None and translator.training_scale is not None:
            self.big_from = _BIG * translator.training_scale
        self.big: list[str] = []

    def run(self, jobs: list[Job], progress: bool) -> None:
        try:
            self._translate(jobs, progress)
        finally:  # also after Ctrl-C, when the pool has finished the writes it had: all whole
            self.written += [
                (job.index, future.result())
                for job, future in self.writes
                if future.done() and not future.cancelled() and future.exception() is None
            ]
            self.report.written += [path for _, path in sorted(self.written)]
        if self.transparent:
            self.report.notes.append(
                f"{first_of(sorted(self.transparent))} had transparency: translated on white, "
                f"written without it"
            )
        if self.big:
            scale = self.translator.training_scale
            self.report.notes.append(
                f"{first_of(sorted(self.big))}: {_BIG}x or more the {scale} px the model was "
                f"trained at; --scale model translates at that scale, keeping the detail, with "
                f"textures at the size it learned them and in a fraction of the time"
            )

    def _translate(self, jobs: list[Job], progress: bool) -> None:
        channels = self.translator.input_channels(self.direction)
        # Same-size images wait for each other to fill a batch, but never more than this many.
        max_waiting = 4 * self.batch_size
        waiting: dict[tuple[int, ...], list[tuple[Job, torch.Tensor]]] = {}
        with (
            ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool,
            progress_bar(progress, prefix=self.prefix) as bar,
        ):
            task = bar.add_task("translating", total=len(jobs))

            def flush(size: tuple[int, ...]) -> None:
                group = waiting.pop(size)
                self._flush(group, pool)
                bar.advance(task, len(group))

            def decode(job: Job) -> torch.Tensor:
                width, height, animated = image_header(job.src)  # before decoding
                self.translator.check_size(height, width, self.tile)
                if animated:
                    self.report.notes.append(
                        f"{job.src.name} is animated; only its first frame was translated "
                        f"(make it a video to translate them all)"
                    )
                if self.big_from is not None and min(width, height) >= self.big_from:
                    self.big.append(job.src.name)
                image = decode_image(job.src)
                if image.info.get("flattened"):
                    self.transparent.append(job.src.name)
                return to_tensor(image, channels)

            for job, decoded in _ahead(pool, decode, jobs, self.window):
                try:
                    image = decoded.result()
                except (ImageDecodeError, InputSizeError) as error:
                    self.report.failed.append((str(job.src), _reason(job, error)))
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

    def _flush(self, group: list[tuple[Job, torch.Tensor]], pool: ThreadPoolExecutor) -> None:
        out = self.translator.translate_batch(
            torch.stack([image for _, image in group]),
            self.direction,
            tile=self.tile,
            overlap=self.overlap,
            batch_size=self.batch_size,
        )
        for (job, _), image in zip(group, out, strict=True):
            self.writes.append((job, pool.submit(save_image, image, job.dst)))
        while len(self.writes) > self.window:
            self._settle()

    def _settle(self) -> None:
        """Wait for the oldest write. One that fails for every file (a full disk, a read-only
        folder) stops the run: the outputs written so far are whole, and the next ones would
        fail the same way. One that fails for this file alone (a format that cannot hold its
        mode, a folder in the way) skips it and is reported, as an unreadable input is."""
        job, future = self.writes[0]  # taken off once settled: a Ctrl-C here still counts it
        future.exception()  # wait
        self.writes.popleft()
        with writing(job.dst, "choose another -o"):
            try:
                self.written.append((job.index, future.result()))
            except (OSError, ValueError, KeyError) as error:
                if isinstance(error, OSError) and error.errno in _EVERY_FILE:
                    raise
                reason = getattr(error, "strerror", None) or one_line(error)
                self.report.failed.append((str(job.src), f"cannot write {job.dst}: {reason}"))


# How many times the training scale an input's shorter side is for the note on --scale model.
_BIG = 3


# Write failures that no other file in the same folder would escape.
_EVERY_FILE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _is_video(job: Job) -> bool:
    return job.src.suffix.lower() in VIDEO_EXTENSIONS


def _videos_need(jobs: list[Job], video: VideoOptions) -> str | None:
    """Why the videos among ``jobs`` cannot be translated here (no PyAV), or None.

    Decided on the whole plan, before it is shared out and before finished outputs are set
    aside, so that every process of a job and every rerun decide alike. Videos alone stop with
    the install line; videos among images are skipped and listed, so the images still run.
    """
    videos = sum(1 for job in jobs if _is_video(job))
    if not videos:
        return None
    try:
        require_av()
    except I2IError as missing:
        if videos == len(jobs):
            raise
        return str(missing)
    if video.temporal is not None:
        require_cv2()
    return None


class ApplyStopped(KeyboardInterrupt):
    """Ctrl-C during ``apply_paths``: still an interrupt, carrying what was done, so that the
    CLI can say how far the job got and how to go on."""

    def __init__(self, report: ApplyReport, todo: int, failed_before: int) -> None:
        super().__init__()
        self.report, self.todo, self.failed_before = report, todo, failed_before

    def summary(self) -> str:
        report = self.report
        done = len(report.written) + len(report.failed) - self.failed_before
        where = f" to {report.out_dir}" if report.out_dir is not None else ""
        return (
            f"{report.ranks.prefix}Stopped: wrote {count(len(report.written), 'file')}{where}, "
            f"each whole; {self.todo - done} of {self.todo} not done. Run the same command "
            f"again to translate them (outputs that exist are kept)."
        )


def apply_paths(
    translator: Translator,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    direction: str | None = None,
    *,
    overwrite: bool = False,
    tile: int | None = None,
    overlap: int = 32,
    progress: bool = True,
    video: VideoOptions | None = None,
    ranks: Ranks | None = None,
) -> ApplyReport:
    """Translate files, folders (recursively), globs and videos into ``out_dir``.

    ``video`` says how videos are cut, encoded and steadied (images ignore it); the translator's
    ``batch_size`` says how many images or tiles run at once. Outputs that exist are kept (and listed as such) unless
    ``overwrite``; since every output is written to a temp file and renamed into place, one that
    exists is whole, and a rerun of a stopped job translates only what is missing.

    ``ranks`` (default: from torchrun's environment) makes this process translate only its
    share, every ``world_size``-th input of the full sorted list, so the processes of a job
    cover every input once between them; the report is of that share. The share is taken from
    the full list, not from what is missing, so processes that look at the folder at different
    moments still agree on it.

    Everything that can be wrong with the request (a missing input, an output that would
    overwrite an input, two inputs with one output name, bad tiling or video options, an unknown
    direction, only videos and no PyAV, temporal blending without OpenCV) is an ``I2IError`` before
    the first image runs, and so is an output folder that cannot be written. After that, an
    unreadable file (or one too big without ``tile``) is skipped and reported, so one bad file
    never costs a long run; an output that cannot be written (a full disk) stops the run with
    a ``WriteError``, leaving only whole files.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise I2IError(f"output folder {out_dir} is a file")
    direction = translator.resolve_direction(direction)
    check_tiling(tile, overlap)
    video = video or VideoOptions()
    video.check()
    ranks = Ranks.from_env() if ranks is None else ranks
    report = ApplyReport(out_dir=out_dir, ranks=ranks)
    todo: list[Job] = []
    # Every process plans (and checks) the whole request, then keeps its share.
    jobs, left_out = plan(inputs, out_dir)
    if left_out and ranks.rank == 0:  # one note for the job, not one per process
        report.notes.append(left_out)
    no_pyav = _videos_need(jobs, video)
    share = ranks.shard(jobs)
    remove_killed_writes(job.dst for job in share)  # what a killed job left (SIGKILL, OOM)
    for job in share:
        if job.dst.is_dir():
            report.failed.append(
                (str(job.src), f"a folder is in the way of its output {job.dst}; move it away")
            )
        elif job.dst.exists() and not overwrite:
            report.skipped_existing.append(job.dst)
        elif _is_video(job) and no_pyav:
            report.failed.append((str(job.src), f"{job.src.name}: {no_pyav}"))
        elif not _is_video(job) and image_format(job.dst) is None:
            why = (
                f"Pillow cannot write {job.dst.suffix} files"
                if job.dst.suffix
                else "it has no extension to choose an image format by (.png, .jpg)"
            )
            report.failed.append((str(job.src), why))
        else:
            todo.append(job)
    videos = [job for job in todo if _is_video(job)]
    images = [job for job in todo if not _is_video(job)]
    if not any(_is_video(job) for job in jobs) and video != VideoOptions():
        report.notes.append(
            "the video options (--start, --end, --quality, --temporal) apply to "
            "videos only, and there is none among the inputs"
        )
    if todo:
        with writing(out_dir, "choose another -o"):  # a read-only -o fails now, not per file
            out_dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=out_dir).close()
    failed_before = len(report.failed)  # inputs refused before any was translated
    try:
        if images:
            run = _ImageRun(translator, report, direction, tile, overlap, ranks.prefix)
            run.run(images, progress)
        for job in videos:
            try:
                translate_video(
                    translator, job.src, job.dst, direction, tile=tile, overlap=overlap,
                    progress=progress, options=video, warn=report.notes.append,
                    progress_prefix=ranks.prefix,
                )  # fmt: skip
            except (ImageDecodeError, InputSizeError) as error:
                report.failed.append((str(job.src), _reason(job, error)))
            else:
                report.written.append(job.dst)
    except KeyboardInterrupt:
        raise ApplyStopped(report, len(todo), failed_before) from None
    return report
