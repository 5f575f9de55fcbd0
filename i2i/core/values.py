"""The one reader of values typed as text (``--gen-kw n_blocks=6``, ``color_jitter:hue=0.05``)."""

from __future__ import annotations

import ast
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
