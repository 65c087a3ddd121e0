"""Command-line values: ``NAME=integer``, ``NAME=symbol``, never evaluated.

>>> from convcost.variants import StandardConv
>>> parse_fields(StandardConv, ["C=64", "O=128", "K=3", "P=same", "bias=false", "H=h"])
{'C': 64, 'O': 128, 'K': 3, 'P': 'same', 'bias': False, 'H': h}
>>> parse_fields(StandardConv, ["K=3,1"])["K"]
(3, 1)
>>> parse_fields(StandardConv, ["C=2**6"])
Traceback (most recent call last):
...
convcost.errors.ConvcostError: C='2**6': give an integer, a symbol name or a comma-separated list of them
"""

from __future__ import annotations

import dataclasses
import re

from convcost.errors import ConvcostError
from convcost.symbols import symbol

_INTEGER = re.compile(r"^[+-]?\d+$")
_RATIONAL = re.compile(r"^\d+(\.\d+)?$|^\d+/\d+$")


def parse_fields(cls, items: list[str]) -> dict:
    """``["C=64", ...]`` as keyword values for the spec class ``cls``."""
    kinds = {f.name: f.metadata.get("kind") for f in dataclasses.fields(cls)}
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ConvcostError(f"{item!r}: write fields as NAME=value, e.g. C=64")
        if name not in kinds:
            raise ConvcostError(f"{cls.__name__} has no field {name!r}; its fields are {', '.join(kinds)}")
        values[name] = parse_value(name, text, kinds[name])
    return values


def parse_value(name: str, text: str, kind: str | None):
    """One value, read according to the field's kind."""
    if kind == "flag":
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConvcostError(f"{name}={text!r}: give true or false")
        return text.lower() in ("true", "1", "yes")
    if kind == "choice" or (kind == "padding" and text in ("same", "valid")):
        return int(text) if _INTEGER.match(text) else text
    if kind == "real" and _RATIONAL.match(text):
        from fractions import Fraction

        return Fraction(text)
    items = text.split(",")
    parsed = [_atom(name, text, x.strip()) for x in items]
    return tuple(parsed) if len(parsed) > 1 else parsed[0]


def _atom(name: str, whole: str, text: str):
    if _INTEGER.match(text):
        return int(text)
    if text.isidentifier():
        return symbol(text)
    raise ConvcostError(f"{name}={whole!r}: give an integer, a symbol name or a comma-separated list of them")
