"""Video translation through PyAV (the optional extra ``i2i[video]``).

Frames are decoded, translated in batches exactly as images are (on the GPU when there is one),
optionally blended along the input's optical flow for a steadier result (``i2i.infer.temporal``),
and encoded into the same container. The output keeps the input's frame rate (as a constant
rate), size, display matrix (rotation and flips) and audio tracks, which are copied packet for
packet, not re-encoded. ``VideoOptions`` cuts a time range, sets the encoder quality and turns
on temporal blending.

The encoder is the input's codec when the container takes it and this FFmpeg build can write it,
else the container's usual codec (H.264, then MPEG-4 Part 2 for .mp4). 4:2:0 chroma needs even
sizes, so an odd width or height gains one replicated edge row or column. Subtitle and data
streams are not copied. A cut starts audio at the first packet at or after ``start``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from i2i.core.errors import (
    I2IError,
    ImageDecodeError,
    InputSizeError,
    InvalidArgumentError,
    WriteError,
    writing,
)
from i2i.core.files import temp_sibling
from i2i.core.progress import progress_bar

if TYPE_CHECKING:
    from i2i.infer.translator import Translator

__all__ = [
    "VIDEO_EXTENSIONS",
    "VideoOptions",
    "parse_time",
    "read_frames",
    "require_av",
    "translate_video",
]

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"})

# Encoders each container commonly holds, best first; names are FFmpeg's codec names.
_CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("h264", "mpeg4"),
    ".m4v": ("h264", "mpeg4"),
    ".mov": ("h264", "mpeg4", "mjpeg"),
    ".mkv": ("h264", "mpeg4", "libvpx-vp9", "libvpx"),
    ".avi": ("mpeg4", "mjpeg", "h264"),
    ".webm": ("libvpx-vp9", "libvpx"),
}
_FALLBACK_RATE = Fraction(25)
# Encoders without a constant-quality mode here get a bit rate: this many bits per pixel at the
# default quality (~19 Mbit/s at 1080p30), halved every 6 quality steps as H.264's CRF does.
_BITS_PER_PIXEL = 0.3
_QUALITY_RANGE = (0, 51)


@dataclass(frozen=True)
class VideoOptions:
    """How a video is cut, encoded and steadied.

    ``start`` / ``end``: seconds from the start of the video (None: its start / end).
    ``quality``: H.264's constant rate factor, 0 (lossless) to 51 (worst), 18 looks like the
    input; other encoders get the equivalent (VP9's scale, or a bit rate).
    ``temporal``: the strength of flow-guided blending in [0, 1], None to translate each frame
    on its own (0 runs the blending and gives exactly the per-frame result).
    """

    start: float | None = None
    end: float | None = None
    quality: int = 18
    temporal: float | None = None

    def check(self) -> None:
        """One-line errors for values that cannot work, before any video is opened."""
        if self.start is not None and self.start < 0:
            raise InvalidArgumentError(f"start must be 0 or more seconds, got {self.start}")
        if self.end is not None and self.end <= (self.start or 0):
            raise InvalidArgumentError(
                f"end ({self.end} s) must be after start ({self.start or 0} s)"
            )
        low, high = _QUALITY_RANGE
        if isinstance(self.quality, bool) or not isinstance(self.quality, int):
            raise InvalidArgumentError(f"quality must be an integer, got {self.quality!r}")
        if not low <= self.quality <= high:
            raise InvalidArgumentError(
                f"quality must be between {low} (best) and {high} (smallest), got {self.quality}"
            )
        if self.temporal is not None and not 0.0 <= self.temporal <= 1.0:
            raise InvalidArgumentError(
                f"temporal strength must be between 0 and 1 (0: per frame), got {self.temporal}"
            )


_TIME = re.compile(r"^(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)$")


def parse_time(text: str) -> float:
    """Seconds from ``SECONDS``, ``MM:SS`` or ``HH:MM:SS`` (fractions of a second allowed)."""
    match = _TIME.match(text.strip())
    if match is None:
        raise InvalidArgumentError(
            f"{text!r} is not a time; use seconds (12.5), MM:SS (1:05) or HH:MM:SS (0:01:05)"
        )
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def require_av() -> Any:
    """The ``av`` module, or a one-line error saying how to install it."""
    try:
        import av
    except ImportError:
        raise I2IError(
            'video needs PyAV, which is not installed: pip install "i2i[video]"'
        ) from None
    return av


def _open_input(av: Any, src: Path) -> tuple[Any, Any]:
    """The container and its first video stream, whose frames may not claim more pixels than
    an image may (``Image.MAX_IMAGE_PIXELS``): FFmpeg refuses bigger ones before allocating."""
    if not src.is_file():  # a FIFO or a device would block or never end
        raise ImageDecodeError(f"cannot read video {src}: it is not a regular file")
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError) as error:
        raise ImageDecodeError(f"cannot read video {src}: {error}") from None
    if not container.streams.video:
        container.close()
        raise ImageDecodeError(f"cannot read video {src}: it has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    limit = Image.MAX_IMAGE_PIXELS  # no more than an image may claim (None: no limit)
    if limit and width * height > limit:
        container.close()
        raise ImageDecodeError(
            f"cannot read video {src}: its frames claim {width}x{height} pixels, more than "
            f"{limit / 1e6:.0f} megapixels"
        )
    if limit:
        stream.codec_context.options = {"max_pixels": str(limit)}
    stream.thread_type = "AUTO"
    return container, stream


class _OneSize:
    """Frames at the first frame's size: a stream that changes size mid-way (allowed by some
    codecs) is scaled to it, with one note, since the output video has one size."""

    def __init__(self, src: Path, warn: Callable[[str], None] | None) -> None:
        self.src, self.warn = src, warn
        self.size: tuple[int, int] | None = None

    def __call__(self, frame: Any) -> Any:
        size = (frame.width, frame.height)
        if self.size is None:
            self.size = size
        elif size != self.size:
            if self.warn is not None:
                self.warn(
                    f"{self.src.name} changes its frame size from {self.size[0]}x{self.size[1]} "
                    f"to {size[0]}x{size[1]}; such frames were scaled to the first size"
                )
                self.warn = None  # once per video
            frame = frame.reformat(width=self.size[0], height=self.size[1])
        return frame


def read_frames(
    src: str | os.PathLike[str], warn: Callable[[str], None] | None = None
) -> Iterator[np.ndarray]:
    """Every frame of the first video stream of ``src``, as uint8 (H, W, 3) RGB, as stored
    (rotation metadata is not applied), all at the first frame's size (``warn`` says when
    some are scaled to it)."""
    av = require_av()
    container, stream = _open_input(av, Path(src))
    one_size = _OneSize(Path(src), warn)
    with container:
        try:
            for frame in container.decode(stream):
                yield one_size(frame).to_ndarray(format="rgb24")
        except av.FFmpegError as error:
            raise ImageDecodeError(f"cannot read video {src}: {error}") from None


def _add_encoder(
    av: Any,
    container: Any,
    suffix: str,
    source_codec: str,
    rate: Fraction,
    size: tuple[int, int],
    quality: int,
) -> Any:
    """A video stream with the first codec that this FFmpeg can write into this container."""
    candidates = _CODECS.get(suffix, ("h264", "mpeg4"))
    if source_codec in candidates:
        candidates = (source_codec, *(c for c in candidates if c != source_codec))
    for name in candidates:
        try:
            codec = av.Codec(name, "w")
            stream = container.add_stream(codec.name, rate=rate)
        except (ValueError, av.FFmpegError):
            continue
        formats = [f.name for f in codec.video_formats or ()]
        stream.width, stream.height = size
        # MJPEG takes only full-range ("j") YUV unless told to bend the standard.
        preferred = ("yuvj420p", "yuv420p") if codec.name == "mjpeg" else ("yuv420p", "yuvj420p")
        stream.pix_fmt = next(
            (f for f in preferred if f in formats), formats[0] if formats else "yuv420p"
        )
        if codec.name == "libx264":
            stream.options = {"crf": str(quality)}
        elif codec.name == "libvpx-vp9":
            stream.options = {"crf": str(round(quality * 63 / _QUALITY_RANGE[1])), "b": "0"}
        else:
            bits = size[0] * size[1] * rate * _BITS_PER_PIXEL * 2 ** ((18 - quality) / 6)
            stream.bit_rate = max(200_000, int(bits))
        return stream
    raise I2IError(
        f"this FFmpeg build has no encoder for {suffix} video (tried {', '.join(candidates)})"
    )


def _even(frames: np.ndarray) -> np.ndarray:
    """Replicate the last row / column where a side is odd, as 4:2:0 chroma needs."""
    _, height, width, _ = frames.shape
    if height % 2 == 0 and width % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _display_matrix(frame: Any) -> list[int] | None:
    """The frame's display matrix (rotation, flips) as 9 ints, or None when it has none."""
    side = frame.side_data.get("DISPLAYMATRIX")
    return None if side is None else np.frombuffer(bytes(side), "<i4").tolist()


class _Output:
    """The output container: audio streams copied from the input, the video encoder made from
    the first frame (its size and display matrix), frames and packets in order."""

    def __init__(
        self,
        av: Any,
        path: Path,
        audio: list[Any],
        rate: Fraction,
        options: VideoOptions,
        target: Path,
    ) -> None:
        self.av = av
        self.path = path
        self.target = target  # what ``path`` becomes, for messages
        self.rate = rate
        self.options = options
        with self.writing():
            self.container = av.open(str(path), "w")
        self.encoder: Any = None
        self.next_pts = 0
        self.count = 0
        self._waiting_audio: list[Any] = []
        try:
            self.audio = {s.index: self.container.add_stream_from_template(s) for s in audio}
        except (ValueError, av.FFmpegError) as error:
            self.container.close()
            names = ", ".join(s.codec_context.name for s in audio)
            raise I2IError(
                f"cannot copy the {names} audio into a {path.suffix} file ({error}); write "
                "to a container that holds it, such as the input's own"
            ) from None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Encoder and muxer failures (a full disk, an encoder that refuses its settings) are
        failures to write the output, said as such."""
        try:
            with writing(self.target):
                yield
        except self.av.FFmpegError as error:
            raise WriteError(f"cannot write {self.target}: {error}") from error

    def start(self, frame: Any, source_codec: str, first_pts: int) -> None:
        """Make the encoder for frames like ``frame`` (once), then write the waiting audio."""
        if self.encoder is not None:
            return
        size = (frame.width + frame.width % 2, frame.height + frame.height % 2)
        self.encoder = _add_encoder(
            self.av,
            self.container,
            self.path.suffix.lower(),
            source_codec,
            self.rate,
            size,
            self.options.quality,
        )
        matrix = _display_matrix(frame)
        if matrix is not None:
            self.encoder.set_display_matrix(matrix)
        self.next_pts = max(0, first_pts)
        with self.writing():
            for packet in self._waiting_audio:
                self.container.mux(packet)
        self._waiting_audio = []

    def audio_packet(self, packet: Any, origin: float) -> None:
        """Copy ``packet``, moved ``origin`` seconds earlier, as the video frames are."""
        shift = round(origin / packet.time_base) if packet.time_base else 0
        if shift:
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
        packet.stream = self.audio[packet.stream.index]
        if self.encoder is None:
            self._waiting_audio.append(packet)
        else:
            with self.writing():
                self.container.mux(packet)

    def frames(self, pixels: np.ndarray) -> None:
        """uint8 (N, H, W, C) frames, encoded at consecutive timestamps."""
        for image in _even(pixels):
            if image.shape[2] == 1:
                frame = self.av.VideoFrame.from_ndarray(image[:, :, 0], format="gray")
            else:
                frame = self.av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = self.next_pts
            with self.writing():
                self.container.mux(self.encoder.encode(frame))
            self.next_pts += 1
            self.count += 1

    def finish(self) -> None:
        with self.writing():
            self.container.mux(self.encoder.encode(None))
            self.container.close()


def _seconds(value: Any, time_base: Fraction | None) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def _read(
    av: Any, container: Any, video: Any, audio: list[Any], options: VideoOptions
) -> Iterator[Any]:
    """Decoded video frames and audio packets between ``options.start`` and ``options.end``."""
    start, end = options.start, options.end
    if start:
        container.seek(int(start * av.time_base), backward=True)
    video_done = False
    audio_done = {s.index: False for s in audio}
    for packet in container.demux(video, *audio):
        if packet.dts is None and packet.stream.type == "audio":
            continue  # a demuxer flush packet
        if packet.stream.type == "audio":
            time = _seconds(packet.pts, packet.time_base)
            if time is not None and end is not None and time >= end:
                audio_done[packet.stream.index] = True
            elif time is None or start is None or time >= start:
                yield packet
        elif not video_done:
            for frame in packet.decode():
                time = frame.time
                if time is not None and end is not None and time >= end:
                    video_done = True
                    break
                if time is None or start is None or time >= start:
                    yield frame
        if video_done and all(audio_done.values()):
            return


def translate_video(
    translator: Translator,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    direction: str | None = None,
    *,
    tile: int | None = None,
    overlap: int = 32,
    progress: bool = True,
    options: VideoOptions | None = None,
    warn: Callable[[str], None] | None = None,
    progress_prefix: str = "",
) -> int:
    """Translate the frames of ``src`` (all, or ``options``' cut) into ``dst``; the frame count.

    ``dst`` is written to a temp file beside it and renamed into place, so it is never half a
    video. An unreadable ``src`` is an ``ImageDecodeError``, as an unreadable image is; frames
    over the translator's ``untiled_max_pixels`` without ``tile`` an ``InputSizeError``; an
    output that cannot be written (a full disk) a ``WriteError``. ``warn`` hears of frames
    scaled to the first frame's size, and of odd sides made even. ``progress_prefix``
    (``"rank 1/4: "``) turns the bar into lines for one of several processes.
    """
    av = require_av()
    options = options or VideoOptions()
    options.check()
    src, dst = Path(src), Path(dst)
    direction = translator.resolve_direction(direction)
    channels = translator.input_channels(direction)
    batch_size = translator.batch_size
    blender = None
    threads: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if options.temporal is not None:
        from i2i.infer.temporal import TemporalBlender, opencv_single_threaded

        blender = TemporalBlender(options.temporal)
        threads = opencv_single_threaded()
    container, stream = _open_input(av, src)
    try:
        translator.check_size(stream.codec_context.height, stream.codec_context.width, tile)
    except InputSizeError:
        container.close()
        raise
    width, height = stream.codec_context.width, stream.codec_context.height
    one_size = _OneSize(src, warn)
    audio = list(container.streams.audio)
    rate = stream.average_rate or stream.guessed_rate or _FALLBACK_RATE
    origin = options.start if options.start is not None else (container.start_time or 0) / 1e6
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(dst)
    try:
        with (
            container,
            threads,
            ThreadPoolExecutor(1) as pool,
            progress_bar(progress, prefix=progress_prefix) as bar,
        ):
            task = bar.add_task(
                f"translating {src.name}", total=_expected_frames(container, stream, options)
            )
            output = _Output(av, tmp, audio, rate, options, dst)

            def translate(frames: list[np.ndarray]) -> None:
                batch = np.stack(frames)
                guides = pool.submit(blender.motions, batch) if blender else None
                out = translator.translate_batch(
                    torch.from_numpy(batch).permute(0, 3, 1, 2),
                    direction,
                    tile=tile,
                    overlap=overlap,
                    batch_size=batch_size,
                )
                pixels = out.permute(0, 2, 3, 1).numpy()
                if blender is not None and guides is not None:
                    pixels = blender.blend(pixels, guides.result())
                output.frames(pixels)
                bar.advance(task, len(frames))

            try:
                pending: list[np.ndarray] = []
                for item in _read(av, container, stream, audio, options):
                    if isinstance(item, av.Packet):
                        output.audio_packet(item, origin)
                        continue
                    item = one_size(item)
                    time = item.time if item.time is not None else origin
                    output.start(item, stream.codec_context.name, round((time - origin) * rate))
                    array = item.to_ndarray(format="gray" if channels == 1 else "rgb24")
                    pending.append(array[:, :, None] if channels == 1 else array)
                    if len(pending) == batch_size:
                        translate(pending)
                        pending = []
                if pending:
                    translate(pending)
                if output.encoder is None:
                    raise ImageDecodeError(f"cannot read video {src}: {_no_frames(options)}")
                output.finish()
            except av.FFmpegError as error:
                raise ImageDecodeError(f"cannot read video {src}: {error}") from None
            finally:
                with contextlib.suppress(av.FFmpegError, OSError):  # closed by finish(), or failed
                    output.container.close()
        with writing(dst):
            os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if warn is not None and (width % 2 or height % 2):  # said of a video that was written
        warn(
            f"{src.name} is {width}x{height}; its translation is written "
            f"{width + width % 2}x{height + height % 2}, the last row or column repeated, as "
            f"4:2:0 video needs even sides"
        )
    return output.count


def _expected_frames(container: Any, stream: Any, options: VideoOptions) -> int | None:
    """Frames the progress bar should expect: the stream's count, or the cut's length."""
    if options.start is None and options.end is None:
        return stream.frames or None
    rate = stream.average_rate or stream.guessed_rate
    length = container.duration / 1e6 if container.duration else None
    end = options.end if length is None or options.end is None else min(options.end, length)
    if rate is None or end is None:
        return None
    return max(0, round((end - (options.start or 0)) * rate))


def _no_frames(options: VideoOptions) -> str:
    if options.start is None and options.end is None:
        return "it has no frames"
    return f"it has no frames between {options.start or 0} s and {options.end or 'the end'}"
