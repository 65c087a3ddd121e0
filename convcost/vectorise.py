"""Exact evaluation of closed forms over numpy arrays: one compiled call for many input sizes.

A report with symbolic input sizes (``profile(model, (1, 3, H, W))``) evaluates
its totals at thousands of sizes at once through :func:`compile_exprs`. Division
is exact: ``a / b`` becomes a floor division when ``b`` divides ``a`` and a
``Fraction`` otherwise, so ``floor`` and ``ceiling`` round exactly as sympy does.

>>> import numpy as np
>>> from convcost.symbols import H
>>> f = compile_exprs([(H - 1) // 2 + 1], [H])
>>> f(np.array([224, 225]))[0].tolist()
[112, 113]
>>> compile_exprs([H / 2], [H])(7)[0]
Fraction(7, 2)
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy
from sympy.printing.pycode import PythonCodePrinter


def _div(a, b):
    """``a / b`` exactly: an int (or int array) when ``b`` divides ``a``, else a Fraction."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        q, r = np.divmod(a, b)
        return q if not np.any(r) else _FRACTION(a, b)  # exact, as objects, where it does not come out even
    q, r = divmod(a, b)
    return q if r == 0 else Fraction(a, b)


_FRACTION = np.frompyfunc(lambda a, b: Fraction(int(a), int(b)), 2, 1)
_FLOOR = np.frompyfunc(math.floor, 1, 1)
_CEIL = np.frompyfunc(math.ceil, 1, 1)


def _floor(x):
    if isinstance(x, np.ndarray):
        return _FLOOR(x).astype(np.int64) if x.dtype == object else x
    return math.floor(x)


def _ceil(x):
    if isinstance(x, np.ndarray):
        return _CEIL(x).astype(np.int64) if x.dtype == object else x
    return math.ceil(x)


def _not(x):
    """Logical not for bools and bool arrays (Python's ``~True`` is -2, which is truthy)."""
    return np.logical_not(x) if isinstance(x, np.ndarray) else not x


def _where(*pairs):
    """``Piecewise`` for scalars and arrays: the first branch whose condition holds."""
    out = pairs[-1][0]
    for value, cond in reversed(pairs[:-1]):
        out = np.where(cond, value, out) if isinstance(cond, np.ndarray) else (value if cond else out)
    return out


class _IntegerPrinter(PythonCodePrinter):
    """Python source for an expression whose divisions are exact (``_div``) and floors integer."""

    def _print_Mul(self, expr):
        num, den = [], []
        for factor in expr.args:
            if factor.is_Rational and factor.q != 1:
                num.append(sympy.Integer(factor.p))
                den.append(sympy.Integer(factor.q))
            elif factor.is_Pow and factor.exp.is_Integer and factor.exp < 0:
                den.append(factor.base ** (-factor.exp))
            else:
                num.append(factor)
        if not den:
            return "(" + "*".join(self._wrap(f) for f in num) + ")"
        top = "*".join(self._wrap(f) for f in num) or "1"
        bottom = "*".join(self._wrap(f) for f in den)
        return f"_div({top}, {bottom})"

    def _wrap(self, factor):
        return f"({self._print(factor)})"

    def _print_Rational(self, expr):
        return f"_div({expr.p}, {expr.q})"

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and expr.exp < 0:
            return f"_div(1, ({self._print(expr.base)})**{-expr.exp})"
        return f"({self._print(expr.base)})**({self._print(expr.exp)})"

    def _print_floor(self, expr):
        num, den = sympy.fraction(sympy.together(expr.args[0]))
        if den != 1:  # floor(a/b) is a // b: exact for ints and int arrays
            return f"(({self._print(num)}) // ({self._print(den)}))"
        return f"_floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr):
        num, den = sympy.fraction(sympy.together(expr.args[0]))
        if den != 1:
            return f"(-((-({self._print(num)})) // ({self._print(den)})))"
        return f"_ceil({self._print(expr.args[0])})"

    def _print_Mod(self, expr):
        return f"(({self._print(expr.args[0])}) % ({self._print(expr.args[1])}))"

    def _print_Piecewise(self, expr):
        pairs = ", ".join(f"({self._print(v)}, {self._print(c)})" for v, c in expr.args)
        return f"_where({pairs})"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    def _print_And(self, expr):
        return "(" + " & ".join(f"({self._print(a)})" for a in expr.args) + ")"

    def _print_Or(self, expr):
        return "(" + " | ".join(f"({self._print(a)})" for a in expr.args) + ")"

    def _print_Not(self, expr):
        return f"_not({self._print(expr.args[0])})"

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"(({self._print(expr.lhs)}) {op} ({self._print(expr.rhs)}))"


_NAMESPACE = {"_div": _div, "_floor": _floor, "_ceil": _ceil, "_where": _where, "_not": _not,
              "True": True, "False": False}


def compile_exprs(exprs, symbols):
    """A function of ``symbols`` (positional) returning every expression of ``exprs``, exactly.

    Called with ints it returns ints or Fractions; with integer numpy arrays,
    integer arrays (object arrays of Fractions where a division does not come out even).
    """
    exprs = [sympy.sympify(e) for e in exprs]
    return sympy.lambdify(list(symbols), exprs, modules=[_NAMESPACE], printer=_IntegerPrinter, dummify=True)
