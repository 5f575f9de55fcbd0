"""Flicker as a number: the temporal warping error of Lai et al. (ECCV 2018).

For frames V_1..V_T with values in [0, 1]::

    E_warp(V) = 1/(T-1) * sum_t  sum_x M_t(x) |V_t(x) - warp(V_{t-1})(x)|^2 / sum_x M_t(x)

(squared distance over the colour channels). The flow that warps frame t-1 onto frame t and the
mask M_t of pixels that are not occluded both come from the *input* video, so the input and
every translation of it are measured along the same motion and their numbers compare: a steady
translation scores about what its input scores, a flickering one more. Lai et al. used FlowNet2;
this uses OpenCV's DIS flow with a forward-backward consistency check (``i2i.infer.temporal``),
so the values compare with each other, not with the paper's tables.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from i2i.core.errors import I2IError, count, writing
from i2i.core.files import atomic_write_text
from i2i.infer.temporal import Motion, to_gray, warp
from i2i.infer.video import read_frames

__all__ = ["FlickerReport", "video_flicker", "warping_errors"]


@dataclass(frozen=True)
class FlickerReport:
    """Warping errors of a video (``input``) and of its translation (``output``)."""

    input: float
    output: float
    frames: int

    def summary(self) -> str:
        ratio = self.output / self.input if self.input > 0 else float("inf")
        return (
            f"warping error over {self.frames} frames (Lai et al. 2018, lower is steadier): "
            f"input {self.input:.6f}, output {self.output:.6f} ({ratio:.2f}x the input's)"
        )

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def save(self, out_dir: str | Path) -> Path:
        """Write ``flicker.json`` into ``out_dir`` (created if needed), atomically."""
        with writing(out_dir):
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        path = Path(out_dir) / "flicker.json"
        atomic_write_text(path, json.dumps(self.as_dict(), indent=2))
        return path


def _aligned(frame: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``frame`` at the reference's size; a video encoder's one-pixel even padding is cut off."""
    height, width = shape[:2]
    if frame.shape[:2] == (height, width):
        return frame
    extra_h, extra_w = frame.shape[0] - height, frame.shape[1] - width
    if extra_h in (0, 1) and extra_w in (0, 1):
        return frame[:height, :width]
    raise I2IError(
        f"{what} has {frame.shape[1]}x{frame.shape[0]} frames but the input "
        f"{width}x{height}; compare a translation with the input it was made from"
    )


def warping_errors(
    reference: Iterable[np.ndarray],
    *videos: Iterable[np.ndarray],
    names: Sequence[str] = (),
    reference_name: str = "the input",
) -> list[float]:
    """The warping error of ``reference`` and of each of ``videos``, along ``reference``'s flow.

    All are sequences of uint8 (H, W, C) frames of one length; the result lists ``reference``'s
    error first. ``names`` label the videos in errors. Frames stream through, so any length fits.
    """
    labels = [reference_name, *names, *(f"video {i + 1}" for i in range(len(names), len(videos)))]
    totals = np.zeros(1 + len(videos))
    steps = 0
    previous: list[np.ndarray] = []
    previous_gray: np.ndarray | None = None
    for index, frames in enumerate(itertools.zip_longest(reference, *videos)):
        if any(frame is None for frame in frames):
            short = ", ".join(label for label, f in zip(labels, frames, strict=True) if f is None)
            raise I2IError(
                f"{short} ended after {count(index, 'frame')}, before the others; the warping "
                "error compares videos frame by frame, so they need the same number of frames"
            )
        gray = to_gray(frames[0])
        current = [
            _aligned(frame, frames[0].shape, label).astype(np.float32) / 255.0
            for frame, label in zip(frames, labels, strict=True)
        ]
        if previous_gray is not None:
            motion = Motion.between(previous_gray, gray)
            covered = max(int(motion.valid.sum()), 1)
            for index, (now, before) in enumerate(zip(current, previous, strict=True)):
                error = np.sum((now - warp(before, motion.flow)) ** 2, axis=-1)
                totals[index] += float(error[motion.valid].sum()) / covered
            steps += 1
        previous, previous_gray = current, gray
    if steps == 0:
        raise I2IError("the warping error needs videos of at least 2 frames")
    return (totals / steps).tolist()


def video_flicker(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    warn: Callable[[str], None] | None = None,
) -> FlickerReport:
    """Warping errors of the video ``input_path`` and of its translation ``output_path``
    (``warn`` hears of frames scaled to their video's first frame size)."""
    frames = _Counted(read_frames(input_path, warn))
    translated_frames = read_frames(output_path, warn)
    source, translated = warping_errors(
        frames,
        translated_frames,
        names=[f"the output {Path(output_path).name}"],
        reference_name=f"the input {Path(input_path).name}",
    )
    return FlickerReport(input=source, output=translated, frames=frames.count)


class _Counted:
    """An iterable that counts what went through it."""

    def __init__(self, items: Iterable[np.ndarray]) -> None:
        self.items = items
        self.count = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for item in self.items:
            self.count += 1
            yield item
