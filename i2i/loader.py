"""``i2i.load``: one entry point for Hub ids, model folders and training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from i2i.hub import resolve_model
from i2i.model import build_generators, load_model, run_to_model


def load(
    model: str | Path,
    *,
    revision: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 4,
) -> Any:
    """A ``Translator`` for ``user/repo[@rev]``, a model folder, or a run (its last checkpoint)."""
    from i2i.apply import Translator
    from i2i.train.runtime import resolve_device

    kind, path = resolve_model(model, revision)
    target = resolve_device(device)
    if kind == "run":
        config, weights, _ = run_to_model(path)
        generators = build_generators(config, weights, target)
    else:
        config, generators = load_model(path, target)
    return Translator(config, generators, device=device, precision=precision, batch_size=batch_size)
