"""Frame-by-frame video translation through PyAV (the optional extra ``i2i[video]``).

Frames are decoded, translated in batches exactly as images are, and encoded into the same
container at the input's frame rate and resolution. The encoder is the input's codec when the
container takes it and this FFmpeg build can write it, else the container's usual codec (H.264,
then MPEG-4 Part 2 for .mp4). Output is constant frame rate, has no audio track, and 4:2:0
chroma needs even sizes, so an odd width or height gains one replicated edge row or column.
"""

from __future__ import annotations

import os
import uuid
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from i2i.core.errors import I2IError, ImageDecodeError
from i2i.core.progress import progress_bar

if TYPE_CHECKING:
    from i2i.infer.translator import Translator

__all__ = ["VIDEO_EXTENSIONS", "require_av", "translate_video"]

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
# Bits per pixel for encoders without a constant-quality mode here: ~19 Mbit/s at 1080p30.
_BITS_PER_PIXEL = 0.3


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
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError) as error:
        raise ImageDecodeError(f"cannot read video {src}: {error}") from None
    if not container.streams.video:
        container.close()
        raise ImageDecodeError(f"cannot read video {src}: it has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _add_encoder(
    av: Any, container: Any, suffix: str, source_codec: str, rate: Fraction, size: tuple[int, int]
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
        stream.pix_fmt = next(
            (f for f in ("yuv420p", "yuvj420p") if f in formats),
            formats[0] if formats else "yuv420p",
        )
        if codec.name == "libx264":
            stream.options = {"crf": "18"}
        else:
            stream.bit_rate = max(1_000_000, int(size[0] * size[1] * rate * _BITS_PER_PIXEL))
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


def translate_video(
    translator: Translator,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    direction: str | None = None,
    batch_size: int = 4,
    tile: int | None = None,
    overlap: int = 32,
    progress: bool = True,
) -> int:
    """Translate every frame of ``src`` into ``dst`` and return the number of frames.

    ``dst`` is written to a temp file beside it and renamed into place, so it is never half a
    video. An unreadable ``src`` is an ``ImageDecodeError``, as an unreadable image is.
    """
    av = require_av()
    src, dst = Path(src), Path(dst)
    direction = translator.resolve_direction(direction)
    gray = translator.input_channels(direction) == 1
    container, stream = _open_input(av, src)
    rate = stream.average_rate or stream.guessed_rate or _FALLBACK_RATE
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:8]}{dst.suffix}")
    count = 0
    try:
        with av.open(str(tmp), "w") as output, container, progress_bar(progress) as bar:
            task = bar.add_task(f"translating {src.name}", total=stream.frames or None)
            encoder = None

            def encode(frames: list[np.ndarray]) -> None:
                nonlocal encoder, count
                batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)
                out = translator.translate_batch(
                    batch, direction, tile=tile, overlap=overlap, batch_size=batch_size
                )
                pixels = _even(out.permute(0, 2, 3, 1).numpy())
                if encoder is None:
                    size = (pixels.shape[2], pixels.shape[1])
                    encoder = _add_encoder(
                        av, output, dst.suffix.lower(), stream.codec_context.name, rate, size
                    )
                for image in pixels:
                    if image.shape[2] == 1:
                        frame = av.VideoFrame.from_ndarray(image[:, :, 0], format="gray")
                    else:
                        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                    frame.pts = count
                    output.mux(encoder.encode(frame))
                    count += 1
                bar.advance(task, len(frames))

            pending: list[np.ndarray] = []
            try:
                for frame in container.decode(stream):
                    array = frame.to_ndarray(format="gray" if gray else "rgb24")
                    pending.append(array[:, :, None] if gray else array)
                    if len(pending) == batch_size:
                        encode(pending)
                        pending = []
            except av.FFmpegError as error:
                raise ImageDecodeError(f"cannot read video {src}: {error}") from None
            if pending:
                encode(pending)
            if encoder is None:
                raise ImageDecodeError(f"cannot read video {src}: it has no frames")
            output.mux(encoder.encode(None))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
