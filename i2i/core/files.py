"""Writing files so that nothing is ever half-written: a temp file in the same folder, made
durable, then renamed into place; modes as a plain ``open`` would give them. Runs, models,
reports and exports are written through here."""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from i2i.core.errors import writing


def _umask() -> int:
    """The process umask (read from /proc where possible: setting it to read it races threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share_like_umask(path: Path) -> None:
    """Give a folder made by ``mkdtemp`` (0700) or a file made by ``mkstemp`` (0600), and the
    files inside such a folder, the modes a plain ``mkdir``/``open`` would have had."""
    mask = _umask()
    path = Path(path)
    if path.is_dir():
        for child in path.iterdir():
            share_like_umask(child)
        os.chmod(path, 0o777 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def atomic_write(path: Path, write: Callable[[BinaryIO], Any], *advice: str) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file;
    a full disk or a read-only folder is a one-line ``WriteError`` (``advice``: what to do,
    as ``writing`` takes it) and leaves no temp file.

    ``write`` fills a buffer that is then written as one: given a real file, Pillow's encoders
    write to its descriptor and drop a short write on a full disk without a word."""
    path = Path(path)
    with writing(path, *advice):
        buffer = io.BytesIO()
        write(buffer)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            share_like_umask(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# The temp files of ``atomic_write`` (``mkstemp``: ``.NAME.`` and eight random characters).
_TEMP_FILE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}")


def atomic_write_target(name: str) -> str | None:
    """The file whose ``atomic_write`` left a temp file called ``name``; None for any other."""
    match = _TEMP_FILE.fullmatch(name)
    return match["name"] if match else None


def remove_stale_temp_files(*folders: Path) -> None:
    """Remove the temp files that a process killed inside ``atomic_write`` left in
    ``folders``; only for folders whose one writer is the caller (a locked run folder)."""
    for folder in folders:
        for path in Path(folder).glob(".*"):
            if atomic_write_target(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)


# A temp file (or folder) this old is a killed write's: a live write renames its own within
# seconds, or keeps writing to it (a video), which keeps it younger.
KILLED_AFTER_S = 3600


def temp_sibling(path: Path) -> Path:
    """A hidden, unique name beside ``path`` to write it under before the rename. It ends in
    the target's suffix, which video encoders choose the format by; ``remove_killed_writes``
    knows it."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{path.suffix}")


_TEMP_SIBLING = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}(?P<suffix>.*)")


def remove_killed_writes(paths: Iterable[Path]) -> None:
    """Remove the ``temp_sibling`` files that killed writes of ``paths`` left (an image, or a
    whole video: gigabytes), once they are an hour old. Only the names given are looked at, so
    processes that write other files of a folder (ranks of a job) never touch each other's."""
    wanted: defaultdict[Path, set[str]] = defaultdict(set)
    for path in paths:
        wanted[Path(path).parent].add(Path(path).name)
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:  # not made yet, or unreadable: nothing of ours is there
            continue
        for entry in entries:
            match = _TEMP_SIBLING.fullmatch(entry.name)
            if not match or match["name"] not in names:
                continue
            if match["suffix"] != Path(match["name"]).suffix:
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
                if (
                    entry.is_file(follow_symlinks=False)
                    and time.time() - stat.st_mtime > KILLED_AFTER_S
                ):
                    os.unlink(entry.path)
            except OSError:  # gone meanwhile, or not ours to remove
                continue


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` and make it durable. Serialisers that write files themselves hide the
    reason of a failed write (torch.save: "unexpected pos"), so files get bytes from here."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
