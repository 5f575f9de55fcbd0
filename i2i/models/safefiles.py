"""Reading files of a model or run folder as data that someone else may have made.

Every file is opened only when it is a regular file inside its folder: a symlink out of the
folder, a FIFO (which would block ``open`` forever) or a device is refused, and so is a
``latest`` pointer that names anything but a checkpoint beside it. Text is size-limited before
it is read and JSON is depth-limited before it is parsed, so a small file cannot make the
parser recurse or the reader allocate without bound. A model pulled from the Hub lives in the
Hugging Face cache, where the files of ``snapshots/<commit>/`` are links into the repo's
``blobs/``: there the folder is the repo's cache folder. Values read are checked for the shape the code
expects (``check_net_spec``) before anything uses them.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

from i2i.core.errors import CheckpointError, one_line, short


class UnsafeValue(CheckpointError, ValueError):
    """Data nested too deep, or a number that no config means (``ValueError``, as the JSON
    parser's own errors are, so that one handler takes both)."""


# A config.json is a few kilobytes; these leave room for any real one.
MAX_CONFIG_BYTES = 1 << 20
MAX_DEPTH = 32
_SPECIAL = re.compile(r'[\[\]{}"\\]')
# Whole numbers past this are no size, count or version any config means (2**53: exact in JSON).
MAX_INT = 2**53


def _root(folder: Path) -> Path:
    """The folder whose inside a file must resolve to (a Hub snapshot: its repo's cache)."""
    real = folder.resolve()
    if real.parent.name == "snapshots" and real.parent.parent.name.startswith("models--"):
        return real.parent.parent
    return real


def regular_file(path: Path, folder: Path | None, what: str = "file") -> Path:
    """``path`` if it is a regular file inside ``folder`` (links followed; None: anywhere),
    else a one-line ``CheckpointError``; nothing is opened."""
    path = Path(path)
    try:
        real = path.resolve(strict=True)
        info = real.stat()
    except (OSError, RuntimeError):  # missing, a dangling or looping link
        raise CheckpointError(f"{path} is missing or unreadable (a {what})") from None
    if folder is not None and not real.is_relative_to(_root(Path(folder))):
        raise CheckpointError(
            f"{path} points outside {folder} (to {real}); a model or run folder is read only "
            f"from its own files"
        )
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file; a {what} must be one")
    return real


def _open_regular(path: Path, folder: Path | None, what: str) -> BinaryIO:
    """``path`` opened for reading after ``regular_file``, checked again on the open descriptor:
    a file swapped for a FIFO or device after the check is refused, never waited on
    (``O_NONBLOCK``: opening a FIFO with no writer still returns)."""
    real = regular_file(path, folder, what)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise CheckpointError(f"{path} is not a regular file; a {what} must be one")
    return file


def read_bytes(path: Path, folder: Path | None, max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file inside ``folder``, refused above ``max_bytes``."""
    with _open_regular(path, folder, what) as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise CheckpointError(
            f"{path} is over {max_bytes // 1024} KiB; a {what} is far smaller (the file is "
            f"not what its name says)"
        )
    return data


def copy_regular(path: Path, folder: Path | None, target: Path, what: str = "file") -> None:
    """Copy the regular file ``path`` inside ``folder`` to ``target``, reading from the
    descriptor that was checked (nothing swapped in between is copied or waited on)."""
    with _open_regular(path, folder, what) as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy)


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before the recursive parser sees it (one
    linear pass over the brackets, quotes and escapes)."""
    depth, in_string, skip = 0, False, -1
    for match in _SPECIAL.finditer(text):
        char, at = match.group(), match.start()
        if at < skip:
            continue  # the character after a backslash
        if in_string:
            if char == "\\":
                skip = at + 2
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                raise UnsafeValue(f"nested deeper than {max_depth} levels")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str) -> float:
    raise UnsafeValue(f"{name} is not a JSON number")


def parse_json(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Strict JSON (no NaN or Infinity), depth-limited; ``ValueError`` says what is wrong."""
    check_depth(text, max_depth)
    value = json.loads(text, parse_constant=_refuse_constant)
    check_numbers(value)
    return value


def check_numbers(value: Any) -> None:
    """Floats that overflowed to infinity (``1e999``) and whole numbers of thousands of digits
    are not numbers a config can mean."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsafeValue(f"{value} is not a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise UnsafeValue(f"{str(value)[:20]}... is too large a number")
    if isinstance(value, dict):
        for item in value.values():
            check_numbers(item)
    elif isinstance(value, list):
        for item in value:
            check_numbers(item)


def read_json(
    path: Path, folder: Path, what: str = "config", max_bytes: int = MAX_CONFIG_BYTES
) -> Any:
    """A JSON file of ``folder``, read as untrusted data (see the module docstring)."""
    data = read_bytes(path, folder, max_bytes, what)
    try:
        return parse_json(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({one_line(error)})") from None


# A distribution's name as packaging normalises it (PEP 508), and nothing else.
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")


def is_size(value: Any) -> bool:
    """Whether ``value`` is a size in pixels as runs and models record it (None: unknown)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def check_net_spec(spec: Any, where: str) -> None:
    """``{"name": str, "kwargs": {identifier: value}, "plugin": str}``, or a one-line error."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise CheckpointError(f'{where} needs a "name", got {short(spec)}')
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict) or not all(
        isinstance(k, str) and k.isidentifier() for k in kwargs
    ):
        raise CheckpointError(
            f'{where}: "kwargs" must be a mapping of argument: value, got {short(kwargs)}'
        )
    if not isinstance(spec.get("plugin", ""), str | None):
        raise CheckpointError(f'{where}: "plugin" must be text, got {short(spec["plugin"])}')
    package = spec.get("package")  # shown in the card's `pip install` line: a name and no more
    if package is not None and not (isinstance(package, str) and PACKAGE_NAME.match(package)):
        raise CheckpointError(f'{where}: "package" must be a package name, got {short(package)}')
