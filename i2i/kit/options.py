"""Training options, declared once and turned into CLI flags, config-file keys and config.json.

A task lists its own ``Option``s; the trainer's common ones are declared here too, so that a
task resolves its whole config without importing the trainer. Precedence, lowest first: option
defaults, the task's toy defaults (only when training on the built-in dataset), a ``--recipe``,
the ``--config`` file, then flags given on the command line. Each value is checked once, here
(type, range, choices), whatever it came from: a flag, a file, a resumed run or Python.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from i2i.core.errors import InvalidArgumentError
from i2i.core.values import parse_value


@dataclass(frozen=True)
class Option:
    """One knob: its config key, default, help and how it appears on the command line."""

    name: str
    default: Any
    help: str
    type: Any = None
    # A switch that sets the opposite of the default, e.g. ``--no-flip`` for ``flip=True``.
    switch: str | None = None
    # KEY=VALUE pairs collected into a dict (``--gen-kw n_blocks=6``).
    keyvalue: bool = False
    choices: tuple[str, ...] | None = None
    # The smallest valid value of a number (inclusive); None: any.
    minimum: float | None = None
    # May differ when a run is resumed: it changes no maths (intervals, logging, devices), so
    # the new value is applied and recorded. Any other option must stay as the run had it.
    resumable: bool = False
    # KEY=VALUE keys the task sets itself, refused in --*-kw: "key" (set by --key), "key=option"
    # (set by another option, "norm=norm_d"), or keys that follow the data (in_channels).
    reserved: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return self.switch or "--" + self.name.replace("_", "-")


TRAINER_OPTIONS: tuple[Option, ...] = (
    Option("data", None, "Dataset folder; omit to train on the built-in toy dataset.", str),
    Option("out", None, "Run folder (default: runs/<task>-<time>).", str),
    Option("resume", None, "Continue the run in this folder from its last checkpoint.", str),
    Option("epochs", 100, "Epochs at the initial learning rate.", int, minimum=0),
    Option(
        "epochs_decay",
        100,
        "Epochs of linear learning-rate decay to zero after that.",
        int,
        minimum=0,
    ),
    Option(
        "max_steps",
        None,
        "Stop after this many steps in total (checkpoint saved).",
        int,
        minimum=0,
        resumable=True,
    ),
    Option("batch_size", 1, "Images per domain per step (per GPU under torchrun).", int, minimum=1),
    Option("lr", 2e-4, "Adam learning rate.", float, minimum=0),
    Option(
        "warmup_steps",
        0,
        "Ramp the learning rate up linearly over this many first steps (0: off).",
        int,
        minimum=0,
    ),
    Option("beta1", 0.5, "Adam beta1.", float, minimum=0),
    Option("beta2", 0.999, "Adam beta2.", float, minimum=0),
    Option("load_size", 286, "Resize images to this size before cropping.", int, minimum=1),
    Option("crop_size", 256, "Random crop size (the size the networks train at).", int, minimum=1),
    Option(
        "preprocess",
        "resize_crop",
        "Geometric preprocessing.",
        str,
        choices=("resize_crop", "scale_width", "none"),
    ),
    Option("flip", True, "Turn off random horizontal flips.", bool, switch="--no-flip"),
    Option(
        "augment",
        None,
        "Extra Kornia augmentations, ';'-separated, e.g. 'color_jitter;affine:degrees=5'.",
        str,
    ),
    Option("max_images", None, "Use at most this many images per domain.", int, minimum=1),
    Option("seed", 0, "Random seed (each rank adds its rank).", int),
    Option("device", "auto", "auto, cpu, cuda or cuda:N.", str, resumable=True),
    Option("precision", "fp32", "Autocast precision.", str, choices=("fp32", "bf16", "fp16")),
    Option(
        "compile", False, "torch.compile the networks.", bool, switch="--compile", resumable=True
    ),
    Option(
        "threads",
        None,
        "Torch CPU threads (default: torch's choice, one per core).",
        int,
        minimum=1,
        resumable=True,
    ),
    Option(
        "workers",
        None,
        "DataLoader worker processes (default: 0 on CPU, up to 4 with CUDA).",
        int,
        minimum=0,
        resumable=True,
    ),
    Option(
        "log_every",
        50,
        "Steps between loss lines (the only host syncs).",
        int,
        minimum=1,
        resumable=True,
    ),
    Option("sample_every", 500, "Steps between sample grids.", int, minimum=1, resumable=True),
    Option("save_every", 1000, "Steps between checkpoints.", int, minimum=1, resumable=True),
    Option(
        "eval_every",
        0,
        "Steps between held-out metrics (cycle PSNR/SSIM; 0: off).",
        int,
        minimum=0,
        resumable=True,
    ),
    Option(
        "eval_extractor",
        None,
        "Also FID/KID during eval with this feature extractor.",
        str,
        resumable=True,
    ),
    Option(
        "eval_images",
        16,
        "Held-out images per domain for --eval-every.",
        int,
        minimum=1,
        resumable=True,
    ),
    Option("keep_checkpoints", 2, "How many checkpoints to keep.", int, minimum=1, resumable=True),
    Option(
        "num_samples",
        4,
        "Fixed images per domain in the sample grids.",
        int,
        minimum=1,
        resumable=True,
    ),
    Option(
        "ema_decay",
        0.0,
        "Keep an exponential moving average of the generators with this decay (e.g. 0.999; "
        "0: off); samples, eval and the exported model use the averaged weights.",
        float,
        minimum=0,
    ),
    Option("recipe", None, "A named set of option values (see `i2i describe TASK`).", str),
)


def parse_keyvalue(
    pairs: Iterable[str] | Mapping[str, Any] | str | None, flag: str = "--gen-kw"
) -> dict[str, Any]:
    """``["n_blocks=6", "dropout=true"]`` -> ``{"n_blocks": 6, "dropout": True}``.

    A config file may give a mapping, a list of pairs or one pair; anything else (``gen_kw: 5``)
    is refused with the form expected.
    """
    if pairs is None:
        return {}
    if isinstance(pairs, str):
        pairs = [pairs]
    if isinstance(pairs, Mapping):
        if not all(isinstance(k, str) and k for k in pairs):
            raise InvalidArgumentError(f"{flag} keys must be argument names, got {dict(pairs)!r}")
        return {k.replace("-", "_"): v for k, v in pairs.items()}
    if not isinstance(pairs, list | tuple) or not all(isinstance(p, str) for p in pairs):
        raise InvalidArgumentError(
            f"{flag} takes KEY=VALUE pairs (or a mapping in a config file), got {pairs!r}"
        )
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidArgumentError(f"{flag} expects KEY=VALUE, got {pair!r}")
        parsed = parse_value(value)
        out[key.strip().replace("-", "_")] = parsed
    return out


def _check_reserved(option: Option, kwargs: Mapping[str, Any], names: Iterable[str]) -> None:
    """A --gen-kw key that an option sets (``ngf`` with --ngf) would build one network while
    config.json records another; say which flag to use instead."""
    options = set(names)
    # "key=name": the key is set by option `name`; a bare key by the option of the same name.
    setters = dict(entry.partition("=")[::2] for entry in option.reserved)
    for key, value in kwargs.items():
        if key in setters:
            setter = setters[key] or key
            instead = (
                f"use --{setter.replace('_', '-')} {value}"
                if setter in options
                else "it follows the data (--channels-a/--channels-b)"
            )
            raise InvalidArgumentError(
                f"{option.flag} {key}={value} is set by the task itself; {instead}"
            )


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise InvalidArgumentError(f"cannot read config file {path}: {error.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0]
        raise InvalidArgumentError(f"config file {path} is not valid: {first}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"config file {path} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _coerce(option: Option, value: Any) -> Any:
    """Config files are loosely typed (YAML reads 1e-4 as a string): convert to the option's
    type, or say which option got a value it cannot use."""
    if value is None or option.keyvalue or option.type not in (int, float, bool, str):
        return value
    try:
        if option.type in (int, float) and isinstance(value, bool):
            raise ValueError(value)  # YAML's `batch_size: true` is not a count
        if option.type is bool and isinstance(value, str):
            if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "yes", "1")
        if option.type is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        converted = option.type(value)
        if option.type is float and not math.isfinite(converted):
            raise ValueError(value)  # nan passes every minimum, inf trains nothing useful
        return converted
    except (TypeError, ValueError, OverflowError):
        flag = "--" + option.name.replace("_", "-")
        kind = "a finite float" if option.type is float else option.type.__name__
        raise InvalidArgumentError(f"{flag} must be {kind}, got {value!r}") from None


def resolve(
    options: Iterable[Option],
    given: Mapping[str, Any],
    config_file: Mapping[str, Any] | None = None,
    toy_defaults: Mapping[str, Any] | None = None,
    recipes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The complete config: defaults < toy defaults (no data) < recipe < config file < flags."""
    options = list(options)
    by_name = {o.name: o for o in options}
    config_file = dict(config_file or {})
    unknown = sorted(set(config_file) - set(by_name))
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {', '.join(unknown)} in config file; valid: {', '.join(by_name)}"
        )
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(by_name)}"
        )
    config = {o.name: o.default for o in options}
    chosen = {**config_file, **given}
    if chosen.get("data") is None and toy_defaults:
        config.update({k: v for k, v in toy_defaults.items() if k not in chosen})
    recipe = chosen.get("recipe")
    if recipe is not None:
        recipes = dict(recipes or {})
        if recipe not in recipes:
            raise InvalidArgumentError(
                f"unknown recipe {recipe!r}; available: {', '.join(sorted(recipes)) or 'none'} "
                f"(`i2i describe TASK` lists what each sets)"
            )
        values = recipes[recipe].values
        config.update({k: v for k, v in values.items() if k not in chosen})
        # KEY=VALUE options merge: `--recipe quality --gen-kw padding=zero` keeps antialias.
        for name in set(values) & set(chosen):
            if by_name[name].keyvalue:
                flag = by_name[name].flag
                merged = {
                    **parse_keyvalue(values[name], flag),
                    **parse_keyvalue(chosen[name], flag),
                }
                chosen = {**chosen, name: merged}
    config.update(chosen)
    for name, value in config.items():
        option = by_name[name]
        config[name] = value = _coerce(option, value)
        if option.keyvalue:
            config[name] = parse_keyvalue(value, option.flag)
            _check_reserved(option, config[name], by_name)
        elif option.choices and value is not None and value not in option.choices:
            raise InvalidArgumentError(
                f"--{name.replace('_', '-')} must be one of {', '.join(option.choices)}, "
                f"got {value!r}"
            )
        elif option.minimum is not None and value is not None and value < option.minimum:
            raise InvalidArgumentError(
                f"--{name.replace('_', '-')} must be at least {option.minimum:g}, got {value!r}"
            )
    return config


def task_options(task_cls: Any) -> list[Option]:
    """Trainer options followed by the task's own; a task may redefine a trainer default."""
    own = {o.name: o for o in task_cls.options}
    return [own.pop(o.name, o) for o in TRAINER_OPTIONS] + list(own.values())


def gan_options(
    *, gen: str, disc: str, gan_loss: str, norm: str, dropout: bool, init: str = "normal"
) -> tuple[Option, ...]:
    """The options every GAN task shares (networks, their widths, norms, init, domains), with
    the recipe's own defaults; ``Task.generator_kwargs`` and friends read them."""
    return (
        Option("gen", gen, "Generator (any registered name).", str),
        Option("disc", disc, "Discriminator (any registered name).", str),
        Option(
            "gen_kw",
            None,
            "Extra generator argument KEY=VALUE (repeatable).",
            str,
            keyvalue=True,
            reserved=("in_channels", "out_channels", "ngf", "norm", "dropout", "init", "init_gain"),
        ),
        Option(
            "disc_kw",
            None,
            "Extra discriminator argument KEY=VALUE (repeatable).",
            str,
            keyvalue=True,
            reserved=("in_channels", "ndf", "norm=norm_d", "init", "init_gain"),
        ),
        Option("gan_loss", gan_loss, "GAN objective (any registered loss).", str),
        Option("ngf", 64, "Generator width.", int, minimum=1),
        Option("ndf", 64, "Discriminator width.", int, minimum=1),
        Option("norm", norm, "Normalisation.", str, choices=("instance", "batch", "none")),
        Option(
            "norm_d",
            None,
            "Discriminator normalisation (default: --norm). 'none' keeps the global colour and "
            "contrast statistics that instance norm removes; pair it with spectral norm.",
            str,
            choices=("instance", "batch", "none"),
        ),
        Option(
            "dropout",
            dropout,
            "Turn off dropout in the generators." if dropout else "Use dropout in the generators.",
            bool,
            switch="--no-dropout" if dropout else "--dropout",
        ),
        Option(
            "init",
            init,
            "Weight init.",
            str,
            choices=("normal", "xavier", "kaiming", "orthogonal"),
        ),
        Option("init_gain", 0.02, "Weight init gain.", float, minimum=0),
        Option(
            "lr_d", None, "Discriminator learning rate (TTUR; default: --lr).", float, minimum=0
        ),
        Option(
            "d_augment",
            None,
            "Differentiable augmentation of every image the discriminator sees, real or fake "
            "(DiffAugment), e.g. 'translation,cutout,color'.",
            str,
        ),
        Option("domain_a", "A", "Name of domain A (the input, for paired tasks), e.g. monet.", str),
        Option("domain_b", "B", "Name of domain B, e.g. photo.", str),
        Option("channels_a", 3, "Channels of domain A images (1 for grayscale).", int, minimum=1),
        Option("channels_b", 3, "Channels of domain B images.", int, minimum=1),
    )
