"""``i2i apply``, ``i2i eval``, ``i2i demo`` and ``i2i space``: using a model."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from i2i.cli.group import (
    cli,
    detail_option,
    not_empty,
    output_folder,
    printable,
    scale_option,
)

# A bridge model's sampling option, the same for apply and eval.
path_noise_option = click.option(
    "--path-noise",
    type=float,
    help="Bridge models: the share of the path's noise walked, 0 (default: its mean, sharper) "
    "to 1 (the paper's sampling).",
)


@cli.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@output_folder
@click.option("--direction", help="AtoB or BtoA (default: AtoB, or the model's only one).")
@click.option(
    "--batch-size",
    type=int,
    help="Images through the network at once (default: 4 on a GPU, 1 on the CPU, where one at a "
    "time is fastest).",
)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"])
)
@click.option(
    "--compile",
    "compiled",
    is_flag=True,
    help="torch.compile the generator: faster on folders and videos, after 10-15 s of "
    "compiling per image size.",
)
@click.option("--tile", type=int, help="Translate in tiles of this size (for huge images).")
@click.option("--overlap", default=32, show_default=True, type=int, help="Tile overlap in pixels.")
@scale_option
@detail_option
@click.option(
    "--steps",
    type=int,
    help="Bridge models (UNSB): predictions along the path, 1 to the trained steps (default: "
    "the model's sample_steps, else all; fewer are faster).",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Bridge models: the noise's seed."
)
@path_noise_option
@click.option(
    "--overwrite/--skip-existing",
    default=False,
    help="Replace existing outputs, or keep them (the default): outputs are written whole or "
    "not at all, so rerunning a stopped job translates only what is missing.",
)
@click.option("--revision", help="Hub revision when MODEL is USER/REPO.")
@click.option(
    "--backend",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "torch", "onnxruntime"]),
    help="onnxruntime runs a folder made by `i2i export --format onnx` (auto: for such a "
    "folder; torch otherwise).",
)
@click.option(
    "--temporal",
    is_flag=True,
    help="Videos: blend each frame with the previous output along the optical flow (no flicker).",
)
@click.option(
    "--temporal-strength",
    type=click.FloatRange(0.0, 1.0),
    help="How much of the previous output --temporal keeps, 0 to 1 (default 0.7; implies it).",
)
@click.option("--start", help="Videos: start at this time (seconds, MM:SS or HH:MM:SS).")
@click.option("--end", help="Videos: stop at this time (seconds, MM:SS or HH:MM:SS).")
@click.option(
    "--quality",
    default=18,
    show_default=True,
    type=click.IntRange(0, 51),
    help="Videos: encoder quality as H.264's CRF (0 lossless, 51 smallest).",
)
def apply(
    model: str,
    inputs: tuple[str, ...],
    out: str,
    direction: str | None,
    batch_size: int | None,
    device: str,
    precision: str,
    compiled: bool,
    tile: int | None,
    overlap: int,
    scale: int | str | None,
    detail: str,
    steps: int | None,
    seed: int,
    path_noise: float | None,
    overwrite: bool,
    revision: str | None,
    backend: str,
    temporal: bool,
    temporal_strength: float | None,
    start: str | None,
    end: str | None,
    quality: int,
) -> None:
    """Translate images, folders, globs or videos with MODEL (Hub id, model folder or run).

    \b
    On many GPUs or machines, start it with torchrun; each process translates its share:
      torchrun --nproc_per_node 8 -m i2i apply MODEL photos/ -o out/
    Each process uses its own GPU and prints its own progress and summary; rerun the same
    command to resume a stopped job.
    """
    from i2i.core.ranks import Ranks, joined
    from i2i.infer.apply import ApplyStopped, apply_paths, job_counts
    from i2i.infer.temporal import DEFAULT_STRENGTH
    from i2i.infer.translator import load
    from i2i.infer.video import VideoOptions, parse_time

    if temporal or temporal_strength is not None:
        strength: float | None = (
            DEFAULT_STRENGTH if temporal_strength is None else temporal_strength
        )
    else:
        strength = None
    video = VideoOptions(
        start=None if start is None else parse_time(start),
        end=None if end is None else parse_time(end),
        quality=quality,
        temporal=strength,
    )
    video.check()

    translator = load(
        model,
        revision=revision,
        device=device,
        precision=precision,
        batch_size=batch_size,
        backend=backend,
        compile=compiled,
        steps=steps,
        seed=seed,
        path_noise=path_noise,
        scale=scale,
        detail=detail,
    )
    # Under torchrun the processes are joined from the start: one that dies is heard of at once.
    with joined(Ranks.from_env()), _terminated_as_interrupted() as stop:
        try:
            report = apply_paths(
                translator,
                list(inputs),
                Path(out),
                direction=direction,
                overwrite=overwrite,
                tile=tile,
                overlap=overlap,
                video=video,
            )
        except ApplyStopped as stopped:
            click.echo(printable(stopped.summary()), err=True)
            sys.exit(128 + stop.signum)
        click.echo(printable(report.summary()))
        ranks = report.ranks
        failed = len(report.failed)
        if ranks.distributed:
            written, kept, failed = job_counts(report)
            if ranks.rank == 0:
                click.echo(
                    f"All {ranks.world_size} processes: wrote {written}, kept {kept} existing, "
                    f"failed {failed}."
                )
    if failed:
        sys.exit(1)


@cli.command("eval")
@click.argument("model", required=False)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="Folder with testA/ and testB/, or a pix2pix model's test pairs (required with MODEL).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    callback=not_empty,
    help="Report folder (metrics.json, index.html, contact sheets; required with MODEL).",
)
@click.option(
    "--video",
    nargs=2,
    type=click.Path(exists=True, dir_okay=False),
    metavar="INPUT OUTPUT",
    help="Instead of MODEL: the flicker (warping error) of a translated video and its input.",
)
@click.option(
    "--extractor",
    default="inception_fid",
    show_default=True,
    help="Feature extractor for FID/KID (`i2i list feature_extractors`).",
)
@click.option("--direction", "directions", multiple=True, help="AtoB / BtoA (default: all).")
@click.option("--max-images", type=int, help="At most this many images per domain.")
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True)
@click.option("--revision", help="Hub revision when MODEL is USER/REPO.")
@click.option(
    "--steps", type=int, help="Bridge models (UNSB): predictions (default: the model's own)."
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Bridge models: the noise's seed."
)
@path_noise_option
def eval_command(
    model: str | None,
    data: str | None,
    out: str | None,
    video: tuple[str, str] | None,
    extractor: str,
    directions: tuple[str, ...],
    max_images: int | None,
    batch_size: int,
    device: str,
    revision: str | None,
    steps: int | None,
    seed: int,
    path_noise: float | None,
) -> None:
    """FID / KID of translations and cycle PSNR / SSIM (for a pix2pix model, PSNR / SSIM against
    the targets of its test pairs), with an HTML report to look at.

    With --video INPUT OUTPUT instead: the temporal warping error (Lai et al., ECCV 2018) of
    both videos, measured along INPUT's optical flow; lower is steadier.
    """

    from i2i.eval.evaluate import evaluate
    from i2i.infer.translator import load

    if video:
        if model or data:
            raise click.UsageError("--video compares two videos; it takes no MODEL or --data")
        from i2i.eval.flicker import video_flicker

        report = video_flicker(*video, warn=lambda message: click.echo(f"note: {message}"))
        click.echo(printable(report.summary()))
        if out:
            report.save(out)
        return
    for value, missing in ((model, "argument MODEL"), (data, "option --data"), (out, "option -o")):
        if not value:
            raise click.UsageError(f"Missing {missing} (or use --video INPUT OUTPUT).")
    assert model is not None and data is not None and out is not None

    translator = load(
        model, revision=revision, device=device, steps=steps, seed=seed, path_noise=path_noise
    )
    evaluate(
        translator,
        Path(data),
        Path(out),
        extractor=extractor,
        directions=list(directions) or None,
        max_images=max_images,
        batch_size=batch_size,
        device=device,
        log=click.echo,
    )
    click.echo(f"report: {Path(out) / 'index.html'} (metrics in {Path(out) / 'metrics.json'})")


@cli.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--device", default="auto", show_default=True)
@click.option("--revision", help="Hub revision when MODEL is USER/REPO.")
@click.option("--max-upload", default="25mb", show_default=True, help="Largest upload accepted.")
@scale_option
@detail_option
def demo(
    model: str,
    host: str,
    port: int,
    device: str,
    revision: str | None,
    max_upload: str,
    scale: int | str | None,
    detail: str,
) -> None:
    """Serve a web page to try MODEL in a browser (pip install "i2i[demo]").

    Photos from a phone are far larger than what a model trained at 256 px has seen: --scale
    model translates them at its training size, faster and with its textures at their scale.
    """
    from i2i.demo.page import DemoLimits, serve

    serve(
        model,
        revision=revision,
        host=host,
        port=port,
        device=device,
        limits=DemoLimits(max_upload=max_upload),
        scale=scale,
        detail=detail,
    )


@cli.command()
@click.argument("model")
@click.argument("space_id")
@click.option("--model-repo", help="USER/REPO to push MODEL to first, when it is a local folder.")
@click.option("--revision", help="Model revision to serve (default: main); pinned to its commit.")
@click.option("--private", is_flag=True, help="Create the Space (and a pushed model) as private.")
@click.option("--requirement", help="pip requirement for i2i in the Space (default: this version).")
@scale_option
@detail_option
def space(
    model: str,
    space_id: str,
    model_repo: str | None,
    revision: str | None,
    private: bool,
    requirement: str | None,
    scale: int | str | None,
    detail: str,
) -> None:
    """Create or update a Gradio Space USER/SPACE serving MODEL's demo page (--scale and
    --detail as for i2i demo)."""
    from i2i.demo.space import DEFAULT_REQUIREMENT, publish_space

    published = publish_space(
        model,
        space_id,
        revision=revision,
        model_repo=model_repo,
        private=private,
        requirement=requirement or DEFAULT_REQUIREMENT,
        scale=scale,
        detail=detail,
    )
    click.echo(
        f"Space {published.space_id} serves {published.model_repo} at commit "
        f"{published.revision[:12]}: {getattr(published.commit, 'commit_url', published.commit)}"
    )


class _Stop:
    """The signal that stopped an apply, for its exit status (128 + the signal, as a shell
    says): Ctrl-C's unless SIGTERM came."""

    signum: int = signal.SIGINT


@contextlib.contextmanager
def _terminated_as_interrupted() -> Iterator[_Stop]:
    """SIGTERM (what torchrun, SLURM and ``kill`` send) stops an apply as Ctrl-C does, saying
    how far it got; without this it ended without a word."""
    stopped = _Stop()

    def stop(signum: int, frame: object) -> None:
        stopped.signum = signum
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave the signals alone
        yield stopped
        return
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
