"""How well do two unpaired training sets tell the mean shift that a look makes?

The mean-shift term (``--lambda-shift``, ``i2i/kit/shift.py``) asks each generator to change the
mean colour of each cell of a 4x4 grid by as much as the two training sets differ there. Two
sets of a few hundred *different* photos also differ by chance. For each known-answer look
(``looks.py``), every training image (the centre 64 px of the 72 px images) is observed once
by the term's own statistics, and its target is compared with the look's true shift on the
held-out photos (the mean of ``testB`` minus that of ``testA``, cell by cell):

* ``truth``: the size of the true shift (rms over the cells and channels);
* ``raw_error``: the sets' plain difference against it;
* ``target_error``: the term's target (the difference shrunk by its noise) against it;
* ``raw_bias``, ``target_bias``: the same errors' mean (a brightness error common to every cell).

Values are in the images' [-1, 1] range (half of that in [0, 1]). No training: a minute.

    python3 benchmarks/shift_target.py                          # every look and flaw
    python3 benchmarks/shift_target.py --looks noise,splittone  # some
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from quality_data import each_look, load_folder

SIZE, LOAD = 64, 72


def _centre(images: Any) -> Any:
    edge = (LOAD - SIZE) // 2
    return images[:, :, edge : edge + SIZE, edge : edge + SIZE]


def measure(data: Path) -> dict[str, float]:
    """The target's and the plain difference's errors against the held-out truth."""
    import torch

    import i2i

    train_a, train_b = (_centre(load_folder(data / name)) for name in ("trainA", "trainB"))
    test_a, test_b = (_centre(load_folder(data / name)) for name in ("testA", "testB"))
    shift = i2i.MeanShift(3, torch.device("cpu"), (len(train_a), len(train_b)))
    for a, b in zip(train_a.split(50), train_b.split(50), strict=False):
        shift.observe(a, b)
    cells = shift.cells
    truth = cells(test_b).mean(0) - cells(test_a).mean(0)
    raw = cells(train_b).mean(0) - cells(train_a).mean(0)
    target = shift.target()

    def rms(t: Any) -> float:
        return round(float(t.square().mean().sqrt()), 4)

    return {
        "truth": rms(truth),
        "raw_error": rms(raw - truth),
        "target_error": rms(target - truth),
        "raw_bias": round(float((raw - truth).mean()), 4),
        "target_bias": round(float((target - truth).mean()), 4),
        "n_train": [len(train_a), len(train_b)],
        "n_test": len(test_a),
    }


def main(argv: list[str] | None = None) -> int:
    return each_look(argv, __doc__, "shift_target", measure)


if __name__ == "__main__":
    sys.exit(main())
