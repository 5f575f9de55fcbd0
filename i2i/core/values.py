"""The one reader of values typed as text (``--gen-kw n_blocks=6``, ``color_jitter:hue=0.05``)."""

from __future__ import annotations

import ast
import re
from typing import Any

import yaml

from i2i.core.errors import InvalidArgumentError


def parse_value(text: str) -> Any:
    """A Python literal (``6``, ``0.5``, ``(0.9, 1.1)``, ``'x'``), else a YAML scalar (``true``,
    ``null``, ``1e-4``), else the text itself (a bare word such as ``reflect``); a broken
    literal (``[1``) is an error."""
    text = text.strip()
    if not text:
        return ""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text[0] in "[({'\"":  # meant as a literal, but broken: say so rather than guess
            raise InvalidArgumentError(
                f"cannot read the value {text!r}; quote it or fix it"
            ) from None
    if ":" in text:  # YAML 1.1 reads 5:6 as 306 (base 60): such a typo stays text
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, bool | int | float) or value is None else text


def parse_pair(text: str, where: str) -> tuple[str, Any]:
    """``"n_blocks=6"`` -> ``("n_blocks", 6)``: the one KEY=VALUE reader (flags, augmentation
    specs); ``where`` names the flag or spec in the error."""
    key, equals, value = text.partition("=")
    key = key.strip().replace("-", "_")
    if not equals or not key.isidentifier():
        raise InvalidArgumentError(f"{where} expects KEY=VALUE, got {text.strip()!r}")
    return key, parse_value(value)


Spec = str | tuple[str, dict[str, Any]]

_ITEM_SEPARATOR = re.compile(r",(?=\s*\w+\s*=)")  # commas that start a new key=value


def parse_spec(spec: Spec) -> tuple[str, dict[str, Any]]:
    """``name``, ``(name, kwargs)`` or ``"name:key=value,key=value"`` as ``(name, kwargs)``.

    Pairs are read by ``parse_pair`` (``scale=(0.9,1.1)`` keeps its comma).
    """
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], dict):
        return str(spec[0]), dict(spec[1])
    if not isinstance(spec, str):
        raise InvalidArgumentError(
            f"an augmentation spec is a name, a (name, kwargs) tuple or 'name:key=value,...'; "
            f"got {spec!r}"
        )
    name, _, arguments = spec.partition(":")
    items = _ITEM_SEPARATOR.split(arguments) if arguments.strip() else []
    kwargs = dict(parse_pair(item, f"augmentation spec {spec!r}") for item in items)
    return name.strip(), kwargs
