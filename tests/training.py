"""The two calls the tests make of the Python API's training, by task name, as ``i2i train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import i2i


def train(task: str, config_file: str | Path | None = None, **options: Any) -> Any:
    """``i2i train TASK --config FILE --flags``: a run's ``TrainResult``."""
    return i2i.fit(i2i.create_task(task, config_file=config_file, **options))


def resolve_config(
    task: str, given: dict[str, Any], config_file: str | Path | None = None
) -> dict[str, Any]:
    """The complete config such a run would record, without training."""
    return i2i.create_task(task, config_file=config_file, **given).config
