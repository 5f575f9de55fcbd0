"""The built-in toy dataset: procedurally drawn day (A) and night (B) landscapes.

It exists so that ``i2i train`` works out of the box, offline, and so that tests and tutorials
have data. Both domains draw their geometry (horizon, sun or moon, hills) from one distribution
and differ mostly in palette, which is exactly the kind of mapping a tiny CycleGAN learns in a
few CPU minutes. Images are unpaired: every image has its own random geometry. For benchmarks,
``make_toy_pairs`` draws held-out scenes by day and by night, a known answer.
"""

from __future__ import annotations

import colorsys
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from i2i.core.errors import InvalidArgumentError

__all__ = ["Disc", "cached_folder", "make_toy_pairs", "make_toy_unpaired", "toy_dataset_dir"]

# Bump when the drawing changes, so cached copies are regenerated instead of silently reused.
TOY_VERSION = 1
_STAMP = ".i2i-toy"
_SUPERSAMPLE = 4  # drawn larger then box-filtered down, for smooth edges at 64 px
_DOMAINS = {"A": 0, "B": 1}
_SPLITS = {"train": 0, "test": 1}
# The pairs' streams are (seed, _PAIRS, index): a third "domain" beside A's and B's, so no pair is
# an unpaired image (numpy's seed sequences ignore trailing zeros: (0, 0) is (0, 0, 0, 0)).
_PAIRS = 2


class Disc(NamedTuple):
    """Where a scene's sun (or moon) is: centre and radius, as fractions of the side, and how
    much of it the hills leave to be seen (a ridge can rise in front of a low sun)."""

    x: float
    y: float
    radius: float
    visible: float


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h / 360.0, s, v), dtype=np.float32)


def _mix(a: np.ndarray, b: np.ndarray | float, t: float | np.ndarray) -> np.ndarray:
    return a + (b - a) * t


def _render(rng: np.random.Generator, size: int, night: bool) -> tuple[np.ndarray, Disc]:
    """One scene as uint8 (size, size, 3), and its disc.

    Geometry is drawn first, with the same calls for both domains, so that its distribution is
    identical, and two streams in the same state draw the same geometry by day and by night;
    only colours (and the night's stars) depend on the domain.
    """
    n = size * _SUPERSAMPLE
    coords = ((np.arange(n) + 0.5) / n).astype(np.float32)
    y, x = coords[:, None], coords[None, :]

    # geometry
    horizon = rng.uniform(0.42, 0.62)
    disc_x, disc_y = rng.uniform(0.12, 0.88), rng.uniform(0.1, horizon - 0.1)
    disc_r = rng.uniform(0.06, 0.1)
    n_layers = int(rng.integers(2, 4))
    ridges = []
    for k in range(n_layers):
        base = horizon + (0.92 - horizon) * k / n_layers
        profile = np.zeros_like(x)
        for _ in range(3):
            freq, phase = rng.uniform(0.6, 3.2), rng.uniform(0, 2 * np.pi)
            profile = profile + rng.uniform(0.02, 0.07) * np.sin(2 * np.pi * freq * x + phase)
        ridges.append(base - rng.uniform(0.03, 0.1) + profile)

    # palette
    if night:
        sky_top = _hsv(rng.uniform(220, 240), rng.uniform(0.6, 0.85), rng.uniform(0.06, 0.14))
        sky_low = _hsv(rng.uniform(225, 265), rng.uniform(0.45, 0.7), rng.uniform(0.22, 0.34))
        disc_colour = _hsv(rng.uniform(40, 60), rng.uniform(0.04, 0.12), rng.uniform(0.88, 0.97))
        glow_colour, glow_strength = _hsv(215, 0.3, 0.7), 0.25
        hill_hues, hill_sat, hill_val = (205, 240), (0.15, 0.5), (0.1, 0.28)
    else:
        sky_top = _hsv(rng.uniform(198, 222), rng.uniform(0.45, 0.75), rng.uniform(0.8, 0.95))
        sky_low = _mix(sky_top, _hsv(rng.uniform(30, 50), 0.15, 1.0), rng.uniform(0.55, 0.85))
        disc_colour = _hsv(rng.uniform(46, 56), rng.uniform(0.65, 0.85), 1.0)
        glow_colour, glow_strength = _hsv(45, 0.5, 1.0), 0.45
        hill_hues, hill_sat, hill_val = (85, 135), (0.35, 0.7), (0.3, 0.65)

    # sky, with a soft glow around the disc
    image = _mix(sky_top, sky_low, np.clip(y / horizon, 0, 1)[..., None]) + np.zeros(
        (1, n, 1), np.float32
    )
    dist = np.hypot(x - disc_x, y - disc_y)
    glow = glow_strength * np.exp(-np.maximum(dist - disc_r, 0) / (1.5 * disc_r))
    image = _mix(image, glow_colour, glow[..., None])

    if night:
        for _ in range(int(rng.integers(6, 14))):
            sx, sy = rng.uniform(0.02, 0.98), rng.uniform(0.02, horizon)
            radius = rng.uniform(0.6, 1.1) / size
            brightness = rng.uniform(0.6, 1.0)
            rows = slice(max(int((sy - 2 * radius) * n), 0), int((sy + 2 * radius) * n) + 1)
            cols = slice(max(int((sx - 2 * radius) * n), 0), int((sx + 2 * radius) * n) + 1)
            star = np.clip(1.5 - np.hypot(x[:, cols] - sx, y[rows] - sy) / radius, 0, 1)
            image[rows, cols] = _mix(image[rows, cols], 1.0, (brightness * star)[..., None])

    image = _mix(image, disc_colour, (dist < disc_r)[..., None])

    # hills, far to near: far layers fade towards the sky, every ridge is lit from above
    disc = dist < disc_r
    in_sight = disc & (y < np.min(ridges, axis=0))
    for k, ridge in enumerate(ridges):
        hues = (22, 38) if not night and rng.random() < 0.3 else hill_hues  # some brown fields
        colour = _hsv(rng.uniform(*hues), rng.uniform(*hill_sat), rng.uniform(*hill_val))
        fade = 0.55 * (1 - (k + 1) / n_layers)
        colour = _mix(colour, sky_low, fade)
        depth = np.clip((y - ridge) / 0.35, 0, 1)
        shaded = colour * (1.12 - 0.35 * depth)[..., None]
        image = np.where((y >= ridge)[..., None], shaded, image)

    image = image.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    pixels = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return pixels, Disc(
        float(disc_x), float(disc_y), float(disc_r), float(in_sight.sum() / disc.sum())
    )


def make_toy_unpaired(
    root: str | os.PathLike[str],
    n_train: int = 200,
    n_test: int = 8,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write ``root/{trainA,trainB,testA,testB}/NNNN.png``; the same seed gives the same files.

    Every image has its own random stream (seed, domain, split, index), so changing ``n_train``
    does not change the test images and each image can be regenerated on its own.
    """
    root = Path(root)
    for split, count in (("train", n_train), ("test", n_test)):
        for domain, domain_id in _DOMAINS.items():
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                rng = np.random.default_rng([seed, domain_id, _SPLITS[split], i])
                pixels, _ = _render(rng, size, night=domain == "B")
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def make_toy_pairs(
    day: str | os.PathLike[str],
    night: str | os.PathLike[str],
    n: int = 64,
    size: int = 64,
    seed: int = 0,
) -> list[Disc]:
    """Write ``day/NNNN.png`` and ``night/NNNN.png``, each pair one scene by day and by night.

    A known answer for day -> night: the night has the day's horizon, hills and disc, with the
    night's palette (drawn at random, like the training nights') and stars, so a translation can
    be scored against it, and on whether it drew the moon where the sun was. Returns the discs;
    the streams are apart from ``make_toy_unpaired``'s, so no pair is a training image.
    """
    folders = Path(day), Path(night)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    discs = []
    for i in range(n):
        for folder, is_night in zip(folders, (False, True), strict=True):
            pixels, disc = _render(np.random.default_rng([seed, _PAIRS, i]), size, night=is_night)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")
        discs.append(disc)
    return discs


def _cache_home() -> Path:
    home = os.environ.get("I2I_HOME")
    return Path(home) if home else Path.home() / ".cache" / "i2i"


def _is_current(folder: Path, stamp_text: str) -> bool:
    stamp = folder / _STAMP
    return stamp.is_file() and stamp.read_text() == stamp_text


def cached_folder(name: str, version: str, build: Callable[[Path], object]) -> Path:
    """``$I2I_HOME/<name>`` built once by ``build(folder)`` and reused while ``version`` holds.

    It is built in a temporary folder beside the target and renamed into place, so a killed
    run never leaves half a dataset, and concurrent first runs (several ranks) simply let one
    rename win. A copy from another version is replaced.
    """
    stamp_text = f"{name} {version}\n"
    target = _cache_home() / name
    if _is_current(target, stamp_text):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    except OSError as error:
        raise InvalidArgumentError(
            f"cannot write the cache folder {target.parent} ({error.strerror or error}); set "
            f"I2I_HOME to a folder you can write"
        ) from None
    try:
        build(tmp)
        (tmp / _STAMP).write_text(stamp_text)
        if target.exists() and not _is_current(target, stamp_text):
            stale = Path(tempfile.mkdtemp(prefix=f".{name}-stale-", dir=target.parent))
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                target.rename(stale / name)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; its copy is as good as ours
            if not _is_current(target, stamp_text):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def toy_dataset_dir() -> Path:
    """The default unpaired day/night toy dataset, generated on first use."""
    return cached_folder("toy", f"version {TOY_VERSION}", make_toy_unpaired)
