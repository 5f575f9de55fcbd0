"""Generators from a Hub id, a model folder or a training run, built and loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from i2i.core.device import resolve_device
from i2i.models.build import build_generators
from i2i.models.export import run_to_model
from i2i.models.folder import load_model
from i2i.models.hub import resolve_model


def load_generators(
    model: str | Path, *, revision: str | None = None, device: str = "auto"
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The model config and its generators per direction, on ``device`` in eval mode."""
    kind, path = resolve_model(model, revision)
    target = resolve_device(device)
    if kind == "run":
        config, weights, _ = run_to_model(path)
        return config, build_generators(config, weights, target)
    return load_model(path, target)
