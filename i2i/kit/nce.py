"""PatchNCE's options and layer list, shared by the tasks that keep content with it (CUT,
FastCUT, UNSB): declared once, so that their flags mean the same in each."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from i2i.core.errors import InvalidArgumentError
from i2i.kit.options import OptionGroup, option


@dataclass(frozen=True)
class PatchNCEOptions(OptionGroup):
    """A task's PatchNCE settings: subclass it for the task's own group (read by the task)."""

    lambda_nce: float = option(1.0, "Weight of the PatchNCE loss.", minimum=0)
    nce_idt: bool = option(
        True, "Identity NCE term on domain B (the output made from B keeps B's patches)."
    )
    nce_layers: str = option(
        "0,4,8,12,16",
        "Generator layers for PatchNCE, comma-separated: numbers as the generator counts its "
        "layers (CUT: its `model` sequence; UNSB: encoder modules, then residual blocks) or "
        "submodule names (model.4).",
    )
    num_patches: int = option(256, "Patches per layer and image.", minimum=1)
    nce_temperature: float = option(0.07, "PatchNCE temperature.", minimum=1e-6)
    nce_channels: int = option(256, "Width of the projection head's MLPs.", minimum=1)
    nce_negatives: str = option(
        "image",
        "Negatives from the same image, or from the whole batch.",
        choices=("image", "batch"),
    )


def nce_layers(text: str) -> list[int | str]:
    """``"0,4,8"`` -> ``[0, 4, 8]`` (layer numbers); ``"model.1,model.4"`` -> submodule names,
    as ``i2i.extract_features`` takes them."""
    items = [item.strip() for item in text.split(",")]
    if "" in items:
        raise InvalidArgumentError(
            f"--nce-layers takes comma-separated layer indices or submodule names (0,4,8 or "
            f"model.1,model.4), got {text!r}"
        )
    return [int(item) if re.fullmatch(r"[+-]?\d+", item) else item for item in items]


def probe_features(
    generator: nn.Module, features: Callable[[], list[torch.Tensor]], layers: str, gen: str
) -> list[torch.Tensor]:
    """``features()`` of ``generator`` on one example, in eval mode and without gradients (their
    widths size the projection head); a layer it lacks is an error in the flags' terms."""
    was_training = generator.training
    generator.eval()
    try:
        with torch.no_grad():
            return features()
    except InvalidArgumentError as error:
        raise InvalidArgumentError(
            f"--nce-layers {layers} does not fit --gen {gen}: {error}; give layers it has"
        ) from None
    finally:
        generator.train(was_training)
