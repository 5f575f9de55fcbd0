"""The run folder: who may write it, and its ``config.json`` (what the run is, to resume and
export it).

One training at a time, and only into a new, empty or own folder.

A training holds an advisory lock (``flock``) on ``RUN/.i2i-lock`` for its whole life, so a
second training or resume of the same folder stops at once with one line naming the holder,
instead of interleaving its log, config and checkpoints with the first. A new training starts
only in a folder that does not exist or is empty: one holding a run (``--resume`` it), an
exported model or any other file is refused before anything is written, with the way out.
The lock dies with its process (even on ``kill -9``), so a stale lock file never blocks anyone;
where there is no ``flock`` (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import socket
import sys
import time
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from i2i.core.errors import I2IError, I2IWarning, InvalidArgumentError, WriteError
from i2i.core.files import atomic_write_text, remove_stale_temp_files
from i2i.kit.config import PATH_OPTIONS
from i2i.models.checkpoint import RUN_CONFIG, latest_checkpoint, read_run_config

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".i2i-lock"


class RunFolderBusy(I2IError):
    """Another process is training in this run folder."""


class RunFolder:
    """A run folder this process writes; ``release`` when the training ends."""

    def __init__(self, path: Path, created: bool = False) -> None:
        self.path = path
        self._created = created
        # A new training that found the folder empty under its lock: all in it is its own.
        self.owns_all = False
        self._unlock: weakref.finalize | None = None

    def lock(self, resume: bool) -> None:
        """Hold the folder's lock, or raise ``RunFolderBusy`` naming the holder."""
        fd = _lock(self.path, resume)
        # Closing the descriptor releases the flock: at release(), or when this object goes
        # (a Trainer made but never trained), or with the process.
        self._unlock = weakref.finalize(self, os.close, fd) if fd is not None else None

    def release(self, failed: bool = False) -> None:
        """Give the folder up: the lock file goes, and so does a folder this run made but
        never wrote (a training that failed while setting up leaves nothing behind).

        ``failed``: a new training that failed before its first checkpoint also takes back
        what it wrote (config, logs), so that the same command, corrected, starts again
        instead of meeting a run that cannot be resumed either."""
        if failed and self.owns_all and self._unlock is not None and self._unlock.alive:
            with contextlib.suppress(OSError, I2IError):
                if latest_checkpoint(self.path) is None:
                    for child in self.path.iterdir():
                        if child.name == LOCK_FILE:
                            continue
                        if child.is_dir() and not child.is_symlink():
                            shutil.rmtree(child)
                        else:
                            child.unlink()
        if self._unlock is not None and self._unlock.alive:
            with contextlib.suppress(OSError):
                (self.path / LOCK_FILE).unlink()
            self._unlock()
        if self._created:
            self._created = False
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only if empty

    def check_still_there(self, cause: BaseException | None = None) -> None:
        """Raise a one-line ``WriteError`` if the folder was deleted or moved while training.
        Writing on would make a folder of loose files that no --resume reads, and the advice
        for a folder that cannot be written (make it writable) would not help."""
        if not (self.path / RUN_CONFIG).is_file():
            raise WriteError(
                f"the run folder {self.path} is gone (deleted or moved while training); move "
                f"it back and --resume the run, or start the training again"
            ) from cause

    @contextlib.contextmanager
    def released_on_error(self) -> Iterator[RunFolder]:
        try:
            yield self
        except BaseException:
            self.release(failed=True)
            raise


def quoted(path: Path | str) -> str:
    """A path as it is typed in a shell command (suggested commands are copy-pasted)."""
    return shlex.quote(str(path))


def record_config(run_dir: Path, config: dict[str, Any], resuming: bool) -> None:
    """Write config.json; on resume, say which (resumable) options changed: it records them."""
    if resuming:
        recorded = read_run_config(run_dir)
        old = recorded["options"]
        changed = [
            f"--{k.replace('_', '-')} {old[k]!r} -> {v!r}"
            for k, v in config["options"].items()
            if k in old and k not in PATH_OPTIONS and old[k] != v
        ]
        if changed:
            print(f"resuming with {', '.join(changed)}", flush=True)
        before, now = recorded.get("images_per_epoch"), config.get("images_per_epoch")
        if isinstance(before, int) and before != now:  # images added to or taken from --data
            warnings.warn(
                f"the data now gives {now} images per epoch, {before} when the run last trained: "
                f"from here its epochs, its data order and a learning-rate schedule counted in "
                f"epochs are not the run's",
                I2IWarning,
                stacklevel=2,
            )
    atomic_write_text(run_dir / RUN_CONFIG, json.dumps(config, indent=2))


def claim_run_folder(out: str | None, resume: str | None, task: str) -> RunFolder:
    """The run folder of a training of ``task``: ``resume``'s, ``out``, or a new
    ``runs/<task>-<time>``; locked for this process on rank 0 (the only writer)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return RunFolder(Path(resume or out or "."))
    if resume:
        folder = RunFolder(Path(resume))
        folder.lock(resume=True)
        path = folder.path
        remove_stale_temp_files(path, path / "samples", path / "checkpoints")
        return folder
    if not out:
        folder = _new_default_folder(task)
    else:
        path = Path(out)
        _refuse_to_start_in(path, task, locked=False)
        created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidArgumentError(
                f"cannot create the run folder {path}: {error.strerror or error}; choose "
                f"another --out"
            ) from None
        folder = RunFolder(path, created)
    with folder.released_on_error():
        folder.lock(resume=False)
        _refuse_to_start_in(folder.path, task, locked=True)  # what arrived before the lock
    folder.owns_all = True
    return folder


def _new_default_folder(task: str) -> RunFolder:
    """``runs/<task>-<time>``, or with ``-2``, ``-3``... when trainings start in one second."""
    base = Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    for attempt in range(1, 1000):
        path = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            continue
        except OSError as error:
            raise InvalidArgumentError(
                f"cannot create the run folder {path}: {error.strerror or error}; pass --out"
            ) from None
        return RunFolder(path, created=True)
    raise InvalidArgumentError(f"too many runs named {base}*; pass --out")


def _refuse_to_start_in(path: Path, task: str, locked: bool) -> None:
    """A new training writes only into a new or empty folder; anything else is refused with
    what the folder holds and the way out."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise InvalidArgumentError(f"--out {path} is a file, not a folder; choose another --out")
    try:
        entries = sorted(p.name for p in path.iterdir() if p.name != LOCK_FILE)
    except OSError as error:
        raise InvalidArgumentError(
            f"cannot read the run folder {path}: {error.strerror or error}; choose another --out"
        ) from None
    if not entries:
        return
    if not locked and LOCK_FILE in os.listdir(path):
        _lock(path, resume=False, probe=True)  # a training is filling it: say whose
    kind = _what_is(path)
    if kind == task:
        raise InvalidArgumentError(
            f"{path} already holds a {task} run; continue it with "
            f"`i2i train {task} --resume {quoted(path)}`, or choose another --out"
        )
    if kind == "model":
        raise InvalidArgumentError(
            f"{path} is an exported model; training never writes into a model folder, so "
            f"choose another --out"
        )
    if kind:
        raise InvalidArgumentError(
            f"{path} holds a {kind} run, not a {task} one; choose another --out (or continue "
            f"that run with `i2i train {kind} --resume {quoted(path)}`)"
        )
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise InvalidArgumentError(
        f"{path} is not empty (it holds {shown}); a training starts only in a new or empty "
        f"folder, so choose another --out"
    )


def _what_is(path: Path) -> str | None:
    """The task of the run in ``path``, ``"model"`` for a model folder, else None."""
    from i2i.models.safefiles import read_json

    try:
        config = read_json(path / RUN_CONFIG, path)
    except I2IError:
        return None
    if not isinstance(config, dict):
        return None
    if config.get("format") == "i2i-model":
        return "model"
    task = config.get("task")
    return task if isinstance(task, str) and isinstance(config.get("options"), dict) else None


def _lock(path: Path, resume: bool, probe: bool = False) -> int | None:
    """Hold ``path/LOCK_FILE`` for this process (its fd), or raise ``RunFolderBusy`` naming the
    holder. ``probe``: only check that nobody holds it."""
    if fcntl is None:
        return None
    lock_path = path / LOCK_FILE
    for _ in range(10):
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            if probe:
                return None
            what = "make it writable to resume it" if resume else "choose another --out"
            raise InvalidArgumentError(
                f"cannot write in the run folder {path}: {error.strerror or error}; {what}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderBusy(_busy_message(path, resume)) from None
            print(
                f"warning: {path}'s file system has no advisory locks ({error.strerror}); "
                f"nothing stops a second training from writing into it",
                file=sys.stderr,
            )
            return None
        # The holder before us may have removed the file between our open and our lock:
        # then we hold a lock on a file nobody else can find, so try again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path, follow_symlinks=False))
        except OSError:
            same = False
        if not same:
            os.close(fd)
            continue
        if probe:
            os.close(fd)  # nobody held it; the lock file is a stale one
            return None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        return fd
    raise RunFolderBusy(_busy_message(path, resume))


def _busy_message(path: Path, resume: bool) -> str:
    holder: Any = {}
    with contextlib.suppress(OSError, ValueError):
        holder = json.loads((path / LOCK_FILE).read_text()[:1000])
    who = "another process"
    if isinstance(holder, dict) and holder.get("pid"):
        who = f"process {holder['pid']} on {holder.get('host', '?')} (since {holder.get('since')})"
    then = "resume it" if resume else "start another training there, or choose another --out"
    return (
        f"{path} is in use by a training in {who}; wait for it to finish (or stop it) "
        f"before you {then}"
    )
