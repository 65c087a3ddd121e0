"""Command-line values: ``NAME=integer``, ``NAME=symbol``, never evaluated.

>>> from convcost.variants import StandardConv
>>> parse_fields(StandardConv, ["C=64", "O=128", "K=3", "P=same", "bias=false", "H=h"], symbols=["h"])
{'C': 64, 'O': 128, 'K': 3, 'P': 'same', 'bias': False, 'H': h}

A symbol name is one of the glossary's (:mod:`convcost.symbols`) or one the user declares (``symbols``,
the command line's ``--symbol``); any other name is refused as a likely typo:

>>> parse_fields(StandardConv, ["P=sme"])
Traceback (most recent call last):
...
convcost.errors.ConvcostError: P='sme': 'sme' is not a symbol of convcost's glossary (did you mean 'same'?);
to use it as a new symbol, declare it: --symbol sme
>>> parse_fields(StandardConv, ["K=3,1"])["K"]
(3, 1)
>>> parse_fields(StandardConv, ["C=2**6"])
Traceback (most recent call last):
...
convcost.errors.ConvcostError: C='2**6': give an integer, a symbol name or a comma-separated list of them
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from convcost.errors import ConvcostError
from convcost.symbols import GLOSSARY, symbol

_INTEGER = re.compile(r"^[+-]?\d+$")
_RATIONAL = re.compile(r"^\d+(\.\d+)?$|^\d+/\d+$")


def suggestion(word: str, known) -> str:
    """`` (did you mean 'x'?)`` when a known name is close to ``word``, else nothing.

    >>> suggestion("sme", ["same", "valid"]), suggestion("zzz", ["same"])
    (" (did you mean 'same'?)", '')
    """
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_fields(cls, items: list[str], symbols=()) -> dict:
    """``["C=64", ...]`` as keyword values for the spec class ``cls``; ``symbols``: names declared as new
    symbols."""
    kinds = {f.name: f.metadata.get("kind") for f in dataclasses.fields(cls)}
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ConvcostError(f"{item!r}: write fields as NAME=value, e.g. C=64")
        if name not in kinds:
            raise ConvcostError(f"{cls.__name__} has no field {name!r}{suggestion(name, kinds)}; "
                                f"its fields are {', '.join(kinds)}")
        values[name] = parse_value(name, text, kinds[name], symbols)
    return values


def parse_value(name: str, text: str, kind: str | None, symbols=None):
    """One value, read according to the field's kind; a symbol name must be the glossary's or one of
    ``symbols`` (``None``: any name, as for a model's input sizes)."""
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
    words = ("same", "valid") if kind == "padding" else ()
    parsed = [_atom(name, text, x.strip(), symbols, words) for x in items]
    return tuple(parsed) if len(parsed) > 1 else parsed[0]


def _atom(name: str, whole: str, text: str, symbols, words=()):
    if _INTEGER.match(text):
        return int(text)
    if text.isidentifier():
        if symbols is not None and text not in GLOSSARY and text not in symbols:
            raise ConvcostError(f"{name}={whole!r}: {text!r} is not a symbol of convcost's glossary"
                                f"{suggestion(text, (*words, *GLOSSARY))}; to use it as a new symbol, "
                                f"declare it: --symbol {text}")
        return symbol(text)
    raise ConvcostError(f"{name}={whole!r}: give an integer, a symbol name or a comma-separated list of them")
