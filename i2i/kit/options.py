"""Training options, declared once as typed groups and turned into CLI flags, config-file keys
and config.json.

Each group (``i2i.kit.groups``) has one owner that alone reads it; the flat ``Option`` view is
what the command line, config files and resume see. Precedence, lowest first: option defaults
(with the task's ``defaults``), the task's toy defaults (only when training on the built-in
dataset), a ``--recipe``, the ``--config`` file, then flags given on the command line. Each value
is checked once, here (type, range, choices), whatever it came from: a flag, a file, a resumed
run or Python.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import yaml

from i2i.core.errors import CheckpointError, InvalidArgumentError, one_line
from i2i.core.values import parse_pair
from i2i.models.safefiles import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_INT,
    check_numbers,
    parse_json,
    read_bytes,
)


@dataclass(frozen=True)
class Option:
    """One knob as the command line and config files see it: key, default, help, checks.

    Options are declared as fields of typed groups (``OptionGroup``); this is their flat view.
    """

    name: str
    default: Any
    help: str
    type: Any = None
    # KEY=VALUE pairs collected into a dict (``--gen-kw n_blocks=6``).
    keyvalue: bool = False
    choices: tuple[str, ...] | None = None
    # The smallest valid value of a number (inclusive); None: any.
    minimum: float | None = None
    # A bound a number must stay under (exclusive), e.g. 1 for Adam's betas; None: any.
    below: float | None = None
    # May differ when a run is resumed: it changes no maths (intervals, logging, devices), so
    # the new value is applied and recorded. Any other option must stay as the run had it.
    resumable: bool = False
    # KEY=VALUE keys the task sets itself, refused in --*-kw: "key" (set by --key), "key=option"
    # (set by another option, "norm=norm_d"), or keys that follow the data (in_channels).
    reserved: tuple[str, ...] = ()
    # For KEY=VALUE arguments of a network: the option naming that network ("gen" for
    # --gen-kw). A recipe's arguments are dropped when the user names another network.
    arguments_of: str | None = None

    @property
    def switch(self) -> bool:
        """A boolean is a flag that flips its default: ``--no-flip`` for flip=True."""
        return self.type is bool

    @property
    def flag(self) -> str:
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.switch and self.default else f"--{dashed}"


_OPTION = "i2i.option"


def option(
    default: Any,
    help: str,
    *,
    keyvalue: bool = False,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    below: float | None = None,
    resumable: bool = False,
    reserved: tuple[str, ...] = (),
    arguments_of: str | None = None,
) -> Any:
    """A field of an ``OptionGroup``: its type is the field's annotation."""
    checks = {
        "help": help,
        "keyvalue": keyvalue,
        "choices": choices,
        "minimum": minimum,
        "below": below,
        "resumable": resumable,
        "reserved": reserved,
        "arguments_of": arguments_of,
    }
    return field(default=default, metadata={_OPTION: checks})


class OptionGroup:
    """Options that one part of the code owns and alone reads, as a typed, frozen dataclass.

    Subclasses are ``@dataclass(frozen=True)`` classes of ``option()`` fields. The resolved
    config of a run is one flat mapping (flags, config files and config.json are flat); each
    owner takes its typed view of it with ``Group.of(config)`` and reads attributes, never keys.
    A task may change a group's defaults (CycleGAN's ``gen="resnet9"``) through
    ``Task.defaults``.
    """

    # The module that reads the group (a task's own group: the task's module).
    reader: ClassVar[str] = ""

    @classmethod
    def declared(cls, defaults: Mapping[str, Any] | None = None) -> tuple[Option, ...]:
        """The group's options, flat, with ``defaults`` replacing the declared ones."""
        defaults = defaults or {}
        hints = typing.get_type_hints(cls)
        plain = [f.name for f in fields(cls) if _OPTION not in f.metadata]  # type: ignore[arg-type]
        if plain:
            raise InvalidArgumentError(
                f"{cls.__name__} declares {', '.join(plain)} without i2i.option(default, help)"
            )
        return tuple(
            Option(
                f.name,
                defaults.get(f.name, f.default),
                type=_value_type(hints[f.name]),
                **f.metadata[_OPTION],
            )
            for f in fields(cls)  # type: ignore[arg-type]
        )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def of(cls: type[G], config: Mapping[str, Any]) -> G:
        """This group's view of a resolved config."""
        return cls(**{name: config[name] for name in cls.names()})


G = typing.TypeVar("G", bound=OptionGroup)


def _value_type(annotation: Any) -> Any:
    """``int | None`` -> int; ``dict[str, Any]`` -> dict: what a config value is coerced to."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _value_type(args[0])
    return typing.get_origin(annotation) or annotation


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
    return dict(parse_pair(pair, flag) for pair in pairs)


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


class _PlainYAML(yaml.SafeLoader):
    """YAML without anchors and aliases, nested at most ``MAX_DEPTH`` deep: a few hundred bytes
    of aliases expand to gigabytes (a "billion laughs"), and an option file needs neither."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("anchors and aliases (&name, *name) are not allowed here")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError("anchors and aliases (&name, *name) are not allowed here")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A ``--config`` file: a regular file of at most ``MAX_CONFIG_BYTES`` of UTF-8 JSON or
    YAML (no aliases, depth-limited) holding a mapping of option: value."""
    path = Path(path)
    try:
        text = read_bytes(path, None, MAX_CONFIG_BYTES, "config file").decode("utf-8")
    except CheckpointError as error:
        raise InvalidArgumentError(f"cannot use config file {path}: {error}") from None
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"config file {path} is not text (UTF-8); give a YAML or JSON file"
        ) from None
    try:
        if path.suffix == ".json":
            data = parse_json(text)
        else:
            data = yaml.load(text, Loader=_PlainYAML)  # a SafeLoader: no Python objects
            check_numbers(data)
    except (ValueError, yaml.YAMLError, RecursionError) as error:
        raise InvalidArgumentError(f"config file {path} is not valid: {one_line(error)}") from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"config file {path} must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _coerce(option: Option, value: Any) -> Any:
    """Config files are loosely typed (YAML reads 1e-4 as a string): convert to the option's
    type, or say which option got a value it cannot use."""
    if value is None or option.keyvalue or option.type not in (int, float, bool, str):
        return value
    try:
        if not isinstance(value, str | int | float):
            raise TypeError(value)  # a list, a mapping, a YAML date: never one option's value
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
        if option.type is int and abs(converted) > MAX_INT:
            raise ValueError(value)  # no count, size or seed is that large
        return converted
    except (TypeError, ValueError, OverflowError):
        flag = "--" + option.name.replace("_", "-")
        kind = {float: "a finite float", int: "an int", str: "text"}.get(
            option.type, option.type.__name__
        )
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise InvalidArgumentError(f"{flag} must be {kind}, got {shown}") from None


def _replaced(network: str | None, recipe: Mapping[str, Any], chosen: Mapping[str, Any]) -> bool:
    """Whether the user chose another network than the one the recipe names."""
    return network in recipe and network in chosen and chosen[network] != recipe[network]


def _refuse_unknown(values: dict[str, Any], by_name: dict[str, Option], where: str) -> None:
    """An option name no group declares: one line with the names meant (a typo is the usual
    cause), then all of them."""
    unknown = sorted(set(values) - set(by_name))
    if not unknown:
        return
    meant = [
        f"{close[0]} for {name}" if len(unknown) > 1 else close[0]
        for name in unknown
        if (close := difflib.get_close_matches(name, by_name, n=1, cutoff=0.75))
    ]
    hint = f"; did you mean {', '.join(meant)}?" if meant else ""
    raise InvalidArgumentError(
        f"unknown option(s) {', '.join(unknown)}{where}{hint} (valid: {', '.join(by_name)})"
    )


def resolve(
    options: Iterable[Option],
    given: Mapping[str, Any],
    config_file: Mapping[str, Any] | None = None,
    toy_defaults: Mapping[str, Any] | None = None,
    recipes: Mapping[str, Any] | None = None,
    task: str = "TASK",
) -> dict[str, Any]:
    """The complete config: defaults < toy defaults (no data) < recipe < config file < flags.

    ``recipes`` None means the values are a run's record (config.json), whose recipe was
    applied when it started: its name is kept as a record and nothing is looked up, so a run
    resumes even if the task's recipes changed since.
    """
    options = list(options)
    by_name = {o.name: o for o in options}
    config_file = dict(config_file or {})
    _refuse_unknown(config_file, by_name, " in config file")
    _refuse_unknown(given, by_name, "")
    config = {o.name: o.default for o in options}
    chosen = {**config_file, **given}
    if chosen.get("data") is None and toy_defaults:
        config.update({k: v for k, v in toy_defaults.items() if k not in chosen})
    recipe = chosen.get("recipe")
    if recipe == "none":  # `--recipe none` drops the recipe a config file names
        chosen, recipe = {**chosen, "recipe": None}, None
    if recipe is not None and recipes is not None:
        recipe = _coerce(by_name["recipe"], recipe)
        recipes = dict(recipes)
        if recipe not in recipes:
            raise InvalidArgumentError(
                f"unknown recipe {recipe!r}; available: {', '.join(sorted(recipes)) or 'none'} "
                f"(`i2i describe {task}` lists what each sets)"
            )
        values = recipes[recipe].values
        # A recipe's network arguments belong to the network it names: `--recipe quality
        # --disc patchgan` drops the projected critic's levels instead of failing on them.
        values = {
            k: v
            for k, v in values.items()
            if not _replaced(by_name[k].arguments_of, values, chosen)
        }
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
        if option.below is not None and value is not None and not value < option.below:
            raise InvalidArgumentError(
                f"--{name.replace('_', '-')} must be below {option.below:g}, got {value!r}"
            )
    return config
