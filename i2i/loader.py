"""``i2i.load``: one entry point for Hub ids, model folders, ONNX exports and training runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from i2i.hub import resolve_model
from i2i.model import build_generators, load_model, run_to_model


def load_generators(
    model: str | Path,
    *,
    revision: str | None = None,
    device: str = "auto",
    backend: str = "torch",
) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """The model config and its generators per direction, on ``device`` in eval mode."""
    from i2i.train.runtime import resolve_device

    kind, path = resolve_model(model, revision)
    if backend == "onnxruntime":
        from i2i.export_onnx import load_onnx

        return load_onnx(path)
    target = resolve_device(device)
    if kind == "run":
        config, weights, _ = run_to_model(path)
        return config, build_generators(config, weights, target)
    return load_model(path, target)


def load(
    model: str | Path,
    *,
    revision: str | None = None,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 4,
    backend: str = "torch",
) -> Any:
    """A ``Translator`` for ``user/repo[@rev]``, a model folder, or a run (its last checkpoint).

    ``backend="onnxruntime"`` runs a folder written by ``i2i export --format onnx``.
    """
    from i2i.apply import Translator

    config, generators = load_generators(model, revision=revision, device=device, backend=backend)
    if backend == "onnxruntime":
        device = "cpu"
    return Translator(config, generators, device=device, precision=precision, batch_size=batch_size)
