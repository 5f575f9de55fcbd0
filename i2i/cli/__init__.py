"""The ``i2i`` command: a thin click layer over the Python API.

User errors (``I2IError``) print one line and exit 1, without a traceback (``I2I_DEBUG=1``
shows it). Training flags are generated from each task's declared options, and plugins may
add commands through the ``register_commands(cli)`` hook; both are loaded lazily so
``i2i --version`` stays instant.

One module per family of commands: ``group`` (the ``i2i`` group and its error handling),
``inspecting`` (list, describe, plugins), ``training`` (train), ``exporting`` (export, convert,
push, pull) and ``using`` (apply, eval, demo, space).
"""

import contextlib
import sys

from i2i.cli import exporting, inspecting, training, using  # noqa: F401  (each adds commands)
from i2i.cli.group import cli, printable

__all__ = ["cli", "main", "printable"]


def main() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not UTF-8 prints as the bytes it has, instead of failing.
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="surrogateescape")
    cli(prog_name="i2i")
