"""Sample grids: titles stay over their own column, captions inside the grid."""

from __future__ import annotations

import numpy as np
import torch

from i2i.viz import image_grid


def test_a_long_title_wraps_inside_its_column():
    tile = torch.zeros((1, 3, 32, 32))
    titles = ["cyclegan-quality-l0123.ink.s0", ""]
    grid = np.array(image_grid([(titles, [tile, tile])], pad=2, min_tile=96))
    short = np.array(image_grid([(["input", ""], [tile, tile])], pad=2, min_tile=96))
    assert grid.shape[0] > short.shape[0]  # the title took a second line
    head = grid.shape[0] - 96 - 4  # the title rows above the tiles
    second_column = grid[:head, 2 + 96 + 2 :]
    assert (second_column == 255).all()  # nothing ran over into the empty title
    assert (grid[:head, : 2 + 96] != 255).any()  # the long title is drawn


def test_a_long_caption_wraps_inside_the_grid():
    """A narrow grid (CUT's three columns) under a caption of step and eval metrics."""
    tile = torch.zeros((1, 3, 32, 32))
    caption = "step 1000  " + " ".join(f"metric_{i}=0.123" for i in range(8))
    grid = np.array(image_grid([(["a", "b"], [tile, tile])], caption=caption, min_tile=64))
    short = np.array(image_grid([(["a", "b"], [tile, tile])], caption="step 1", min_tile=64))
    extra = grid.shape[0] - short.shape[0]
    assert extra >= 2 * 12  # three lines or more
    bar = grid[: 16 + extra]
    assert (bar[:, -3:] == 255).all()  # no text cut at the right edge
    assert (bar[-12:] != 255).any()  # the last line is drawn


def test_sample_grid_titles_name_the_domains():
    from i2i.train.outputs import _named

    panels = [(["real A", "fake B", "G(real B)"], [1, 2, 3]), (["input", "output"], [4, 5])]
    named = _named(panels, {"A": "day", "B": "night"})
    assert named == [
        (["real day", "fake night", "G(real night)"], [1, 2, 3]),
        (["input", "output"], [4, 5]),
    ]
