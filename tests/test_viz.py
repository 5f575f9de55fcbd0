"""Sample grids: titles stay over their own column."""

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
