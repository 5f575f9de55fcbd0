"""Example inputs for the demo page, cut out of a model's sample grid (``samples.png``).

A sample grid (:func:`i2i.viz.image_grid`) is white, with text bands (a caption, then one title
row per panel) and rows of image tiles separated by white lines. Each panel shows one direction
(the CycleGAN task draws ``real A | fake B | rec A`` then ``real B | fake A | rec B``; pix2pix
one ``input | output | target`` panel), and the first tile of each row is a real input: those
are the examples, each with the direction its panel shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from i2i.viz import BACKGROUND

# Bands of non-white rows lower than this are text (title_h is 14 px); tiles are at least 64 px.
_MIN_TILE = 24


@dataclass(frozen=True)
class Example:
    """One real input of the sample grid and the index of the panel (direction) it belongs to."""

    image: Image.Image
    panel: int


def _runs(filled: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], filled.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def cut_sample_grid(grid: Image.Image) -> list[Example]:
    """The first tile of every image row of a sample grid, with its panel index."""
    pixels = np.asarray(grid.convert("RGB"))
    ink = np.any(pixels != np.array(BACKGROUND, dtype=pixels.dtype), axis=2)
    examples: list[Example] = []
    panel, in_panel = -1, False
    for top, bottom in _runs(ink.any(axis=1)):
        if bottom - top < _MIN_TILE:  # a caption or a panel's titles: the next tiles start a panel
            in_panel = False
            continue
        if not in_panel:
            panel, in_panel = panel + 1, True
        columns = _runs(ink[top:bottom].any(axis=0))
        if columns and columns[0][1] - columns[0][0] >= _MIN_TILE:
            left, right = columns[0]
            examples.append(Example(grid.crop((left, top, right, bottom)).convert("RGB"), panel))
    return examples


def sample_examples(samples: Path, limit: int = 6) -> list[Example]:
    """Up to ``limit`` example inputs from a sample grid file, alternating between panels."""
    if not samples.is_file():
        return []
    with Image.open(samples) as grid:
        examples = cut_sample_grid(grid)
    seen: dict[int, int] = {}
    ranked = []
    for example in examples:
        seen[example.panel] = seen.get(example.panel, 0) + 1
        ranked.append((seen[example.panel], example.panel, example))
    return [example for *_, example in sorted(ranked, key=lambda r: r[:2])][:limit]
