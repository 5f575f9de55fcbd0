"""What two unpaired training sets tell of a look through their colours alone.

A generator with a colour path (``--gen-kw colour=true``) starts as the linear colour map
between its two training sets (``i2i/kit/colour.py``): the map that gives the A photos' colours
the mean and covariance of the B photos' while moving them least. For each known-answer look
(``looks.py``), this script takes that map from every training image (the task takes up to 256
of each set), applies it to the held-out A photos and scores them against the truth, beside
returning the input and moving only the mean colour:

* ``input_psnr``: returning the input unchanged, in dB against the truth;
* ``mean_only``: the input shifted by the sets' difference of mean colour, dB over the input;
* ``colour_map``: the linear colour map, dB over the input: where a training run starts;
* ``colour_regions``: the map followed by a gain and an offset region by region
  (``i2i.region_maps``, 4x4 cells, each shrunk by its noise, averaged with its mirror cell as
  training flips the images): where a run with ``--gen-kw colour_regions=true`` starts;
* ``colour_turn``: the colour map as a run starts it, turned where the sets' colours tell a
  turn (``i2i.colour_turn``; ``turned``: whether they did), without the regions.

No training: three minutes.

    python3 benchmarks/colour_map.py                      # every look and flaw
    python3 benchmarks/colour_map.py --looks dusk,teal    # some
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quality_data import each_look, load_folder


def measure(data: Path) -> dict[str, Any]:
    """The map from the training sets, scored on the held-out pairs."""
    import torch

    from i2i.eval.statistics import psnr
    from i2i.kit.colour import (
        cell_moments,
        colour_moments,
        colour_pixels,
        colour_turn,
        linear_colour_map,
        region_maps,
    )
    from i2i.nets.resnet import REGION_GRID, RegionMap

    train_a, train_b, test_a, test_b = (
        load_folder(data / name) for name in ("trainA", "trainB", "testA", "testB")
    )
    source, target = colour_moments(train_a), colour_moments(train_b)
    matrix, bias = linear_colour_map(source, target)
    mapped = torch.einsum("ij,njhw->nihw", matrix.float(), test_a) + bias.float()[:, None, None]
    pixels = [torch.stack([colour_pixels(i) for i in s]) for s in (train_a, train_b)]
    turn = colour_turn(source, target, *pixels)
    turned_matrix, turned_bias = linear_colour_map(source, target, turn)
    turned = (
        torch.einsum("ij,njhw->nihw", turned_matrix.float(), test_a)
        + turned_bias.float()[:, None, None]
    )
    cells = [torch.stack([cell_moments(i, REGION_GRID) for i in s]) for s in (train_a, train_b)]
    gain, shift = region_maps(*cells, (matrix, bias), mirrored=True)  # training flips
    regional = RegionMap(len(bias))
    with torch.no_grad():
        regional.gain.copy_(gain[None])
        regional.offset.copy_(shift[None])
        regions = regional(mapped)
    shifted = test_a + (target[0] - source[0]).float()[:, None, None]
    base = float(psnr(test_a, test_b).mean())

    def gain(images: torch.Tensor) -> float:
        return round(float(psnr(images.clamp(-1, 1), test_b).mean()) - base, 2)

    return {
        "input_psnr": round(base, 2),
        "mean_only": gain(shifted),
        "colour_map": gain(mapped),
        "colour_regions": gain(regions),
        "colour_turn": gain(turned),
        "turned": turn is not None,
        "n_train": [len(train_a), len(train_b)],
        "n_test": len(test_a),
    }


def main(argv: list[str] | None = None) -> int:
    return each_look(argv, __doc__, "colour_map", measure)


if __name__ == "__main__":
    sys.exit(main())
