"""The cost of a layer: exact counts plus the output shape.

Each count is a Python ``int`` when it is a number and a sympy expression when
it depends on symbols; the two are never mixed up (a sympy integer is stored as
an ``int``), so bound costs are plain integer arithmetic end to end.

Counting conventions (the same everywhere in convcost, see docs/conventions.md):

``params``
    learnable parameters; equals ``sum(p.numel() for p in module.parameters())``.
``macs``
    multiply-accumulates of convolutions, transposed convolutions and linear
    layers (the papers' "mult-adds"). Bias is not included; padded zeros are
    counted (conv: output positions x kernel taps; transposed conv: input
    positions x kernel taps). Equals ``FlopCounterMode`` total / 2.
``flops``
    ``2 * macs``, PyTorch's convention.
``bias_ops``
    one addition per output element of a biased conv or linear layer.
``norm_ops``
    one fused multiply-add per element normalised (batch norm in eval mode).
``act_ops``
    one evaluation per element passed through an activation function.
``pool_ops``
    one read per element of every pooling window (outputs x window taps).
``elementwise_ops``
    one operation per output element of an add or multiply (residuals, SE scaling).
``activation_elements``
    elements written by every operation (the activation memory of a forward pass
    that keeps every output).
``memory_access``
    elements read and written: inputs + outputs + weights of every operation,
    as ShuffleNet V2 counts memory access cost.

>>> from convcost import cost, SeparableConv
>>> c = cost(SeparableConv, C=10, O=32, K=3, H=128, W=128)
>>> c.params, c.macs, c.output_shape
(452, 6509160, (1, 32, 126, 126))
>>> c.flops
13018320
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from fractions import Fraction
from typing import Iterable

import sympy

from convcost import display
from convcost.arith import integer, total, where
from convcost.errors import ConvcostError, require
from convcost.symbols import GLOSSARY
from convcost.validate import number

#: the counted quantities of a Cost, in the order they are reported
METRICS = (
    "params",
    "macs",
    "bias_ops",
    "norm_ops",
    "act_ops",
    "pool_ops",
    "elementwise_ops",
    "activation_elements",
    "memory_access",
)

ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

ZERO = 0


@dataclasses.dataclass(frozen=True, repr=False)
class Cost:
    """Exact cost of applying a layer to an input: every count an ``int`` or a sympy expression.

    ``parts`` holds the named costs a composition was summed from, ``conditions``
    the facts that must hold for the cost to be valid but that depend on free
    symbols (e.g. ``Eq(Mod(C, G), 0)``), and ``spec`` the layer that produced it.
    """

    output_shape: tuple
    params: sympy.Expr = ZERO
    macs: sympy.Expr = ZERO
    bias_ops: sympy.Expr = ZERO
    norm_ops: sympy.Expr = ZERO
    act_ops: sympy.Expr = ZERO
    pool_ops: sympy.Expr = ZERO
    elementwise_ops: sympy.Expr = ZERO
    activation_elements: sympy.Expr = ZERO
    memory_access: sympy.Expr = ZERO
    input_shape: tuple = dataclasses.field(default=(), compare=False)
    conditions: tuple = dataclasses.field(default=(), compare=False)
    parts: tuple = dataclasses.field(default=(), compare=False)
    spec: object = dataclasses.field(default=None, compare=False)
    #: ``(symbol, value)`` pairs bound by :meth:`subs`, so a derivation can show the substitution
    bindings: tuple = dataclasses.field(default=(), compare=False)

    def __post_init__(self):
        values = self.__dict__
        for name in METRICS:
            if type(values[name]) is not int:
                object.__setattr__(self, name, _expression(name, values[name]))
        shape = self.output_shape
        if not all(type(x) is int for x in shape):
            shape = tuple(_expression("output_shape", x) for x in shape)
        object.__setattr__(self, "output_shape", tuple(shape))
        if self.conditions:
            object.__setattr__(self, "conditions", _unique(self.conditions))

    # -- derived quantities -------------------------------------------------
    @property
    def flops(self) -> sympy.Expr:
        """``2 * macs`` (PyTorch's FLOP convention)."""
        return 2 * self.macs

    @property
    def weights(self) -> sympy.Expr:
        """Weight elements held in memory: the learnable parameters."""
        return self.params

    @property
    def free_symbols(self) -> set:
        """Symbols the cost still depends on."""
        found = set()
        for x in (*(getattr(self, name) for name in METRICS), *self.output_shape):
            if type(x) is not int:
                found |= x.free_symbols
        return found

    def bytes(self, dtype: str = "float32") -> dict:
        """Memory in bytes for elements of ``dtype``: weights, activations, memory access.

        >>> from convcost import cost, PointwiseConv
        >>> cost(PointwiseConv, C=16, O=32, H=8, W=8).bytes("float16")["weights"]
        1088
        """
        if not isinstance(dtype, str) or dtype not in ITEMSIZE:
            raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
        size = ITEMSIZE[dtype]
        return {
            "weights": size * self.params,
            "activations": size * self.activation_elements,
            "memory_access": size * self.memory_access,
        }

    # -- algebra ------------------------------------------------------------
    def __add__(self, other: Cost) -> Cost:
        """``a + b`` is ``a`` then ``b``: counts add, the shape is ``b``'s output."""
        if type(other) is int and other == 0:
            return self
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost.total([("0", self), ("1", other)], output_shape=other.output_shape, input_shape=self.input_shape)

    def __radd__(self, other) -> Cost:
        if type(other) is int and other == 0:  # so that sum(costs) works
            return self
        return NotImplemented

    def __eq__(self, other) -> bool:
        if not isinstance(other, Cost):
            return NotImplemented
        pairs = [(getattr(self, m), getattr(other, m)) for m in METRICS]
        pairs += list(zip(self.output_shape, other.output_shape))
        return len(self.output_shape) == len(other.output_shape) and all(
            a == b if type(a) is int and type(b) is int else sympy.simplify(a - b) == 0 for a, b in pairs
        )

    __hash__ = None

    @classmethod
    def total(cls, named: Iterable[tuple[str, Cost]], *, output_shape, input_shape=(), spec=None) -> Cost:
        """The sum of named part costs, remembering the parts."""
        named = tuple(named)
        sums = {m: total(getattr(c, m) for _, c in named) for m in METRICS}
        conditions = tuple(cond for _, c in named for cond in c.conditions)
        return cls(
            output_shape=output_shape,
            input_shape=input_shape,
            conditions=conditions,
            parts=named,
            spec=spec,
            **sums,
        )

    def when(self, condition) -> Cost:
        """This cost where ``condition`` holds and nothing otherwise (a ``Piecewise`` per count)."""
        gated = {m: where(condition, getattr(self, m), 0) for m in METRICS}
        # what this cost needs holds only where it applies
        implied = tuple(sympy.Or(sympy.Not(condition), c) for c in self.conditions if not _implied(condition, c))
        return dataclasses.replace(self, conditions=implied, **gated)

    def with_spec(self, spec, input_shape=None) -> Cost:
        """The same counts, attributed to ``spec``."""
        # a copy of already checked values: no need to run the checks of __post_init__ again
        copy = object.__new__(Cost)
        copy.__dict__.update(self.__dict__)
        copy.__dict__["spec"] = spec
        if input_shape is not None:
            copy.__dict__["input_shape"] = tuple(input_shape)
        return copy

    def subs(self, values: dict | None = None, /, **named) -> Cost:
        """Bind symbols (by name or by symbol) and re-check the carried conditions.

        >>> from convcost import cost, StandardConv
        >>> c = cost(StandardConv, C=3, O=32, K=3, P=1)
        >>> c.subs(H=32, W=32).macs
        884736
        >>> c.subs(H=0)
        Traceback (most recent call last):
        ...
        convcost.errors.ConvcostError: cannot bind H=0: it must be a positive integer
        """
        mapping = _bindings(self.free_symbols | {s for cond in self.conditions for s in cond.free_symbols},
                            {**(values or {}), **named})
        if not mapping:
            return self
        replaced = {m: _simplify_bound(_substitute(getattr(self, m), mapping)) for m in METRICS}
        conditions = []
        for cond in self.conditions:
            conditions += require(cond.subs(mapping), "after binding " + _show_mapping(mapping),
                                  f"the condition {cond} does not hold")
        parts = tuple((name, part.subs(mapping)) for name, part in self.parts)
        return dataclasses.replace(
            self,
            output_shape=tuple(_simplify_bound(_substitute(x, mapping)) for x in self.output_shape),
            input_shape=tuple(integer(_substitute(x, mapping)) for x in self.input_shape),
            conditions=tuple(conditions),
            parts=parts,
            bindings=self.bindings + tuple(mapping.items()),
            **replaced,
        )

    def ratio(self, other: Cost, metric: str = "macs") -> sympy.Expr:
        """``self.metric / other.metric``, simplified.

        >>> from convcost import cost, StandardConv, SeparableConv
        >>> shared = dict(C=64, O=128, K=3, H=56, W=56)
        >>> cost(SeparableConv, **shared).ratio(cost(StandardConv, **shared), "params")
        70/577
        """
        if not isinstance(other, Cost):
            raise ConvcostError(f"ratio: other={other!r} must be a Cost (e.g. cost(StandardConv, C=64))")
        a, b = _metric(self, metric), _metric(other, metric)
        if b == 0:
            raise ConvcostError(f"ratio: the other cost's {metric} is 0, so the ratio is undefined")
        return integer(sympy.simplify(sympy.sympify(a) / b))

    def as_dict(self, *, numeric: bool = False) -> dict:
        """Every count, the flops and the output shape; ``numeric=True`` gives Python ints.

        >>> from convcost import cost, PointwiseConv
        >>> cost(PointwiseConv, C=3, O=4, H=2, W=2).as_dict(numeric=True)["macs"]
        48
        """
        if not isinstance(numeric, bool):
            raise ConvcostError(f"as_dict: numeric={numeric!r} must be True or False")
        out = {m: getattr(self, m) for m in METRICS}
        out["flops"] = self.flops
        out["output_shape"] = self.output_shape
        if numeric:
            free = self.free_symbols
            if free:
                raise ConvcostError(
                    f"cannot give numbers: free symbols {', '.join(sorted(map(str, free)))} remain; bind them with subs()"
                )
            out = {k: tuple(int(x) for x in v) if k == "output_shape" else int(v) for k, v in out.items()}
        return out

    # -- display ------------------------------------------------------------
    def __repr__(self) -> str:
        shape = "(" + ", ".join(map(str, self.output_shape)) + ")"
        lines = [f"<Cost of {display.spec(self.spec)}" if self.spec is not None else "<Cost", f"  output_shape = {shape}"]
        for m in METRICS:
            value = getattr(self, m)
            if value != 0 or m in ("params", "macs"):
                lines.append(f"  {m} = {value}")
        if self.conditions:
            lines.append("  valid when " + " and ".join(map(display.condition, self.conditions)))
        return "\n".join(lines) + ">"

    def _repr_latex_(self) -> str:
        rows = [r"\text{output} &= (" + ", ".join(sympy.latex(x) for x in self.output_shape) + ")"]
        for m in METRICS:
            value = getattr(self, m)
            if value != 0 or m in ("params", "macs"):
                rows.append(r"\text{%s} &= %s" % (m.replace("_", r"\_"), sympy.latex(value)))
        return r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"

    def _repr_html_(self) -> str:
        """The cost as an HTML table, for Jupyter: counts with thousands separators, conditions as text.

        >>> from convcost import cost, SeparableConv
        >>> html = cost(SeparableConv, C=64, O=128, K=3)._repr_html_()
        >>> "<td>8,960</td>" in html and "H &gt;= 3" in html
        True
        """
        import html

        from convcost import display

        cell = lambda text: f"<td>{html.escape(text)}</td>"  # noqa: E731
        rows = [f"<tr><th>output_shape</th>{cell('(' + ', '.join(map(display.formula, self.output_shape)) + ')')}</tr>"]
        for m in (*METRICS[:2], "flops", *METRICS[2:]):
            value = getattr(self, m)
            if value != 0 or m in ("params", "macs", "flops"):
                rows.append(f"<tr><th>{m}</th>{cell(display.number(value))}</tr>")
        rows += [f"<tr><th>valid when</th>{cell(display.condition(c))}</tr>" for c in self.conditions]
        caption = f"<caption>{html.escape(display.spec(self.spec))}</caption>" if self.spec is not None else ""
        return f"<table>{caption}{''.join(rows)}</table>"


#: every metric name the analyses accept ("memory" is memory access, "flops" is 2 x MACs)
METRIC_NAMES = ("params", "macs", "flops", "memory", *[m for m in METRICS if m not in ("params", "macs")])


def check_metric(metric) -> str:
    """The count ``metric`` names (``"memory"`` is ``"memory_access"``), or one error listing every name.

    The one check of a metric name, for every analysis that takes one.

    >>> check_metric("memory"), check_metric("flops")
    ('memory_access', 'flops')
    """
    if not isinstance(metric, str) or metric not in METRIC_NAMES:
        raise ConvcostError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    return "memory_access" if metric == "memory" else metric


def _metric(c: Cost, metric: str):
    name = check_metric(metric)
    return c.flops if name == "flops" else getattr(c, name)


def metric_of(c: Cost, metric: str) -> sympy.Expr:
    """The named metric of a cost as a sympy expression, for the analyses (``"memory"`` is memory access,
    ``"flops"`` 2 x MACs)."""
    return sympy.sympify(_metric(c, metric))


def _implied(condition, fact) -> bool:
    """True when the equalities in ``condition`` make ``fact`` true (``C = O`` gives ``O - C = 0``)."""
    equalities = [condition] if isinstance(condition, sympy.Eq) else [
        a for a in getattr(condition, "args", ()) if isinstance(a, sympy.Eq)
    ] if isinstance(condition, sympy.And) else []
    substitution = {eq.lhs: eq.rhs for eq in equalities if isinstance(eq.lhs, sympy.Symbol)}
    return bool(substitution) and fact.subs(substitution) is sympy.true


def _unique(conditions) -> tuple:
    seen, out = set(), []
    for cond in conditions:
        if cond not in seen:
            seen.add(cond)
            out.append(cond)
    return tuple(out)


def _expression(name: str, value):
    """A count as an int or a sympy expression; text is refused, since sympify of text is eval."""
    if type(value) is int:
        return value
    if isinstance(value, sympy.Basic):
        if not isinstance(value, sympy.Expr):
            raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression")
        return integer(value)
    if isinstance(value, (str, bytes)):  # never sympified: sympify of text is eval
        raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression, not text")
    if isinstance(value, bool) or not isinstance(value, (numbers.Rational, float)):
        raise ConvcostError(f"Cost: {name}={value!r} must be a number or a sympy expression")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConvcostError(f"Cost: {name}={value!r} must be finite")
    return integer(sympy.Rational(Fraction(value)) if not isinstance(value, numbers.Integral) else int(value))


def _substitute(x, mapping):
    return x if type(x) is int else integer(sympy.sympify(x).subs(mapping))


def _simplify_bound(expr):
    if type(expr) is int:
        return expr
    expr = sympy.sympify(expr)
    return integer(expr if expr.free_symbols else sympy.nsimplify(expr) if expr.has(sympy.Float) else expr)


def _bindings(free: set, values: dict) -> dict:
    """Map names or symbols to checked values, against the symbols the cost holds."""
    by_name = {}
    for sym in free:
        by_name.setdefault(sym.name, []).append(sym)
    mapping = {}
    for key, value in values.items():
        name = key.name if isinstance(key, sympy.Symbol) else key
        if not isinstance(name, str):
            raise ConvcostError(f"cannot bind {key!r}: give a symbol name or a sympy Symbol")
        value = _bound_value(name, value)
        if name not in by_name and name not in GLOSSARY:  # a typo would otherwise bind nothing
            known = ", ".join(sorted(by_name)) or "none"
            raise ConvcostError(f"cannot bind {name}: the cost has no symbol {name!r} (its symbols: {known})")
        for sym in by_name.get(name, ()):
            if sym.is_integer and value.is_number and not value.is_integer:
                raise ConvcostError(f"cannot bind {name}={value}: it must be an integer")
            if sym.is_positive and value.is_number and not value.is_positive:
                raise ConvcostError(f"cannot bind {name}={value}: it must be a positive integer")
            if sym.is_nonnegative and value.is_number and value.is_negative:
                raise ConvcostError(f"cannot bind {name}={value}: it must be non-negative")
            mapping[sym] = value
    return mapping


def _bound_value(name, value):
    # ints, finite floats (read as the decimal written), Fractions, numpy numbers and finite sympy expressions
    return number("cannot bind", name, value)


def _show_mapping(mapping: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())
