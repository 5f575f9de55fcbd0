"""What a MODEL argument names (a Hub id, a model folder or a training run), and its generators,
built and loaded strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from i2i.core.device import resolve_device
from i2i.core.errors import I2IError
from i2i.models.build import build_generators
from i2i.models.export import is_run_folder, run_to_model
from i2i.models.folder import load_model, read_config
from i2i.models.hub import REPO_ID, HubError, pull, split_revision


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


def resolve_model(model: str | Path, revision: str | None = None) -> tuple[str, Path]:
    """("run" | "model", local path) for a run folder, a model folder or a Hub id."""
    path = Path(model)
    if path.exists():
        if is_run_folder(path):
            return "run", path
        read_config(path)
        return "model", path
    text = str(model)
    repo_id, at_revision = split_revision(text)
    if REPO_ID.match(repo_id) and not text.startswith((".", "/")):
        try:
            return "model", pull(repo_id, revision or at_revision)
        except HubError as error:  # it may have been meant as a local folder (runs/NAME)
            raise HubError(f"there is no folder {text!r} here; as a Hub id: {error}") from None
    raise I2IError(f"{model} is not a folder, and not a Hub id of the form USER/REPO[@REVISION]")
