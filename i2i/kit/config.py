"""The complete config of a run: declared options, a config file, and a run being resumed.

It lives in the kit, not the trainer, so that ``i2i.create_task(name, resume=RUN)`` resolves
exactly as ``i2i train NAME --resume RUN`` does.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from i2i.core.checks import check_text_path
from i2i.core.errors import CheckpointError, InvalidArgumentError
from i2i.kit.options import parse_keyvalue, read_config_file, resolve
from i2i.models.checkpoint import read_run_config

# Paths that a run stores absolute, so it resumes from any working directory.
PATH_OPTIONS = ("data", "out", "resume")


def _absolute(options: dict[str, Any]) -> dict[str, Any]:
    """Path options made absolute; a value that is no path (a YAML list) is left for the
    option's own check to refuse."""
    for key in PATH_OPTIONS:
        if isinstance(options.get(key), str):
            check_text_path(options[key], f"--{key}")
    absolute = {
        k: _absolute_path(v) if k in PATH_OPTIONS and isinstance(v, str) else v
        for k, v in options.items()
    }
    # --init-from is a folder or a Hub id: a folder that exists is recorded absolute.
    start = absolute.get("init_from")
    if isinstance(start, str) and start.strip() and _exists(Path(start).expanduser()):
        absolute["init_from"] = _absolute_path(start)
    return absolute


def _absolute_path(path: str) -> str:
    """``path`` absolute, with ``..`` and ``.`` resolved as the shell does (printed and recorded
    paths are read by people)."""
    return os.path.abspath(Path(path).expanduser())


def _exists(path: Path) -> bool:
    """``path.exists()``, false for a name the system refuses (too long), which the option's
    user is then told about where it is read."""
    try:
        return path.exists()
    except OSError:
        return False


def _aliased(task_cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Values the task reads as other names (``Task.option_aliases``), wherever they came from:
    a flag, a config file, a recipe or a default."""
    aliases = task_cls.option_aliases
    return {
        k: aliases[k].get(v, v) if k in aliases and isinstance(v, str) else v
        for k, v in options.items()
    }


def resolve_task_config(
    task_cls: Any, given: dict[str, Any], config_file: str | Path | None = None
) -> dict[str, Any]:
    """The complete config of a run from flags, a config file or a run being resumed.

    Resuming is explicit: an option that changes the maths (learning rate, schedule, data,
    sizes, networks, losses) and differs from the run's is refused with the differences;
    the others (``Option.resumable``: intervals, logging, devices) are applied.
    """
    task = task_cls.name
    options = task_cls.declared_options()
    # A recipe's values read as the given ones do: UNSB's "projected" and a flag's are one.
    recipes = {
        name: replace(recipe, values=_aliased(task_cls, recipe.values))
        for name, recipe in task_cls.recipes.items()
    }
    from_file = _aliased(task_cls, _absolute(read_config_file(config_file) if config_file else {}))
    given = _aliased(task_cls, _absolute(given))
    if from_file.get("resume") and not given.get("resume"):  # `resume:` in the file is --resume
        given["resume"] = from_file["resume"]
    if not given.get("resume"):
        config = resolve(options, given, from_file, task_cls.toy_defaults, recipes, task)
        return _aliased(task_cls, config)
    run_dir = Path(given["resume"])
    run = read_run_config(run_dir)
    if run.get("task") != task:
        raise CheckpointError(
            f"{run_dir} is a {run.get('task')!r} run; resume it with "
            f"`i2i train {run.get('task')} --resume {run_dir}`"
        )
    known = {o.name for o in options}
    saved = resolve(options, {}, _absolute({k: v for k, v in run["options"].items() if k in known}))
    # The run's recipe was applied when it started: its values are in config.json, and the
    # recipe may have changed since, so it is not applied again. Options given now read as they
    # would have then (``--gen-kw`` merges with the run's, which hold the recipe's), so the
    # command that started the run resumes it. Only another recipe, asked for now, applies
    # (and is refused with what it would change).
    asked = {**from_file, **given}
    other_recipe = asked.get("recipe") not in (None, saved.get("recipe"))
    if not other_recipe:
        given = {
            **given,
            **{
                o.name: {**saved[o.name], **parse_keyvalue(given[o.name], o.flag)}
                for o in options
                if o.keyvalue and given.get(o.name) is not None and saved.get(o.name)
            },
        }
    config = resolve(
        options,
        given,
        {**saved, **from_file},
        toy_defaults=task_cls.toy_defaults,
        recipes=recipes if other_recipe else None,
        task=task,
    )
    config = _aliased(task_cls, config)
    config["out"] = config["resume"] = str(run_dir)
    # A recipe asked for now would set more than the differences above show (the run's own
    # values stand in for it): what a new run with it would train with, for the refusal.
    recipe = config.get("recipe")
    fresh = {}
    if recipe != saved.get("recipe") and recipe in recipes:
        flags = {k: v for k, v in given.items() if k not in ("resume", "out")}
        fresh = resolve(
            options, {**flags, "recipe": recipe, "data": saved.get("data")}, from_file,
            toy_defaults=task_cls.toy_defaults, recipes=recipes, task=task,
        )  # fmt: skip
        fresh = {k: fresh[k] for k in recipes[recipe].values if k in fresh}
    _refuse_changes(options, saved, {**config, **fresh}, asked, run_dir, task)
    return config


def _refuse_changes(
    options: list[Any],
    saved: dict[str, Any],
    config: dict[str, Any],
    asked: dict[str, Any],
    run_dir: Path,
    task: str,
) -> None:
    """A resumed run continues the run it was: options that would change its training are
    refused with each difference (old -> new), instead of being ignored or half applied."""
    changed = [
        f"{o.flag} {saved.get(o.name)!r} -> {config[o.name]!r}"
        for o in options
        if not o.resumable and o.name not in ("out", "resume") and config[o.name] != saved[o.name]
    ]
    if asked.get("out") is not None and Path(asked["out"]) != run_dir:
        changed.append(f"--out {str(run_dir)!r} -> {asked['out']!r}")
    if changed:
        raise InvalidArgumentError(
            f"--resume {run_dir} continues that run as it was trained, but these options differ: "
            f"{', '.join(changed)}; drop them to resume, or start a new run with "
            f"`i2i train {task} --out NEW_FOLDER ...` (these may change on resume: "
            f"{' '.join(o.flag for o in options if o.resumable)})"
        )
