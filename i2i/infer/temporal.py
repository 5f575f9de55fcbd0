"""Flow-guided temporal blending: steadier video translation from any image model.

A generator translates each frame on its own, so small changes between input frames (sensor
noise, compression, a shifting light) become visible flicker in the output. Here, for each frame
t, the optical flow from frame t back to frame t-1 is estimated on the *input* frames (OpenCV's
DIS flow, fast on CPUs), the previous *output* is warped into frame t, and where that flow is
reliable the current translation ``y_t`` is pulled towards it::

    out_t = y_t + s * m_t * (warp(out_{t-1}) - y_t)

``s`` is the strength in [0, 1] and ``m_t`` in [0, 1] the reliability: 0 where forward-backward
consistency fails (occlusions, disocclusions, pixels that came from outside the frame) and where
the warped input disagrees with the input (cuts, flashes), so new content always shows the
current translation. As ``out_{t-1}`` already holds the earlier frames, this is an exponential
moving average along motion trajectories: where flicker comes from noise that is new in every
frame, the frame-to-frame differences shrink to about ``(1 - s) / sqrt(1 + s)`` of their size,
while a translation that does not change is left as it is. ``s = 0`` returns ``y_t``
exactly. Everything is deterministic: same frames in, same frames out.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from i2i.core.errors import I2IError, InvalidArgumentError

__all__ = [
    "DEFAULT_STRENGTH",
    "Guide",
    "Motion",
    "TemporalBlender",
    "consistent",
    "estimate_flow",
    "opencv_single_threaded",
    "require_cv2",
    "to_gray",
    "warp",
]

# The default strength: flicker down by about 60-90% on the benchmark clips while the output stays
# within ~35 dB PSNR of the per-frame one (benchmarks/README.md, video_flicker.py).
DEFAULT_STRENGTH = 0.7
# Forward-backward consistency (Sundaram et al. 2010, as in Ruder et al. 2016): a pixel is
# consistent when |f_b + f_f|^2 <= ALPHA * (|f_b|^2 + |f_f|^2) + BETA, flows in pixels.
_FB_ALPHA = 0.01
_FB_BETA = 0.5
# Inputs that still differ this much (grey levels of 255, after a 5x5 blur) once warped are not
# the same surface seen again: a cut, a flash or a flow failure.
_PHOTO_TOLERANCE = 20.0
# Flow is estimated at most at this size (longest side) and scaled up: its cost grows with the
# pixels, and blending needs no finer motion than that.
_FLOW_MAX_SIDE = 640
_FLOW_MIN_SIDE = 16


def require_cv2() -> Any:
    """The ``cv2`` module, or a one-line error saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise I2IError(
            "temporal blending and the flicker metric need OpenCV, which is not installed: "
            'pip install "i2i[video]"'
        ) from None
    return cv2


@contextlib.contextmanager
def opencv_single_threaded() -> Iterator[None]:
    """OpenCV without its own thread pool for the duration (restored after).

    Blending parallelises over frames itself, and OpenCV's pool, one thread per core, fights
    PyTorch's for the same cores: on 16 cores that cost the video path over half its speed.
    """
    cv2 = require_cv2()
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def to_gray(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W) luma of a uint8 (H, W, C) frame with 1 or 3 channels."""
    if frame.ndim == 3 and frame.shape[2] == 3:
        cv2 = require_cv2()
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(frame.reshape(frame.shape[0], frame.shape[1]))


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only float32 pixel coordinates (x, y) of an image of this size."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    cv2 = require_cv2()
    source = image.astype(np.float32, copy=False)
    warped = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(image.shape)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` (bilinear, edges replicated), as float32.

    With ``flow`` from ``estimate_flow(frame, reference)`` this moves ``reference`` (or anything
    aligned with it, such as its translation) onto ``frame``.
    """
    xs, ys = _grid(*flow.shape[:2])
    return _remap(image, xs + flow[..., 0], ys + flow[..., 1])


def consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """bool (H, W): where the frame-t pixel comes from inside frame t-1 and both flows agree.

    ``backward`` maps frame t into frame t-1, ``forward`` frame t-1 into frame t. Following a
    pixel back and then forward again should land where it started; where it does not, the
    pixel was occluded or disoccluded, or the flow is wrong.
    """
    height, width = backward.shape[:2]
    xs, ys = _grid(height, width)
    map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    forward_there = _remap(forward, map_x, map_y)
    round_trip = backward + forward_there
    mismatch = np.einsum("hwc,hwc->hw", round_trip, round_trip)
    magnitude = np.einsum("hwc,hwc->hw", backward, backward)
    magnitude += np.einsum("hwc,hwc->hw", forward_there, forward_there)
    return inside & (mismatch <= _FB_ALPHA * magnitude + _FB_BETA)


def estimate_flow(frame: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """float32 (H, W, 2): for each pixel of ``frame``, the (dx, dy) to it in ``reference``.

    Both are uint8 (H, W) grey images of one size. OpenCV's DIS (medium preset), at most
    ``_FLOW_MAX_SIDE`` pixels wide and at least ``_FLOW_MIN_SIDE`` (DIS fails under 12);
    safe to call from several threads at once.
    """
    cv2 = require_cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # ~30 us; not shareable
    height, width = frame.shape
    scale = min(1.0, _FLOW_MAX_SIDE / max(height, width))
    if scale == 1.0 and min(height, width) >= _FLOW_MIN_SIDE:
        return dis.calc(frame, reference, None)
    # DIS needs a few pixels to work on: tiny frames are enlarged to _FLOW_MIN_SIDE.
    size = (max(_FLOW_MIN_SIDE, round(width * scale)), max(_FLOW_MIN_SIDE, round(height * scale)))
    small = dis.calc(
        cv2.resize(frame, size, interpolation=cv2.INTER_AREA),
        cv2.resize(reference, size, interpolation=cv2.INTER_AREA),
        None,
    )
    flow = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= width / size[0]
    flow[..., 1] *= height / size[1]
    return flow


@dataclass(frozen=True)
class Motion:
    """How frame t-1 maps onto frame t: ``flow`` (t to t-1) and where it holds, ``valid``."""

    flow: np.ndarray
    valid: np.ndarray

    @classmethod
    def between(cls, previous: np.ndarray, current: np.ndarray) -> Motion:
        """Flow from grey frame ``current`` back to ``previous``, valid where consistent."""
        backward = estimate_flow(current, previous)
        forward = estimate_flow(previous, current)
        return cls(backward, consistent(backward, forward))


class Guide(NamedTuple):
    """What ``TemporalBlender.blend`` needs for one frame: the flow to the previous frame and
    float32 (H, W, 1) blend weights in [0, 1]."""

    flow: np.ndarray
    weight: np.ndarray


class TemporalBlender:
    """Blends each translated frame with the previous output warped along the input's motion.

    Feed the frames in order, in batches of any size: ``motions`` (input frames only, so it can
    run in a thread while the network translates the same batch) then ``blend``. One blender per
    video.
    """

    def __init__(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise InvalidArgumentError(
                f"temporal strength must be between 0 and 1 (0: per frame), got {strength}"
            )
        self.strength = float(strength)
        self._last_gray: np.ndarray | None = None
        self._last_out: np.ndarray | None = None

    def motions(self, frames: np.ndarray) -> list[Guide | None]:
        """Per input frame (uint8 N, H, W, C) its ``Guide``; None for the video's first frame.

        The frames of a batch are independent here, so they run in parallel threads (OpenCV
        releases the GIL); only ``blend`` has to go in order.
        """
        grays = [to_gray(frame) for frame in frames]
        pairs = list(zip([self._last_gray, *grays[:-1]], grays, strict=True))
        self._last_gray = grays[-1]
        with ThreadPoolExecutor(min(len(pairs), os.cpu_count() or 1)) as pool:
            return list(pool.map(lambda pair: None if pair[0] is None else _guide(*pair), pairs))

    def blend(self, outputs: np.ndarray, motions: list[Guide | None]) -> np.ndarray:
        """uint8 (N, H, W, C) translations, blended in order with what came before."""
        blended = np.empty_like(outputs)
        for index, (output, motion) in enumerate(zip(outputs, motions, strict=True)):
            current = output.astype(np.float32)
            if motion is not None and self._last_out is not None:
                previous = warp(self._last_out, motion.flow)
                current += self.strength * motion.weight * (previous - current)
            self._last_out = current
            blended[index] = np.clip(np.rint(current), 0, 255).astype(np.uint8)
        return blended


def _guide(previous: np.ndarray, current: np.ndarray) -> Guide:
    """The flow from grey ``current`` to ``previous`` and where blending along it is safe."""
    cv2 = require_cv2()
    motion = Motion.between(previous, current)
    smooth = (5, 5)
    seen = warp(cv2.GaussianBlur(previous, smooth, 0), motion.flow)
    same = np.abs(cv2.GaussianBlur(current, smooth, 0).astype(np.float32) - seen)
    reliable = (motion.valid & (same <= _PHOTO_TOLERANCE)).astype(np.float32)
    # Shrink, then soften, the reliable region: no seams where blending starts and stops.
    weight = cv2.GaussianBlur(cv2.erode(reliable, np.ones((3, 3), np.uint8)), smooth, 0)
    return Guide(motion.flow, weight[..., None])
