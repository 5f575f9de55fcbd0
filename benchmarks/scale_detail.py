"""Photos bigger than a model's training scale: translated at their own size, or at the
model's scale and enlarged with each ``--detail``: the output alone, the input's finer detail
added back, or the network's colour change as a local map of the full-size input.

A model trained at 64 px crops of 72 px loads (``quality.py``'s suite) is applied to the
held-out photos of its look at their own 256 px, where the look's truth is the look of the
256 px photo (``--size 72``: the suite's own size). One JSON line per model: PSNR over returning
the input (dB, the mean over the photos) and seconds per photo for ``own`` (``i2i apply``
without ``--scale``), ``own_local`` (``--detail local``) and ``none``, ``input`` and ``local``
(``--scale model --detail ...``). Never asserts.

    python benchmarks/quality.py --grid GRID --work W ...     # or: i2i train ... --out RUN
    python benchmarks/scale_detail.py --run W/RUN --look dusk --data CACHE/dusk-72
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import i2i

sys.path.insert(0, str(Path(__file__).resolve().parent))
from looks import apply_look, downsample
from quality_data import images_in

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MODES = {
    "own": {},
    "own_local": {"detail": "local"},
    **{d: {"scale": "model", "detail": d} for d in ("none", "input", "local")},
}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def _photo(path: Path, size: int | None = None) -> torch.Tensor:
    """A photo as a float (3, H, W) tensor in [0, 1], read as the suite reads it (``size``:
    shrunk to that square, as the suite builds its data sets)."""
    array = np.array(Image.open(path).convert("RGB"))
    photo = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    return photo if size is None else downsample(photo, size)


def measure(
    run: Path,
    look: Callable[[torch.Tensor], torch.Tensor],
    photos: list[Path],
    threads: int,
    size: int | None = None,
) -> dict[str, Any]:
    """Each mode's PSNR over the input against ``look`` of the photo, and its seconds."""
    torch.set_num_threads(threads)
    models = {mode: i2i.load(str(run), device="cpu", **kw) for mode, kw in MODES.items()}
    gains: dict[str, list[float]] = {mode: [] for mode in MODES}
    seconds = dict.fromkeys(MODES, 0.0)
    identity = []
    for path in photos:
        x = _photo(path, size)
        truth = (look(x) * 255).round() / 255  # what a look written to 8 bits gives
        identity.append(_psnr(x, truth))
        for mode, model in models.items():
            start = time.perf_counter()
            out = model(x[None] * 2 - 1, direction="AtoB")[0]
            seconds[mode] += time.perf_counter() - start
            out = ((out + 1) / 2 * 255).round() / 255  # as apply writes it
            gains[mode].append(_psnr(out, truth) - identity[-1])
    return {
        "identity_psnr": round(float(np.mean(identity)), 3),
        **{f"{mode}_db": round(float(np.mean(v)), 3) for mode, v in gains.items()},
        **{f"{mode}_s": round(s / len(photos), 4) for mode, s in seconds.items()},
        "photos": len(photos),
        "size": list(_photo(photos[0], size).shape[1:]),
    }


def write_figure(
    run: Path, look: Callable[[torch.Tensor], torch.Tensor], photo: Path, path: Path
) -> None:
    """The input, each mode, and the truth, for one photo, with titles."""
    from i2i.eval.report import contact_sheet

    x = _photo(photo)
    tiles = [x * 2 - 1]
    for kw in MODES.values():
        tiles.append(i2i.load(str(run), device="cpu", **kw)(x[None] * 2 - 1, direction="AtoB")[0])
    tiles.append(look(x) * 2 - 1)
    titles = ["input", "own size", "own, --detail local"]
    titles += [f"--scale model --detail {d}" for d in list(MODES)[2:]] + ["truth"]
    sheet = contact_sheet(titles, [[t.clamp(-1, 1)] for t in tiles], max(x.shape[1:]))
    sheet.save(path, quality=92)


def held_out_photos(data: Path, shared: Path, n: int) -> list[Path]:
    """The originals of a suite data set's held-out photos (its testA names)."""
    originals = {p.stem: p for p in images_in(shared / "monet2photo" / "testB")}
    names = [p.stem for p in images_in(data / "testA")][:n]
    missing = [name for name in names if name not in originals]
    if missing:
        raise SystemExit(f"no original of {missing[0]} in {shared}/monet2photo/testB")
    return [originals[name] for name in names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run or model folder")
    parser.add_argument("--look", required=True, help="the look it was trained on (looks.py)")
    parser.add_argument("--data", type=Path, required=True, help="its suite data set")
    parser.add_argument("--shared-data", type=Path, default=SHARED)
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--size", type=int, help="shrink the photos to this square first (72: the suite's own)"
    )
    parser.add_argument("--figure", type=Path, help="write the first photo's ways here")
    args = parser.parse_args()
    photos = held_out_photos(args.data, args.shared_data, args.photos)
    record = measure(args.run, lambda x: apply_look(args.look, x), photos, args.threads, args.size)
    if args.figure:
        write_figure(args.run, lambda x: apply_look(args.look, x), photos[0], args.figure)
    print(json.dumps({"benchmark": "scale_detail", "look": args.look, "run": args.run.name,
                      **record, "cpu": platform.processor() or platform.machine()}))  # fmt: skip


if __name__ == "__main__":
    main()
