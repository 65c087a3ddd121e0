"""Exact numbers from cost formulas, fast: each formula compiled once, evaluated with integers.

sympy is exact but slow for numbers (a convolution's cost takes about a
millisecond to build). A whole-model report needs hundreds of them, so a layer's
cost on a concrete input is evaluated from its *general form*: the same
``layer.cost`` code run once on symbols for each structure (layer type, the
non-numeric fields, the input rank), compiled to Python with integer semantics,
then called with ints. The formula stays written once, in the primitive.

Division is exact: ``a / b`` compiles to a floor division when ``b`` divides ``a``
and to a ``Fraction`` otherwise, so ``floor`` and ``ceiling`` round exactly as
sympy does. Any condition the general form carries (``Mod(C, G) == 0`` ...) is
evaluated too; when one fails, or a result is not an integer, the layer's own
sympy ``cost`` decides (it raises the library error, or gives the exact value).

>>> from convcost.primitives import Conv
>>> counts, shape = fast_cost(Conv(C=3, O=32, K=3, P=1), (1, 3, 32, 32))
>>> counts["macs"], shape
(884736, (1, 32, 32, 32))
>>> fast_cost(Conv(C=3, O=32, K=3, S=2), (2, 3, 9, 9))[1]
(2, 32, 4, 4)

:func:`compile_exprs` serves numpy too: integer arrays in, exact integer arrays out.

>>> import numpy as np
>>> from convcost.symbols import H
>>> f = compile_exprs([(H - 1) // 2 + 1], [H])
>>> f(np.array([224, 225]))[0].tolist()
[112, 113]
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import sympy
from sympy.printing.pycode import PythonCodePrinter

from convcost.costs import METRICS
from convcost.errors import ConvcostError
from convcost.layers import Merge

_SIZE = {"integer": True, "positive": True}
_COUNT = {"integer": True, "nonnegative": True}


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


@dataclasses.dataclass
class _Compiled:
    function: object
    n_metrics: int
    rank_out: int
    n_conditions: int
    formula: str = ""


_CACHE: dict = {}


_FIELDS: dict = {}


def _numeric_fields(cls) -> tuple:
    """``(name, kind, numeric default)`` of the fields of ``cls``."""
    found = _FIELDS.get(cls)
    if found is None:
        # the default matters only to keys that keep defaults as structure (see structure_key)
        found = tuple(
            (f.name, f.metadata.get("kind"), f.default if isinstance(f.default, int) else None)
            for f in dataclasses.fields(cls)
        )
        _FIELDS[cls] = found
    return found


def structure_key(layer, shapes, keep_defaults: bool = False):
    """The structure key of ``layer`` on ``shapes`` and the numbers its general form is called with.

    A numeric field becomes ``"#"`` (``"#2"`` for a pair) and its number a value; everything
    else (the class, flags, text such as ``padding="same"``, which axes are 1) is the
    structure, so one general form serves every stride, padding, dilation and group count.
    ``keep_defaults=True`` keeps a field at its PyTorch default (stride 1, padding 0 ...) as
    structure too: the key of last resort, for layers whose fully general form does not exist
    (``padding="same"`` needs a known stride). Kept cheap (no sympy): it runs for every layer
    of every report.
    """
    key, values = [type(layer)], []
    for name, kind, default in _numeric_fields(type(layer)):
        value = getattr(layer, name)
        numbers = _field_numbers(value, kind, default, keep_defaults)
        if numbers is None:
            key.append(value)
        else:
            values += numbers
            key.append(f"#{len(value)}" if isinstance(value, tuple) else "#")
    for shape in shapes:
        ints = [int(x) for x in shape]
        # a unit axis decides broadcasting and the like: it is structure, not a value
        key.append(tuple(x == 1 for x in ints))
        values += [x for x in ints if x != 1]
    return tuple(key), values


_AXES = {2: ("N", "C_in"), 3: ("N", "C_in", "L"), 4: ("N", "C_in", "H", "W"), 5: ("N", "C_in", "T", "H", "W")}


def _field_numbers(value, kind, default, keep_defaults: bool):
    """The ints a numeric field passes to its general form, or None where the field is structure.

    The one rule :func:`structure_key` and :func:`_general_layer` share: an integer (or a
    tuple of them) of a size, count or padding field is a value, unless ``keep_defaults``
    and it is the field's default. Decided in Python ints: sympy's ``__eq__`` would
    dominate the cost of a report.
    """
    if kind not in ("size", "count", "padding"):
        return None
    if isinstance(value, sympy.Integer):
        return None if keep_defaults and int(value) == default else [int(value)]
    if isinstance(value, tuple) and all(isinstance(v, sympy.Integer) for v in value):
        return [int(v) for v in value]
    return None


def _axis_name(j: int, i: int, rank: int) -> str:
    names = _AXES.get(rank)
    base = names[i] if names else f"d{i}"
    return base if j == 0 else f"{base}_{j}"


def _general_layer(layer, shapes, keep_defaults: bool = False):
    """The layer with its numeric fields as symbols, its symbolic inputs, and the symbols in call order."""
    fields, symbols = {}, []
    for name, kind, default in _numeric_fields(type(layer)):  # the same fields and order as structure_key
        value = getattr(layer, name)
        numbers = _field_numbers(value, kind, default, keep_defaults)
        if numbers is not None:
            assumptions = _SIZE if kind == "size" else _COUNT
            made = tuple(sympy.Symbol(f"{name}_{i}" if isinstance(value, tuple) else name, **assumptions)
                         for i in range(len(numbers)))
            fields[name] = made if isinstance(value, tuple) else made[0]
            symbols += made
    general_shapes = []
    for j, shape in enumerate(shapes):
        made = []
        for i, x in enumerate(shape):
            if int(x) == 1:
                made.append(sympy.Integer(1))
                continue
            s = sympy.Symbol(_axis_name(j, i, len(shape)), **_SIZE)
            made.append(s)
            symbols.append(s)
        general_shapes.append(tuple(made))
    return layer.replace(**fields) if fields else layer, general_shapes, symbols


def fast_cost(layer, shape):
    """``(counts, output_shape)`` of ``layer`` on a concrete ``shape`` (a list of shapes for a merge).

    Every count is a Python int equal to ``layer.cost(shape)``'s, obtained without sympy
    after the first layer of the same structure.
    """
    counts, output_shape, _ = fast_cost_and_formula(layer, shape)
    return counts, output_shape


def fast_cost_and_formula(layer, shape):
    """``(counts, output_shape, formula)``: :func:`fast_cost` and :func:`formula` from one structure lookup."""
    shapes = list(shape) if isinstance(layer, Merge) else [shape]
    compiled, values = _form_for(layer, shapes)
    text = compiled.formula if compiled is not None else ""
    if compiled is not None:
        try:
            out = compiled.function(*values)
        except (ArithmeticError, TypeError, ValueError):
            out = None
        if out is not None:
            m, r = compiled.n_metrics, compiled.rank_out
            numbers = out[: m + r]
            if all(out[m + r :]) and all(type(x) is int for x in numbers):
                return dict(zip(METRICS, numbers[:m])), tuple(numbers[m:]), text
    # the general form does not decide this input: the layer's own formula does (and raises if invalid)
    c = layer.cost(shapes if isinstance(layer, Merge) else shapes[0])
    return {k: int(getattr(c, k)) for k in METRICS}, tuple(int(x) for x in c.output_shape), text


def _form_for(layer, shapes):
    """``(compiled general form or None, the values to call it with)``: the fully general form of the
    layer's structure, else the one that keeps defaults as structure."""
    for keep_defaults in (False, True):
        key, values = structure_key(layer, shapes, keep_defaults)
        try:
            compiled = _CACHE[key]
        except KeyError:
            compiled = _CACHE[key] = _compiled(key, layer, shapes, keep_defaults)
        if compiled is not None:
            return compiled, values
    return None, values


def _compiled(key, layer, shapes, keep_defaults: bool = False):
    """The shipped form of this structure (:mod:`convcost.forms`), else its general form compiled now."""
    from convcost.forms import shipped

    found = shipped(key)
    if found is not None:
        return _Compiled(*found)
    form = general_form(layer, shapes, keep_defaults)
    if form is None:
        return None
    exprs, symbols, rank_out, n_conditions, text = form
    return _Compiled(compile_exprs(exprs, symbols), len(METRICS), rank_out, n_conditions, text)


def general_form(layer, shapes, keep_defaults: bool = False):
    """``(expressions, symbols, output rank, number of conditions, formula text)`` of the structure of
    ``layer`` on ``shapes`` (see :func:`structure_key`): its counts (in METRICS order), output shape and
    conditions on symbols, or None where the structure has no general form (``padding="same"`` needs a
    numeric stride ...)."""
    try:
        general, general_shapes, symbols = _general_layer(layer, shapes, keep_defaults)
        c = general.cost(general_shapes if isinstance(general, Merge) else general_shapes[0])
    except ConvcostError:
        return None
    exprs = [getattr(c, m) for m in METRICS] + list(c.output_shape) + list(c.conditions)
    if any(e.free_symbols - set(symbols) for e in exprs):
        return None
    main = next((m for m in METRICS[1:7] if getattr(c, m) != 0), None)
    text = f"{main} = {getattr(c, main)}" if main else "no arithmetic"
    return exprs, symbols, len(c.output_shape), len(c.conditions), text


def formula(layer, shape) -> str:
    """The main count of ``layer``'s general form for inputs of this rank, as text (the row's formula):
    one formula for every stride, padding, dilation and group count of the layer's class.

    >>> from convcost.primitives import Conv
    >>> formula(Conv(C=3, O=8, K=3, S=2), (1, 3, 32, 32))
    'macs = C*K**2*O*(floor((-D*(K - 1) + H + 2*P - 1)/S) + 1)*(floor((-D*(K - 1) + 2*P + W - 1)/S) + 1)/G'
    """
    shapes = list(shape) if isinstance(layer, Merge) else [shape]
    try:
        compiled, _ = _form_for(layer, shapes)
    except TypeError:  # symbolic input sizes: no structure key
        return ""
    return compiled.formula if compiled is not None else ""
