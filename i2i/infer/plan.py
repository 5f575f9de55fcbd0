"""What ``i2i apply`` will translate: inputs (files, folders, globs) expanded into jobs and
checked before anything runs, so that no input is ever an output and no output is written
twice. Files that folders hold but that are neither images nor videos are counted by kind, so
nothing is left out without a word.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from i2i.core.errors import I2IError, count
from i2i.data import IMAGE_EXTENSIONS, find_files, kinds_of
from i2i.infer.video import VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Job:
    """One input and its output; ``index`` is its place in the sorted list of all inputs."""

    index: int
    src: Path
    dst: Path


def _has_magic(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def _glob_root(spec: str) -> Path:
    """The folder a glob searches: its path up to the first wildcard."""
    parts = Path(spec).parts
    fixed = list(itertools.takewhile(lambda part: not _has_magic(part), parts))
    return Path(*fixed) if fixed else Path()


def _earlier_outputs(root: Path, out_dir: Path) -> Callable[[Path], bool]:
    """Whether a file found under ``root`` sits in ``out_dir`` strictly inside it.

    Such files are outputs of an earlier run, and translating them again would nest outputs
    deeper on every run. When ``out_dir`` is ``root`` itself nothing is excluded, so the
    input-is-output check still fires.
    """
    root, out = root.resolve(), out_dir.resolve()
    if out == root or not out.is_relative_to(root):
        return lambda path: False
    return lambda path: path.resolve().is_relative_to(out)


def _expand(
    inputs: Sequence[str | os.PathLike[str]], out_dir: Path
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(source, destination) pairs; a folder keeps relative paths, files and globs just names.

    Also the files that folders hold but that are neither images nor videos, so that the
    report can name what was left out.
    """
    pairs: list[tuple[Path, Path]] = []
    left_out: list[Path] = []
    suffixes = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            skip = _earlier_outputs(path, out_dir)
            found, others = find_files(path, suffixes)
            pairs += [(file, out_dir / file.relative_to(path)) for file in found if not skip(file)]
            left_out += [file for file in others if not skip(file)]
        elif path.is_file():
            pairs.append((path, out_dir / path.name))
        elif _has_magic(str(spec)):
            skip = _earlier_outputs(_glob_root(str(spec)), out_dir)
            for match in sorted(glob.glob(str(spec), recursive=True)):
                found = Path(match)
                wanted = found.is_file() and found.suffix.lower() in suffixes
                if wanted and not skip(found):
                    pairs.append((found, out_dir / found.name))
        else:
            raise I2IError(f"input {spec} does not exist (not a file, a folder or a glob)")
    return pairs, left_out


def _describe(files: list[Path]) -> str:
    """``3 files that are not images or videos by name: .heic (2), .txt (1); convert ...``."""
    what = "an image or a video" if len(files) == 1 else "images or videos"
    verb = "is" if len(files) == 1 else "are"
    return f"{count(len(files), 'file')} that {verb} not {what} by name: {kinds_of(files)}"


def plan(inputs: Sequence[str | os.PathLike[str]], out_dir: Path) -> tuple[list[Job], str | None]:
    """Every job, checked before anything runs: no input is ever an output, no output twice.

    Also a note on the files folders held that are not inputs by name, or None.
    """
    pairs, left_out = _expand(inputs, out_dir)
    if not pairs:
        names = ", ".join(str(i) for i in inputs) or "(no inputs given)"
        kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
        found = f"; the folders hold only {_describe(left_out)}" if left_out else ""
        raise I2IError(f"no images or videos found in {names} (looked for {kinds}){found}")
    sources = {src.resolve() for src, _ in pairs}
    by_dst: dict[Path, Path] = {}
    jobs: list[Job] = []
    for src, dst in pairs:
        key = dst.resolve()
        if key in sources:
            raise I2IError(
                f"the output for {src} would be {dst}, which is an input; inputs are never "
                "overwritten, so choose an output folder outside the input folders"
            )
        if key in by_dst:
            if by_dst[key] != src.resolve():
                raise I2IError(
                    f"{by_dst[key]} and {src} would both be written to {dst}; translate them "
                    "into different output folders"
                )
            continue  # the same file named twice (say, a file and a glob matching it)
        by_dst[key] = src.resolve()
        jobs.append(Job(len(jobs), src, dst))
    return jobs, (f"left out {_describe(left_out)}" if left_out else None)
