"""The ``i2i`` command: a thin click layer over the Python API.

User errors (``I2IError``) print one line and exit 1, without a traceback (``I2I_DEBUG=1``
shows it). Training flags are generated from each task's declared options, and plugins may
add commands through the ``register_commands(cli)`` hook; both are loaded lazily so
``i2i --version`` stays instant.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from i2i import __version__
from i2i.core.errors import I2IError

KINDS = ("generators", "discriminators", "losses", "augmentations", "tasks", "feature_extractors")


def _kind(value: str) -> str:
    for kind in KINDS:
        if value in (kind, kind[:-1], kind.removesuffix("es")):
            return kind
    raise click.BadParameter(f"{value!r} is not one of {', '.join(KINDS)}")


class I2IGroup(click.Group):
    """Prints user errors on one line and adds plugin commands on first lookup."""

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        if I2IGroup._plugin_commands_loaded:
            return
        I2IGroup._plugin_commands_loaded = True
        from i2i.core.plugins import add_plugin_commands

        add_plugin_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (I2IError, OSError) as error:
            if os.environ.get("I2I_DEBUG", "") not in ("", "0"):
                raise  # I2I_DEBUG=1: the traceback, for bug reports
            if not isinstance(error, I2IError) and error.errno not in _THE_MACHINE:
                raise
            click.secho(printable(f"Error: {_said(error)}"), err=True, fg="red")
            ctx.exit(1)


# Failures of the machine rather than of i2i: a full disk, a read-only or foreign folder. The
# places that write say so themselves; this catches any the code does not know of.
_THE_MACHINE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _said(error: Exception) -> str:
    if isinstance(error, I2IError) or not isinstance(error, OSError):
        return str(error)
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror}{where}; free some space, or use a folder you can write"


def printable(text: str) -> str:
    """``text`` with the bytes of non-UTF-8 file names shown as replacement characters."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@click.group(cls=I2IGroup)
@click.version_option(__version__, prog_name="i2i")
def cli() -> None:
    """i2i: image-to-image translation (CycleGAN, pix2pix, your own) with plugins."""


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)


@cli.command("list")
@click.argument("kind", required=False, type=_kind)
@click.argument("pattern", required=False, default="*")
def list_command(kind: str | None, pattern: str) -> None:
    """List registered components: KIND is generators, discriminators, losses,
    augmentations or tasks; PATTERN is a glob such as 'resnet*'."""
    from i2i.core.registry import REGISTRIES

    for name in [kind] if kind else list(KINDS):
        registry = REGISTRIES[name]
        rows = [[c.name, c.plugin, c.summary] for c in registry if c.name in registry.list(pattern)]
        _table(name, ["name", "plugin", "summary"], rows)


@cli.command()
@click.argument("name")
@click.option("--kind", type=_kind, help="Which registry, when a name is in several.")
def describe(name: str, kind: str | None) -> None:
    """Show a component's parameters and defaults, e.g. `i2i describe resnet9`."""
    from i2i.core.registry import REGISTRIES

    found = [REGISTRIES[k].get(name) for k in ([kind] if kind else KINDS) if name in REGISTRIES[k]]
    if not found:
        REGISTRIES[kind or "generators"].get(name)  # raises with close matches
    for component in found:
        click.echo(f"{component.name} ({component.kind}, plugin {component.plugin})")
        if component.summary:
            click.echo(f"  {component.summary}")
        columns = ["name", "type", "default"]
        rows = [
            [p.name, p.annotation, "(required)" if p.required else repr(p.default)]
            for p in component.parameters
        ]
        if component.kind == "task":  # options, by the group that owns them
            task_cls = component.factory
            task_cls.declared_options()  # refuses defaults of unknown options
            columns.append("group")
            rows = [
                [o.name, getattr(o.type, "__name__", ""), repr(o.default), group.__name__]
                for group in task_cls.groups()
                for o in group.declared(task_cls.defaults)
            ]
        _table("parameters", columns, rows)
        for recipe_name, recipe in getattr(component.factory, "recipes", {}).items():
            values = " ".join(
                f"--{k.replace('_', '-')} "
                + (" ".join(f"{a}={b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
                for k, v in recipe.values.items()
            )
            click.echo(f"recipe {recipe_name}: {recipe.summary}\n  sets {values}")


@cli.command()
def plugins() -> None:
    """List installed plugins, their versions and the hooks they implement."""
    from i2i.core.plugins import failures
    from i2i.core.plugins import plugins as installed

    _table(
        "plugins",
        ["name", "version", "module", "hooks"],
        [[p.name, p.version, p.module, ", ".join(p.hooks)] for p in installed()],
    )
    for name, error in failures.items():
        click.secho(f"failed: {name}: {error}", err=True, fg="yellow")


def _click_option(option: Any) -> click.Option:
    from i2i.kit.options import Option

    assert isinstance(option, Option)
    if option.switch:
        return click.Option(
            [option.flag, option.name],
            is_flag=True,
            flag_value=not option.default,
            default=option.default,
            help=option.help + (" On by default; this turns it off." if option.default else ""),
        )
    if option.keyvalue:
        return click.Option(
            [option.flag, option.name], multiple=True, metavar="KEY=VALUE", help=option.help
        )
    kind: Any = click.Choice(option.choices) if option.choices else (option.type or str)
    default = f" [default: {option.default}]" if option.default is not None else ""
    return click.Option([option.flag, option.name], type=kind, help=option.help + default)


class TrainGroup(click.Group):
    """One subcommand per registered task, its flags generated from the task's options."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from i2i.core.registry import tasks

        return tasks.list()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from i2i.core.registry import tasks

        task_cls = tasks.get(cmd_name).factory
        params = [_click_option(o) for o in task_cls.declared_options()]
        params.append(
            click.Option(
                ["--config"],
                type=click.Path(dir_okay=False),
                help="YAML or JSON file of options; flags override it.",
            )
        )

        def run(**values: Any) -> None:
            from click.core import ParameterSource

            from i2i.train.trainer import train

            ctx = click.get_current_context()
            given = {
                k: v
                for k, v in values.items()
                if ctx.get_parameter_source(k)
                in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
            }
            config_file = given.pop("config", None)
            result = train(cmd_name, config_file=config_file, **given)
            if result.interrupted:
                sys.exit(130)

        return click.Command(cmd_name, params=params, callback=run, help=task_cls.__doc__)


@cli.group(cls=TrainGroup)
def train() -> None:
    """Train a task, e.g. `i2i train cyclegan --data DIR`; without --data it trains on a
    built-in toy day/night dataset."""


@cli.command()
@click.argument("model")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["safetensors", "onnx"]),
    default="safetensors",
    show_default=True,
    help="safetensors: a model folder; onnx: one graph per direction.",
)
@click.option("--with-discriminators", is_flag=True, help="Also save D (for fine-tuning).")
@click.option(
    "--tolerance",
    default=1e-4,
    show_default=True,
    type=float,
    help="ONNX parity check: largest allowed difference from PyTorch.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing, non-empty OUT.")
def export(
    model: str, out: str, fmt: str, with_discriminators: bool, tolerance: float, overwrite: bool
) -> None:
    """Turn a training run into a model folder, or a run / model into ONNX graphs."""
    if fmt == "onnx":
        from i2i.infer.onnx import export_onnx
        from i2i.models.loader import load_generators

        config, generators = load_generators(model, device="cpu")
        path = export_onnx(
            config, generators, Path(out), tolerance=tolerance, overwrite=overwrite, log=click.echo
        )
        click.echo(
            f"ONNX graphs written to {path} (try: i2i apply {path} IMAGES -o OUT "
            f"--backend onnxruntime)"
        )
        return
    from i2i.models.folder import export_run

    path = export_run(Path(model), Path(out), with_discriminators, overwrite)
    click.echo(f"model written to {path} (try: i2i apply {path} IMAGES -o OUT)")


@cli.command()
@click.argument("model")
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--revision", help="Branch to push to (created if missing).")
@click.option("--message", help="Commit message.")
@click.option("--with-discriminators", is_flag=True, help="Include D when MODEL is a run.")
@click.option("--space", help="Also create or update this Gradio Space (USER/SPACE) for the model.")
def push(
    model: str,
    repo_id: str,
    private: bool,
    revision: str | None,
    message: str | None,
    with_discriminators: bool,
    space: str | None,
) -> None:
    """Upload a model folder or a training run to the Hub as USER/REPO."""
    from i2i.models.hub import push as push_model

    info = push_model(
        model,
        repo_id,
        private=private,
        revision=revision,
        message=message,
        with_discriminators=with_discriminators,
    )
    click.echo(f"pushed to {repo_id}: {getattr(info, 'commit_url', info)}")
    if space:
        from i2i.demo.space import publish_space

        published = publish_space(repo_id, space, revision=info.oid, private=private)
        click.echo(f"space {space} serves {repo_id} at commit {published.revision[:12]}")


@cli.command()
@click.argument("repo_id")
@click.option("--revision", help="Branch, tag or commit (default: main).")
def pull(repo_id: str, revision: str | None) -> None:
    """Download a model into the Hugging Face cache, check it, and print its local path."""
    from i2i.models.hub import pull as pull_model

    click.echo(str(pull_model(repo_id, revision)))


@cli.command()
@click.argument("model")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
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
@click.option(
    "--steps",
    type=int,
    help="Bridge models (UNSB): predictions along the path, 1 to the trained steps (default: "
    "all; fewer are faster).",
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Bridge models: the noise's seed."
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--revision", help="Hub revision when MODEL is USER/REPO.")
@click.option(
    "--backend",
    default="torch",
    show_default=True,
    type=click.Choice(["torch", "onnxruntime"]),
    help="onnxruntime runs a folder made by `i2i export --format onnx`.",
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
    steps: int | None,
    seed: int,
    overwrite: bool,
    revision: str | None,
    backend: str,
    temporal: bool,
    temporal_strength: float | None,
    start: str | None,
    end: str | None,
    quality: int,
) -> None:
    """Translate images, folders, globs or videos with MODEL (Hub id, model folder or run)."""
    from i2i.infer.apply import apply_paths
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
    )
    report = apply_paths(
        translator,
        list(inputs),
        Path(out),
        direction=direction,
        batch_size=batch_size,
        overwrite=overwrite,
        tile=tile,
        overlap=overlap,
        video=video,
    )
    click.echo(report.summary())
    if not report.ok:
        sys.exit(1)


@cli.command("eval")
@click.argument("model", required=False)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="Folder with testA/ and testB/ (required with MODEL).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
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
@click.option("--steps", type=int, help="Bridge models (UNSB): predictions (default: all).")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Bridge models: the noise's seed."
)
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
) -> None:
    """FID / KID of translations and cycle PSNR / SSIM, with an HTML report to look at.

    With --video INPUT OUTPUT instead: the temporal warping error (Lai et al., ECCV 2018) of
    both videos, measured along INPUT's optical flow; lower is steadier.
    """
    import json

    from i2i.eval.evaluate import evaluate
    from i2i.infer.translator import load

    if video:
        if model or data:
            raise click.UsageError("--video compares two videos; it takes no MODEL or --data")
        from i2i.core.errors import writing
        from i2i.eval.flicker import video_flicker
        from i2i.models.checkpoint import atomic_write_text

        report = video_flicker(*video, warn=lambda message: click.echo(f"note: {message}"))
        click.echo(report.summary())
        if out:
            with writing(out):
                Path(out).mkdir(parents=True, exist_ok=True)
            atomic_write_text(Path(out) / "flicker.json", json.dumps(report.as_dict(), indent=2))
        return
    for value, missing in ((model, "argument MODEL"), (data, "option --data"), (out, "option -o")):
        if not value:
            raise click.UsageError(f"Missing {missing} (or use --video INPUT OUTPUT).")
    assert model is not None and data is not None and out is not None

    translator = load(model, revision=revision, device=device, steps=steps, seed=seed)
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


@cli.group()
def convert() -> None:
    """Import checkpoints from other implementations."""


@convert.command("official")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--gen", required=True, help="Registered generator matching the checkpoint.")
@click.option("--gen-kw", multiple=True, metavar="KEY=VALUE", help="Generator arguments.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False))
@click.option("--direction", default="AtoB", show_default=True, type=click.Choice(["AtoB", "BtoA"]))
@click.option("--task", default="cyclegan", show_default=True, help="cyclegan or pix2pix.")
@click.option("--domain-a", default="A", show_default=True)
@click.option("--domain-b", default="B", show_default=True)
@click.option("--overwrite", is_flag=True)
def convert_official_command(
    path: str,
    gen: str,
    gen_kw: tuple[str, ...],
    out: str,
    direction: str,
    task: str,
    domain_a: str,
    domain_b: str,
    overwrite: bool,
) -> None:
    """Official pytorch-CycleGAN-and-pix2pix generator (latest_net_G.pth) -> model folder."""
    from i2i.kit.options import parse_keyvalue
    from i2i.models.convert import convert_official

    folder = convert_official(
        Path(path),
        Path(out),
        gen,
        parse_keyvalue(gen_kw),
        direction=direction,
        task=task,
        domains={"A": domain_a, "B": domain_b},
        overwrite=overwrite,
    )
    click.echo(f"model written to {folder}")


@cli.command()
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--device", default="auto", show_default=True)
@click.option("--revision", help="Hub revision when MODEL is USER/REPO.")
@click.option("--max-upload", default="25mb", show_default=True, help="Largest upload accepted.")
def demo(
    model: str, host: str, port: int, device: str, revision: str | None, max_upload: str
) -> None:
    """Serve a web page to try MODEL in a browser (pip install "i2i[demo]")."""
    from i2i.demo.page import DemoLimits, serve

    serve(
        model,
        revision=revision,
        host=host,
        port=port,
        device=device,
        limits=DemoLimits(max_upload=max_upload),
    )


@cli.command()
@click.argument("model")
@click.argument("space_id")
@click.option("--model-repo", help="USER/REPO to push MODEL to first, when it is a local folder.")
@click.option("--revision", help="Model revision to serve (default: main); pinned to its commit.")
@click.option("--private", is_flag=True, help="Create the Space (and a pushed model) as private.")
@click.option("--requirement", help="pip requirement for i2i in the Space (default: this version).")
def space(
    model: str,
    space_id: str,
    model_repo: str | None,
    revision: str | None,
    private: bool,
    requirement: str | None,
) -> None:
    """Create or update a Gradio Space USER/SPACE serving MODEL's demo page."""
    from i2i.demo.space import DEFAULT_REQUIREMENT, publish_space

    published = publish_space(
        model,
        space_id,
        revision=revision,
        model_repo=model_repo,
        private=private,
        requirement=requirement or DEFAULT_REQUIREMENT,
    )
    click.echo(
        f"Space {published.space_id} serves {published.model_repo} at commit "
        f"{published.revision[:12]}: {getattr(published.commit, 'commit_url', published.commit)}"
    )


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 prints as the bytes it has, instead of failing.
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="surrogateescape")
    cli(prog_name="i2i")
