"""The run folder: where a run goes, and its ``config.json`` (what the run is, to resume and
export it)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from i2i.core.errors import InvalidArgumentError
from i2i.kit.config import PATH_OPTIONS
from i2i.models.checkpoint import RUN_CONFIG, atomic_write_text, read_run_config


def choose_run_dir(out: str | None, resuming: bool, task_name: str) -> Path:
    """``--out``, else ``runs/<task>-<time>``; a new run never takes over a folder holding one."""
    if out:
        run_dir = Path(out)
    else:
        run_dir = Path("runs") / f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not resuming and any((run_dir / "checkpoints").glob("step_*")):
        raise InvalidArgumentError(
            f"{run_dir} already holds a training run; continue it with --resume {run_dir} "
            f"or choose another --out"
        )
    return run_dir


def record_config(run_dir: Path, config: dict[str, Any], resuming: bool) -> None:
    """Write config.json; on resume, say which (resumable) options changed: it records them."""
    if resuming:
        old = read_run_config(run_dir)["options"]
        changed = [
            f"--{k.replace('_', '-')} {old[k]!r} -> {v!r}"
            for k, v in config["options"].items()
            if k in old and k not in PATH_OPTIONS and old[k] != v
        ]
        if changed:
            print(f"resuming with {', '.join(changed)}", flush=True)
    atomic_write_text(run_dir / RUN_CONFIG, json.dumps(config, indent=2))
