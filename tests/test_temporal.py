"""Flow warping, occlusion masks, temporal blending, the warping error and video pass-through."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from i2i.core.errors import I2IError, ImageDecodeError, InvalidArgumentError
from i2i.infer.apply import apply_paths
from tests.test_apply import RESNET, make_translator

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")

from i2i.eval.flicker import video_flicker, warping_errors  # noqa: E402
from i2i.infer.temporal import (  # noqa: E402
    Motion,
    TemporalBlender,
    consistent,
    estimate_flow,
    warp,
)
from i2i.infer.video import VideoOptions, parse_time, read_frames, translate_video  # noqa: E402


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3) smooth random texture of full contrast: what optical flow locks onto."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    smooth = cv2.GaussianBlur(noise, (7, 7), 0).astype(np.float32)
    return ((smooth - smooth.min()) * (255 / (smooth.max() - smooth.min()))).astype(np.uint8)


def panned(frames: int, size: int = 48, step: float = 1.5, noise: float = 0.0) -> np.ndarray:
    """uint8 (T, size, size, 3): a window sliding right over a texture, with per-frame noise."""
    scene = texture(size, size + int(step * frames) + 2)
    rng = np.random.default_rng(1)
    clip = []
    for t in range(frames):
        shift = np.float32([[1, 0, step * t], [0, 1, 0]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # frame(x) = scene(x + step * t)
        frame = cv2.warpAffine(scene, shift, (size, size), flags=flags)
        frame = frame + rng.normal(0, noise, frame.shape)
        clip.append(np.clip(frame, 0, 255).astype(np.uint8))
    return np.stack(clip)


def write_clip(
    path: Path,
    frames: np.ndarray,
    rate: Fraction | int = 12,
    audio: bool = False,
    rotation: int | None = None,
) -> Path:
    """Encode ``frames`` (near-lossless H.264), with a sine audio track and a rotation."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt, video.options = "yuv420p", {"crf": "1"}
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            samples = int(16000 * len(frames) / rate)
            wave = np.sin(np.arange(samples, dtype=np.float32) * 0.05)[None] * 0.5
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]),
                    format="fltp",
                    layout="mono",
                )
                chunk.sample_rate, chunk.pts = 16000, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
    return path


def frames_of(path: Path) -> np.ndarray:
    return np.stack(list(read_frames(path)))


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    return make_translator(tmp_path_factory.mktemp("m") / "model", {"AtoB": RESNET})


# -- flow, warp, occlusion -----------------------------------------------------------------------
def test_warp_is_exact_on_a_synthetic_shift():
    previous = texture(40, 56)
    current = np.roll(previous, (2, 3), axis=(0, 1))  # content moved 3 right, 2 down
    flow = np.broadcast_to(np.float32([-3, -2]), (40, 56, 2)).copy()
    warped = warp(previous, flow)
    assert warped.dtype == np.float32 and warped.shape == previous.shape
    np.testing.assert_array_equal(warped[2:, 3:], current[2:, 3:])


def test_estimated_flow_recovers_a_subpixel_shift():
    clip = panned(2, size=64, step=1.5)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    flow = estimate_flow(gray[1], gray[0])
    inner = flow[8:-8, 8:-8]
    assert np.abs(inner[..., 0] - 1.5).mean() < 0.15 and np.abs(inner[..., 1]).mean() < 0.15
    warped = warp(clip[0], flow)
    assert np.abs(warped[8:-8, 8:-8] - clip[1][8:-8, 8:-8]).mean() < 2.0


def test_consistency_masks_disocclusions_and_pixels_from_outside():
    height, width = 24, 40
    backward = np.zeros((height, width, 2), np.float32)
    forward = np.zeros((height, width, 2), np.float32)
    backward[8:16, 16:24, 0] = -6  # a square that moved 6 px right (now at x 16..24)
    forward[8:16, 10:18, 0] = 6  # ... from x 10..18 in the previous frame
    valid = consistent(backward, forward)
    assert valid[8:16, 16:24].all()  # the square itself was seen before
    assert not valid[8:16, 10:16].any()  # background it uncovered was hidden
    assert valid[:8].all() and valid[16:].all()  # still background
    moved = np.broadcast_to(np.float32([-2, 0]), (height, width, 2))
    valid = consistent(moved, -moved)
    assert not valid[:, :2].any() and valid[:, 2:].all()  # came from outside the frame


def test_blending_skips_what_a_moving_object_uncovered():
    background = texture(64, 96, seed=2)
    square = texture(24, 24, seed=3)
    previous, current = background.copy(), background.copy()
    previous[20:44, 36:60] = square
    current[20:44, 41:65] = square  # moved 5 px right: x 36..41 is background seen anew
    guide = TemporalBlender(0.5).motions(np.stack([previous, current]))[1]
    weight = guide.weight[..., 0]
    assert weight[22:42, 36:41].mean() < 0.2
    assert weight[24:40, 45:61].mean() > 0.8 and weight[:16].mean() > 0.8
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (previous, current)]
    flow_only = Motion.between(gray[0], gray[1])
    assert flow_only.valid[22:42, 36:41].mean() < 0.5  # most of it already fails the fb check


# -- blending ------------------------------------------------------------------------------------
def test_strength_zero_returns_the_translation_exactly():
    clip = panned(5, noise=8)
    outputs = np.random.default_rng(0).integers(0, 256, clip.shape, dtype=np.uint8)
    blender = TemporalBlender(0.0)
    blended = np.concatenate(
        [blender.blend(outputs[i : i + 2], blender.motions(clip[i : i + 2])) for i in (0, 2, 4)]
    )
    np.testing.assert_array_equal(blended, outputs)


def test_blending_is_batch_independent_and_deterministic():
    clip = panned(6, noise=6)
    outputs = np.clip(
        clip.astype(int) + np.random.default_rng(2).integers(-20, 20, clip.shape), 0, 255
    )
    outputs = outputs.astype(np.uint8)

    def run(batch: int) -> np.ndarray:
        blender = TemporalBlender(0.7)
        parts = [
            blender.blend(outputs[i : i + batch], blender.motions(clip[i : i + batch]))
            for i in range(0, len(clip), batch)
        ]
        return np.concatenate(parts)

    first = run(6)
    np.testing.assert_array_equal(first, run(1))
    np.testing.assert_array_equal(first, run(4))
    np.testing.assert_array_equal(first[0], outputs[0])  # nothing to blend with yet
    before, after = warping_errors(clip, outputs, first)[1:]
    assert after < 0.6 * before


def test_bad_strength_is_one_line():
    with pytest.raises(InvalidArgumentError, match="between 0 and 1"):
        TemporalBlender(1.5)


# -- the warping error ---------------------------------------------------------------------------
def test_warping_error_is_zero_for_pure_motion_and_grows_with_noise():
    clip = panned(4, step=1.0)
    rng = np.random.default_rng(0)
    noisy = np.clip(clip + rng.normal(0, 10, clip.shape), 0, 255).astype(np.uint8)
    clean, flickering = warping_errors(clip, noisy)
    assert clean < 2e-4  # integer steps: the warp is exact away from the borders
    assert flickering > 10 * clean


def test_warping_error_needs_matching_videos():
    clip = panned(3)
    with pytest.raises(I2IError, match="the output ended after 2 frames, before the others"):
        warping_errors(clip, clip[:2], names=["the output"])
    with pytest.raises(I2IError, match="at least 2 frames"):
        warping_errors(clip[:1])
    with pytest.raises(I2IError, match="compare a translation with the input"):
        warping_errors(clip, clip[:, :20])


# -- video ---------------------------------------------------------------------------------------
def test_temporal_video_keeps_rate_audio_rotation_and_cuts(translator, tmp_path, monkeypatch):
    rate = Fraction(25)
    src = write_clip(tmp_path / "clip.mp4", panned(20, noise=4), rate, audio=True, rotation=90)
    dst = tmp_path / "out" / "clip.mp4"
    options = VideoOptions(start=0.2, end=0.6, temporal=0.6, quality=23)
    monkeypatch.setattr(translator, "batch_size", 3)
    count = translate_video(translator, src, dst, progress=False, options=options)
    assert count == 10  # frames 5..14 at 25 fps
    with av.open(str(dst)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.average_rate == rate and (video.width, video.height) == (48, 48)
        assert audio.codec_context.name == "aac" and audio.sample_rate == 16000
        first = next(container.decode(video))
        assert first.rotation == 90
        packets = [p for p in container.demux(audio) if p.dts is not None]
        seconds = sum(p.duration for p in packets) * audio.time_base
        assert 0.3 <= seconds <= 0.5
        assert abs(packets[0].pts * audio.time_base) < 0.07  # in sync: the cut starts both
    assert not list(tmp_path.glob("out/.*"))  # no temp file left


def test_whole_video_keeps_all_audio(translator, tmp_path):
    src = write_clip(tmp_path / "clip.mkv", panned(12), 12, audio=True)
    dst = tmp_path / "o" / "clip.mkv"
    assert translate_video(translator, src, dst, progress=False) == 12

    def audio_samples(path: Path) -> int:
        with av.open(str(path)) as container:
            return sum(f.samples for f in container.decode(audio=0))

    assert audio_samples(dst) == audio_samples(src)


def test_strength_zero_equals_per_frame_video(translator, tmp_path, monkeypatch):
    src = write_clip(tmp_path / "clip.mp4", panned(7, noise=6))
    plain = tmp_path / "plain" / "clip.mp4"
    zero = tmp_path / "zero" / "clip.mp4"
    # Lossless encoding: x264's own choices (threaded, not always repeatable) cannot differ.
    lossless = VideoOptions(quality=0)
    monkeypatch.setattr(translator, "batch_size", 3)
    translate_video(translator, src, plain, progress=False, options=lossless)
    options = VideoOptions(temporal=0.0, quality=0)
    threads = cv2.getNumThreads()
    monkeypatch.setattr(translator, "batch_size", 2)  # batches cut elsewhere: the same frames
    translate_video(translator, src, zero, progress=False, options=options)
    assert cv2.getNumThreads() == threads  # OpenCV's pool is the caller's again
    np.testing.assert_array_equal(frames_of(plain), frames_of(zero))


def test_temporal_output_is_steadier_and_close_to_per_frame(translator, tmp_path):
    src = write_clip(tmp_path / "clip.mp4", panned(10, size=64, noise=8))
    report = apply_paths(translator, [src], tmp_path / "plain", progress=False)
    assert report.written
    options = VideoOptions(temporal=0.6, quality=10)
    apply_paths(translator, [src], tmp_path / "steady", progress=False, video=options)
    plain = video_flicker(src, tmp_path / "plain" / "clip.mp4")
    steady = video_flicker(src, tmp_path / "steady" / "clip.mp4")
    assert plain.input == pytest.approx(steady.input) and plain.frames == 10
    assert steady.output < 0.6 * plain.output
    difference = frames_of(tmp_path / "plain" / "clip.mp4").astype(float)
    difference -= frames_of(tmp_path / "steady" / "clip.mp4")
    assert 10 * np.log10(255**2 / np.mean(difference**2)) > 25


def test_quality_trades_size(translator, tmp_path):
    src = write_clip(tmp_path / "clip.mp4", panned(6, noise=8))
    sizes = []
    for quality in (5, 40):
        dst = tmp_path / str(quality) / "clip.mp4"
        options = VideoOptions(quality=quality)
        translate_video(translator, src, dst, progress=False, options=options)
        sizes.append(dst.stat().st_size)
    assert sizes[0] > 2 * sizes[1]


def test_a_cut_without_frames_is_reported(translator, tmp_path):
    src = write_clip(tmp_path / "clip.mp4", panned(4))
    options = VideoOptions(start=30)
    with pytest.raises(ImageDecodeError, match="no frames between 30"):
        translate_video(translator, src, tmp_path / "o.mp4", progress=False, options=options)
    assert not list(tmp_path.glob(".o*"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (VideoOptions(start=-1), "start must be"),
        (VideoOptions(start=2, end=1), "must be after start"),
        (VideoOptions(quality=60), "quality must be between"),
        (VideoOptions(temporal=-0.1), "temporal strength"),
    ],
)
def test_bad_video_options_fail_before_anything_runs(translator, tmp_path, options, message):
    src = write_clip(tmp_path / "clip.mp4", panned(2))
    with pytest.raises(InvalidArgumentError, match=message):
        apply_paths(translator, [src], tmp_path / "out", progress=False, video=options)
    assert not (tmp_path / "out").exists()


def test_parse_time():
    assert parse_time("12.5") == 12.5
    assert parse_time("1:05") == 65
    assert parse_time("1:00:02.5") == 3602.5
    with pytest.raises(InvalidArgumentError, match="not a time"):
        parse_time("1m")


# -- command line --------------------------------------------------------------------------------
def test_cli_apply_temporal_and_eval_video(translator, tmp_path):
    from i2i.cli import cli

    model = translator.save_pretrained(tmp_path / "model")
    src = write_clip(tmp_path / "clip.mp4", panned(6, noise=6), audio=True)
    runner = CliRunner()
    args = ["apply", str(model), str(src), "-o", str(tmp_path / "out"), "--device", "cpu"]
    result = runner.invoke(cli, [*args, "--temporal", "--end", "0:00.4", "--quality", "20"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["eval", "--video", str(src), str(tmp_path / "out" / "clip.mp4")])
    assert result.exit_code != 0 and "the output clip.mp4 ended after 5 frames" in result.output
    result = runner.invoke(cli, [*args, "--overwrite", "--temporal-strength", "0.5"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "report"
    video = ["--video", str(src), str(tmp_path / "out" / "clip.mp4")]
    result = runner.invoke(cli, ["eval", *video, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warping error over 6 frames" in result.output and (out / "flicker.json").exists()
    result = runner.invoke(cli, [*args, "--temporal-strength", "2"])
    assert result.exit_code == 2 and "0<=x<=1" in result.output
    result = runner.invoke(cli, ["eval", str(model), *video])
    assert result.exit_code == 2 and "takes no MODEL" in result.output
    result = runner.invoke(cli, ["eval", "--data", str(tmp_path)])
    assert result.exit_code == 2 and "Missing argument MODEL" in result.output
