"""Checks at the front doors: what kind a value is, and whether an argument accepts it.

Every public entry point classifies its arguments before it computes, and
refuses what an argument does not accept with one :class:`ConvcostError`
naming the argument, the value and what it accepts. Nothing here evaluates
text, turns a non-finite number into a fraction, or compares it.

>>> kind_of(3), kind_of(True), kind_of(float("nan")), kind_of("C**2")
('int', 'bool', 'non-finite number', 'text')
>>> import sympy
>>> kind_of(sympy.Symbol("x")), kind_of(sympy.Symbol("x") + 1), kind_of(sympy.Eq(sympy.Symbol("x"), 1))
('symbol', 'expression', 'relation')
>>> number("holds", "K", float("inf"))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: holds: K=inf is a non-finite number; it accepts a finite number (an int, a float, a
Fraction, a numpy number) or a sympy expression
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from fractions import Fraction

import numpy as np
import sympy

from convcost.errors import ConvcostError

#: the most points :func:`grid` and :func:`broadcast` accept (``region`` evaluates a grid in memory:
#: 2**25 points of int64 are 256 MiB an array; benchmarks/bench_region.py evaluates 2**24)
MAX_GRID = 2**25

_NON_FINITE = (sympy.oo, -sympy.oo, sympy.zoo, sympy.nan)


def kind_of(value) -> str:
    """The kind of ``value`` as the entry points judge it (never evaluates or compares it).

    >>> from fractions import Fraction
    >>> import numpy as np
    >>> [kind_of(v) for v in (None, 10**30, 2.5, Fraction(1, 2), np.int64(3), np.float32(1), np.arange(3), (1, 2))]
    ['none', 'int', 'float', 'fraction', 'numpy integer', 'numpy float', 'array', 'sequence']
    """
    if value is None:
        return "none"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (str, np.str_)):
        return "text"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, np.integer):
        return "numpy integer"
    if isinstance(value, np.floating):
        return "numpy float" if np.isfinite(value) else "non-finite number"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float" if math.isfinite(value) else "non-finite number"
    if isinstance(value, Fraction):
        return "fraction"
    if isinstance(value, (complex, np.complexfloating)):
        return "complex number"
    if isinstance(value, np.ndarray):
        return "array"
    if isinstance(value, sympy.Basic):
        return _sympy_kind(value)
    if isinstance(value, (tuple, list)):
        return "sequence"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, type):
        return "class"
    return "other"


def _sympy_kind(value) -> str:
    if isinstance(value, sympy.Symbol):
        return "symbol"
    if isinstance(value, sympy.Expr):
        if value.has(*_NON_FINITE):
            return "non-finite number" if value.is_number else "non-finite expression"
        if value.has(sympy.I) or value.is_real is False:
            return "complex number" if value.is_number else "complex expression"
        if value.is_number:
            return "sympy number"
        return "expression"
    if isinstance(value, (sympy.core.relational.Relational, sympy.logic.boolalg.Boolean)):
        return "relation"
    return "sympy object"


_ARTICLE = {"int": "an int", "array": "an array", "expression": "an expression", "other": "an object",
            "non-finite number": "a non-finite number", "none": "None",
            "non-finite expression": "a non-finite expression"}


def refuse(where: str, name: str, value, accepts: str, kind: str | None = None) -> ConvcostError:
    """The one error for an argument that does not accept ``value``."""
    kind = kind or kind_of(value)
    article = _ARTICLE.get(kind) or ("an " if kind[0] in "aeiou" else "a ") + kind
    return ConvcostError(f"{where}: {name}={_short(value)} is {article}; it accepts {accepts}")


def _short(value) -> str:
    try:
        text = repr(value) if isinstance(value, (str, bytes)) else str(value)
    except Exception:  # noqa: BLE001 - an object whose repr fails is still named
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


# -- what arguments accept ----------------------------------------------------------------------------------------
NUMBER = "a finite number (an int, a float, a Fraction, a numpy number) or a sympy expression"
FIELD = ("an int, a sympy symbol or expression, a finite float or Fraction (multipliers), text (choices such as "
         "'same'), True or False, a convcost layer, or a tuple of these")
_FIELD_KINDS = frozenset({"int", "numpy integer", "symbol", "expression", "sympy number", "float", "numpy float",
                          "fraction", "text", "bool", "none", "relation"})


def field_value(where: str, name: str, value):
    """A spec field's value, refused unless it is of a kind some field accepts (the field itself decides the rest).

    >>> field_value("cost", "C", 64)
    64
    >>> field_value("cost", "C", {"a": 1})
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: cost: C={'a': 1} is a mapping; it accepts an int, a sympy symbol or expression, a
    finite float or Fraction (multipliers), text (choices such as 'same'), True or False, a convcost layer, or a
    tuple of these
    """
    if type(value) is int:
        return value
    kind = kind_of(value)
    if kind in _FIELD_KINDS or _is_layer(value):
        return value
    if kind == "sequence":
        for item in value:
            item_kind = kind_of(item)
            if item_kind not in _FIELD_KINDS and not _is_layer(item):
                raise refuse(where, name, value, FIELD, f"sequence holding a {item_kind}")
        return value
    raise refuse(where, name, value, FIELD, kind)


def field_values(where: str, fields: dict) -> dict:
    """:func:`field_value` of every keyword value."""
    for name, value in fields.items():
        field_value(where, name, value)
    return fields


def _is_layer(value) -> bool:
    return hasattr(value, "cost") and hasattr(value, "fields") and not isinstance(value, type)


def number(where: str, name: str, value):
    """A finite number or a finite sympy expression, as a sympy value; anything else is refused.

    >>> number("subs", "H", 0.75), number("subs", "H", 3)
    (3/4, 3)
    """
    kind = kind_of(value)
    if kind in ("int", "numpy integer"):
        return sympy.Integer(int(value))
    if kind in ("float", "numpy float"):
        return sympy.Rational(Fraction(repr(float(value))))  # the decimal as written: 0.1 is 1/10
    if kind == "fraction":
        return sympy.Rational(value.numerator, value.denominator)
    if kind in ("symbol", "expression", "sympy number"):
        return value
    raise refuse(where, name, value, NUMBER, kind)


def text(where: str, name: str, value, options=None) -> str:
    """A string (one of ``options`` when given).

    >>> text("compare", "metric", 3, ("params", "macs"))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: compare: metric=3 is an int; it accepts one of 'params', 'macs'
    """
    accepts = "text" if options is None else "one of " + ", ".join(map(repr, options))
    if not isinstance(value, str):
        raise refuse(where, name, value, accepts)
    if options is not None and value not in options:
        raise refuse(where, name, value, accepts, "text not among them")
    return value


def grid(where: str, name: str, value) -> np.ndarray:
    """A number or an array of finite real numbers, as a numpy array (ints stay ints).

    >>> grid("region", "K", [1, 2, 3])
    array([1, 2, 3])
    >>> grid("region", "K", [1.5, float("nan")])
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: region: K=[1.5, nan] is an array holding nan or inf; it accepts a finite real number
    or an array (list, tuple, numpy array) of them
    """
    accepts = "a finite real number or an array (list, tuple, numpy array) of them"
    kind = kind_of(value)
    if kind in ("int", "float", "numpy integer", "numpy float", "fraction", "sympy number"):
        value = number(where, name, value)
        if not value.is_Integer:
            return np.asarray(float(value))
        # an int past int64 stays a Python int (exact), in an array of objects
        return np.asarray(int(value)) if abs(int(value)) < 2**63 else np.array(int(value), dtype=object)
    if kind not in ("sequence", "array"):
        raise refuse(where, name, value, accepts, kind)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise refuse(where, name, value, accepts, "ragged sequence") from None
    if array.dtype.kind not in "iuf":  # text, bools, objects (Fractions, symbols, ints past 64 bits) ...
        raise refuse(where, name, value, accepts, f"array of {array.dtype}")
    if array.size > MAX_GRID:
        raise refuse(where, name, value, f"at most {MAX_GRID:,} elements", "larger array")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise refuse(where, name, value, accepts, "array holding nan or inf")
    return array


def broadcast(where: str, arrays: dict) -> tuple:
    """The broadcast shape of named arrays by numpy's rules, or one error naming their shapes."""
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    try:
        shape = np.broadcast_shapes(*shapes.values())
    except ValueError:
        shown = ", ".join(f"{k} {s}" for k, s in shapes.items())
        raise ConvcostError(f"{where}: the arrays do not broadcast together by numpy's rules (shapes: {shown}); "
                            "give arrays of one shape, or shapes numpy broadcasts") from None
    if math.prod(shape) > MAX_GRID:
        raise ConvcostError(f"{where}: the grid has {math.prod(shape):,} points; at most {MAX_GRID:,} are evaluated")
    return shape


def entry_point(fn):
    """Decorate a public function so that a call it cannot bind (a value given twice, a missing or extra
    argument) raises ConvcostError naming the function, not Python's TypeError."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ConvcostError(f"{fn.__qualname__}(): {exc}") from None
        return fn(*args, **kwargs)

    return checked


def is_integral(value) -> bool:
    """Whether ``value`` is a plain integer (an int or numpy integer, not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
