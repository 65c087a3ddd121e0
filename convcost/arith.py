"""Arithmetic that means the same on Python ints and on sympy expressions.

Every cost formula in convcost is written once, with these helpers and the
operators ``+ - *``. Bound to Python ints, a formula runs as plain integer
arithmetic (no sympy object is built, so a bound cost takes microseconds);
bound to symbols, the same code builds the closed form. There is no float
division anywhere: :func:`div` is exact, :func:`floordiv` and :func:`ceildiv`
round as PyTorch's shape rules do, and conditions come back as Python bools
when they are decided and as sympy relations when they depend on symbols.

>>> from convcost.symbols import H, S
>>> floordiv(224 - 3, 2) + 1, floordiv(H - 3, S) + 1
(111, floor((H - 3)/S) + 1)
>>> div(12, 4), div(12, 8), div(H, S)
(3, 3/2, H/S)
>>> ge(5, 3), ge(H, 3)
(True, H >= 3)
>>> where(eq(S, 1), H, 0)
Piecewise((H, Eq(S, 1)), (0, True))
>>> prod((2, 3, 4)), prod((2, H))
(24, 2*H)
"""

from __future__ import annotations

import math

import sympy


def integer(x):
    """``x`` with a sympy integer turned into a Python int; anything else unchanged.

    >>> integer(sympy.Integer(7)), type(integer(sympy.Integer(7))).__name__
    (7, 'int')
    """
    if type(x) is int:
        return x
    if isinstance(x, sympy.Integer):
        return int(x)
    return x


def symbolic(*values) -> bool:
    """True when any value is not a plain int (a symbol, an expression, a rational)."""
    return any(type(v) is not int for v in values)


def prod(values):
    """The product of ``values`` (1 for none)."""
    values = tuple(values)
    if all(type(v) is int for v in values):
        return math.prod(values)
    return integer(sympy.Mul(*values))


def total(values):
    """The sum of ``values`` (0 for none)."""
    values = tuple(values)
    if all(type(v) is int for v in values):
        return sum(values)
    return integer(sympy.Add(*values))


def div(a, b):
    """``a / b`` exactly: an int when ``b`` divides ``a``, a sympy rational or expression otherwise."""
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        return q if r == 0 else sympy.Rational(a, b)
    return integer(sympy.sympify(a) / b)


def floordiv(a, b):
    """``floor(a / b)``, as PyTorch's output-size rules round."""
    if type(a) is int and type(b) is int:
        return a // b
    if b == 1:
        return a
    return integer(sympy.floor(sympy.sympify(a) / b))


def ceildiv(a, b):
    """``ceil(a / b)``."""
    if type(a) is int and type(b) is int:
        return -(-a // b)
    if b == 1:
        return a
    return integer(sympy.ceiling(sympy.sympify(a) / b))


def mod(a, b):
    """``a mod b``."""
    if type(a) is int and type(b) is int:
        return a % b
    return integer(sympy.Mod(a, b))


def minimum(a, b):
    """The smaller of ``a`` and ``b``."""
    if type(a) is int and type(b) is int:
        return min(a, b)
    return integer(sympy.Min(a, b))


def maximum(a, b):
    """The larger of ``a`` and ``b``."""
    if type(a) is int and type(b) is int:
        return max(a, b)
    return integer(sympy.Max(a, b))


def eq(a, b):
    """``a == b``: a bool when decided, else ``Eq(a, b)``."""
    if type(a) is int and type(b) is int:
        return a == b
    return _decided(sympy.Eq(a, b))


def ne(a, b):
    """``a != b``: a bool when decided, else ``Ne(a, b)``."""
    if type(a) is int and type(b) is int:
        return a != b
    return _decided(sympy.Ne(a, b))


def ge(a, b):
    """``a >= b``: a bool when decided, else the relation."""
    if type(a) is int and type(b) is int:
        return a >= b
    return _decided(sympy.Ge(a, b))


def gt(a, b):
    """``a > b``."""
    if type(a) is int and type(b) is int:
        return a > b
    return _decided(sympy.Gt(a, b))


def le(a, b):
    """``a <= b``."""
    if type(a) is int and type(b) is int:
        return a <= b
    return _decided(sympy.Le(a, b))


def lt(a, b):
    """``a < b``."""
    if type(a) is int and type(b) is int:
        return a < b
    return _decided(sympy.Lt(a, b))


def divides(divisor, value):
    """``divisor`` divides ``value``: a bool when decided, else ``Eq(Mod(value, divisor), 0)``."""
    if type(value) is int and type(divisor) is int:
        return value % divisor == 0
    return _decided(sympy.Eq(sympy.Mod(value, divisor), 0))


def either(*conditions):
    """Logical or of bools or sympy conditions."""
    if all(isinstance(c, bool) for c in conditions):
        return any(conditions)
    return _decided(sympy.Or(*conditions))


def both(*conditions):
    """Logical and of bools or sympy conditions."""
    if all(isinstance(c, bool) for c in conditions):
        return all(conditions)
    return _decided(sympy.And(*conditions))


def negate(condition):
    """Logical not of a bool or a sympy condition."""
    if isinstance(condition, bool):
        return not condition
    return _decided(sympy.Not(condition))


def where(condition, then, otherwise):
    """``then`` where ``condition`` holds, else ``otherwise``: a Piecewise only when undecided."""
    condition = _decided(condition)
    if isinstance(condition, bool):
        return then if condition else otherwise
    if then == otherwise:
        return then
    # unevaluated: sympy's collapsing of the pieces takes milliseconds and finds nothing more here
    return sympy.Piecewise((then, condition), (otherwise, True), evaluate=False)


def known_nonpositive(x) -> bool:
    """True only when ``x <= 0`` is certain (from ints or from the symbols' assumptions)."""
    if type(x) is int:
        return x <= 0
    return sympy.sympify(x).is_nonpositive is True


def _decided(condition):
    """A sympy boolean as a Python bool when it is decided."""
    if condition is sympy.true or condition is True:
        return True
    if condition is sympy.false or condition is False:
        return False
    return condition
