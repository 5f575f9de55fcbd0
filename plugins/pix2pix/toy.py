"""A paired toy dataset for pix2pix: colourisation of the built-in day scenes.

The core toy dataset is unpaired (every image has its own geometry), which pix2pix cannot use.
Here each day scene B gets a partner A computed from it by a fixed rule, its grey version, so
``trainA/NNNN.png`` and ``trainB/NNNN.png`` are an exact input/target pair and the task is to
colour the landscape in. It is derived from the cached day images and cached beside them.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import i2i

__all__ = ["make_toy_paired", "toy_paired_dir"]

TOY_PAIRED_VERSION = 1


def make_toy_paired(source: Path, root: Path) -> Path:
    """Write ``root/{split}A`` (grey) and ``root/{split}B`` (colour) from ``source/{split}A``."""
    for split in ("train", "test"):
        out_a, out_b = root / f"{split}A", root / f"{split}B"
        out_a.mkdir(parents=True, exist_ok=True)
        out_b.mkdir(parents=True, exist_ok=True)
        for path in i2i.find_images(source / f"{split}A"):
            with Image.open(path) as image:
                colour = image.convert("RGB")
            colour.save(out_b / f"{path.stem}.png")
            colour.convert("L").save(out_a / f"{path.stem}.png")
    return root


def toy_paired_dir() -> Path:
    """The grey -> colour toy pairs under ``$I2I_HOME/toy-pix2pix``, made on first use."""
    source = i2i.toy_dataset_dir()
    return i2i.cached_folder(
        "toy-pix2pix", f"version {TOY_PAIRED_VERSION}", lambda root: make_toy_paired(source, root)
    )
