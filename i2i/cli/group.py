"""The ``i2i`` group: user errors on one line, plugin commands on first lookup."""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from collections.abc import Callable
from typing import Any

import click

from i2i import __version__
from i2i.core.errors import I2IError, I2IWarning, one_line, out_of_memory
from i2i.core.registry import REGISTRIES

KINDS = tuple(REGISTRIES)  # generators, discriminators, ... (the registries load no torch)


def not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An empty value: an output folder given as "" would silently be the current folder,
    an empty domain name an unnamed one."""
    if value is not None and not value.strip():
        folder = param.name == "out"
        raise click.BadParameter(
            "is empty" + ("; give a folder ('.' for this one)" if folder else "")
        )
    return value


# The -o of the commands that write a folder (apply, export, convert).
output_folder = click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    callback=not_empty,
    help="Output folder.",
)


def _scale(value: str | None) -> int | str | None:
    if value is None or value == "model":
        return value
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(f"is pixels (e.g. 286) or 'model', got {value!r}") from None


# The size a model runs at and what the result keeps of the input: apply, demo and Spaces.
scale_option = click.option(
    "--scale",
    callback=lambda ctx, param, value: _scale(value),
    metavar="PIXELS|model",
    help="Translate with each image's shorter side at this size, then back to its own size: "
    "'model' for the size the model was trained at (textures then come out at the scale it "
    "learned them; large photos run faster).",
)
detail_option = click.option(
    "--detail",
    type=click.Choice(["input", "local", "none"]),
    default="input",
    show_default=True,
    help="What the result takes from the input's own detail. With --scale: 'input' adds back "
    "the detail finer than that scale (the network's textures stay at the scale it drew "
    "them); 'none' gives the network's output enlarged, soft. 'local' (with or without "
    "--scale) keeps only the colour change the network made, as a smooth local map of the "
    "input: sharp and without the network's artefacts, for looks, light, colour grades and "
    "seasons, not strokes or stripes.",
)


def parse_kind(value: str) -> str:
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

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # From the start: --help and parsing load plugins too, which may warn.
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (I2IError, OSError, MemoryError, RuntimeError) as error:
            if os.environ.get("I2I_DEBUG", "") not in ("", "0"):
                raise  # I2I_DEBUG=1: the traceback, for bug reports
            if not isinstance(error, I2IError | MemoryError) and not (
                error.errno in _THE_MACHINE
                if isinstance(error, OSError)
                else out_of_memory(error) or _peer_lost(error)
            ):
                raise
            click.secho(printable(f"Error: {_said(error)}"), err=True, fg="red")
            ctx.exit(1)


def _one_line_warnings(show: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` printing i2i's own warnings as one ``warning:`` line (with
    I2I_DEBUG=1, and for other libraries' warnings, ``show`` as before). Under torchrun only
    the first process prints them: every process loads the same plugins, data and settings, so
    the others would repeat its lines."""

    def shown(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if category.__name__ == "DecompressionBombWarning":
            return  # Pillow's; i2i refuses such a file itself, on its own Error line
        if issubclass(category, I2IWarning) and os.environ.get("I2I_DEBUG", "") in ("", "0"):
            if os.environ.get("RANK", "0") in ("", "0"):
                click.secho(printable(f"warning: {message}"), err=True, fg="yellow")
        else:
            show(message, category, *args, **kw)

    return shown


# Failures of the machine rather than of i2i: a full disk, a read-only or foreign folder. The
# places that write say so themselves; this catches any the code does not know of.
_THE_MACHINE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


# How gloo, NCCL and the store say that the other end of a connection went away.
_PEER_GONE = ("by peer", "Broken pipe", "remote process exited", "Connection closed")


def _peer_lost(error: RuntimeError) -> bool:
    """Under torchrun, a collective that failed because another process of the job died
    (killed, out of memory): the traceback is gloo's or NCCL's, not news about i2i. Other
    distributed errors (a setup, a misuse) keep their traceback."""
    world = os.environ.get("WORLD_SIZE", "1")
    if not world.isdigit() or int(world) <= 1:  # told apart before it reaches an error
        return False
    import torch.distributed as dist

    text = str(error)
    return isinstance(error, dist.DistNetworkError) or any(words in text for words in _PEER_GONE)


def _said(error: Exception) -> str:
    if isinstance(error, RuntimeError) and _peer_lost(error):
        return (
            f"another process of this torchrun job ended ({one_line(error, 120)}); start the "
            f"job again: a training with --resume RUN_FOLDER goes on from its last checkpoint, "
            f"an apply keeps the outputs it wrote"
        )
    if isinstance(error, MemoryError | RuntimeError):
        return (
            f"out of memory ({one_line(error, 160)}); use smaller networks (--ngf, "
            f"--ndf), a smaller --batch-size or --crop-size, or --tile when applying"
        )
    if isinstance(error, I2IError) or not isinstance(error, OSError):
        return str(error)
    where = f" ({error.filename})" if error.filename else ""
    return f"{error.strerror}{where}; free some space, or use a folder you can write"


# Control characters in a file name (a newline, a terminal escape sequence) are shown escaped:
# printed raw they would split a one-line message or drive the user's terminal.
_ESCAPED = {code: f"\\x{code:02x}" for code in (*range(32), *range(127, 160))} | {
    0x2028: "\\u2028",  # line and paragraph separators split lines too
    0x2029: "\\u2029",
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
}


def printable(text: str) -> str:
    """``text`` as one safe line: the bytes of non-UTF-8 file names shown as replacement
    characters, control characters escaped."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").translate(_ESCAPED)


@click.group(cls=I2IGroup)
@click.version_option(__version__, prog_name="i2i")
def cli() -> None:
    """i2i: image-to-image translation (CycleGAN, pix2pix, your own) with plugins."""


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Cells are plain text (option help, a plugin's docstring): "[@REVISION]" or "[0, 1]" is
    # shown, not read as a style tag and dropped.
    table = Table(title=escape(title), title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(escape(column), overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(cell)) for cell in row))
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)
