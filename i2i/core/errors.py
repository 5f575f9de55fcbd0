"""Errors that mean "the user asked for something wrong", as opposed to bugs.

The CLI prints an ``I2IError`` as one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class I2IError(Exception):
    """A user-facing error whose message already says what to do."""


class I2IWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI prints it as one
    ``warning:`` line."""


class UnknownComponentError(I2IError, KeyError):
    """A name that no installed plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateComponentError(I2IError):
    """Two plugins registered the same name."""


class InvalidArgumentError(I2IError, TypeError):
    """A keyword argument a component does not take, or a value it cannot use."""


class BuildError(InvalidArgumentError):
    """A component whose factory refused its arguments; the message names the component."""


class DataError(I2IError):
    """A dataset folder that is missing, empty or laid out wrongly."""


class CheckpointError(I2IError):
    """A checkpoint or model folder that does not match what it claims to be."""


class InputSizeError(I2IError, ValueError):
    """An image size a network cannot take (e.g. unet256 on 100x100).

    ``need`` says what the network takes and ``fit`` the next size up that it takes, where
    known, so that training can say it in terms of --crop-size rather than of the image.
    """

    def __init__(self, message: str, need: str | None = None, fit: int | None = None) -> None:
        super().__init__(message)
        self.need = need
        self.fit = fit


class ImageDecodeError(I2IError, OSError):
    """A file that is not a readable image."""


class WriteError(I2IError, OSError):
    """A file that could not be written: a full disk, a read-only or foreign folder."""


def out_of_memory(error: BaseException) -> bool:
    """torch's allocation failures (CPU: a RuntimeError; CUDA: OutOfMemoryError), known
    without importing torch."""
    return type(error).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(error)


_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextmanager
def writing(
    target: object,
    way_out: str = "choose another output folder",
    when_full: str = "free some space and try again",
) -> Iterator[None]:
    """Turn an ``OSError`` while writing ``target`` into a one-line ``WriteError`` that says
    what to do: ``when_full`` on a full disk, else ``way_out``."""
    try:
        yield
    except I2IError:
        raise
    except OSError as error:
        reason = error.strerror or one_line(error)
        if error.errno in (errno.EEXIST, errno.ENOTDIR) and isinstance(target, str | Path):
            # mkdir's "File exists" for a/b when a is a file: say which file is in the way
            files = [p for p in Path(target).parents if p.exists() and not p.is_dir()]
            reason = f"{files[-1]} is a file, not a folder" if files else reason
        advice = when_full if error.errno in _FULL else way_out
        raise WriteError(f"cannot write {target}: {reason}; {advice}") from error


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message as one line of at most ``limit`` characters, or its type's name
    when it has none: libraries' messages span lines and may quote whole files."""
    return " ".join(str(error).split())[:limit] or type(error).__name__


def first_of(items: Sequence[str]) -> str:
    """``a.png``, ``a.png and 3 more``: the first of some things and how many others, as a
    message names them."""
    return items[0] + (f" and {len(items) - 1} more" if len(items) > 1 else "")


def count(n: int, noun: str) -> str:
    """``1 file``, ``3 files``: a number of things as a message says it."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def short(value: Any) -> str:
    """A value as an error message shows it: its repr, cut at 80 characters (a value read from
    a file may be megabytes long, and an error stays one readable line)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
