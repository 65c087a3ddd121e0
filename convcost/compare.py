"""Exact comparisons of two variants: ratio, difference and savings of one metric.

``compare(A, B, metric, **shared)`` costs both on the same shared values and
reports B against A: ``ratio = B / A``, ``difference = A - B`` (what B saves)
and ``savings = 100 (A - B) / A`` percent, all exact sympy expressions that
become exact numbers once every symbol is bound.

A and B are variant classes, variant (or any layer) instances, or costs.
A class is built from the shared values and PyTorch's defaults (bias on,
stride 1, padding 0, groups 1). Shared values bind both: a value names a
field of either spec, or a symbol of either cost. A field that only one
spec pins (``StandardConv(K=5)`` against ``FactorizedConv``'s default) is
carried to the other, since the comparison is of one layer replacing the
other; two specs pinning the same field to different numbers conflict.

>>> from convcost import StandardConv, SeparableConv
>>> compare(StandardConv, SeparableConv, metric="macs").ratio   # MobileNet: 1/N + 1/D_K**2
1/O + K**(-2)
>>> c = compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3)
>>> c.ratio, c.difference, round(float(c.savings), 2)
(70/577, 64896, 87.87)
>>> compare(StandardConv(K=3), SeparableConv(K=5), metric="params")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: StandardConv(K=3) and SeparableConv(K=5) fix the shared symbol K differently (3 vs 5); compare them at one value, or compare their costs
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.costs import METRICS, Cost, metric_of
from convcost.errors import ConvcostError
from convcost.symbols import GLOSSARY
from convcost.validate import entry_point, field_values

#: metric names compare and break_even accept ("memory" is memory access, "flops" is 2 x MACs)
METRIC_NAMES = ("params", "macs", "flops", "memory", *[m for m in METRICS if m not in ("params", "macs")])

_SHARED_FIELDS = set(GLOSSARY) | {"N", "T", "H", "W"}


def check_metric(metric: str) -> str:
    """``metric`` if convcost counts it, else one error listing what it counts."""
    if not isinstance(metric, str) or metric not in METRIC_NAMES:
        raise ConvcostError(f"unknown metric {metric!r}; known: {', '.join(METRIC_NAMES)}")
    return metric


@dataclasses.dataclass(frozen=True, repr=False)
class Comparison:
    """B against A for one metric; every value an exact sympy expression.

    ``ratio`` is ``B / A``, ``difference`` is ``A - B`` (positive when B is
    cheaper) and ``savings`` is ``100 * (A - B) / A``, in percent.
    """

    metric: str
    A: Cost
    B: Cost
    value_a: sympy.Expr
    value_b: sympy.Expr
    ratio: sympy.Expr
    difference: sympy.Expr
    savings: sympy.Expr
    conditions: tuple = ()

    @classmethod
    def of(cls, a: Cost, b: Cost, metric: str) -> Comparison:
        # as sympy numbers: the ratio and savings of two ints are exact rationals, never floats
        va, vb = sympy.sympify(metric_of(a, metric)), sympy.sympify(metric_of(b, metric))
        if va == 0:
            raise ConvcostError(f"{_name(a)} has {metric} = 0: there is nothing to compare B against")
        return cls(
            metric=metric,
            A=a,
            B=b,
            value_a=va,
            value_b=vb,
            ratio=simplest(vb / va),
            difference=simplest(va - vb),
            savings=simplest(100 * (va - vb) / va),
            conditions=tuple(dict.fromkeys((*a.conditions, *b.conditions))),
        )

    @property
    def free_symbols(self) -> set:
        """Symbols the comparison still depends on."""
        return self.value_a.free_symbols | self.value_b.free_symbols

    @property
    def cheaper(self) -> str | None:
        """``"A"``, ``"B"`` or ``"equal"`` where the sign of the difference is decided, else None.

        >>> from convcost import StandardConv, AsymmetricConv
        >>> compare(StandardConv, AsymmetricConv, metric="params", K=3, C=64, O=64).cheaper
        'B'
        """
        d = self.difference
        if d.is_zero:
            return "equal"
        if d.is_positive:
            return "B"
        if d.is_negative:
            return "A"
        return None

    def subs(self, values: dict | None = None, /, **named) -> Comparison:
        """Bind symbols in both costs (checked as :meth:`Cost.subs` checks them)."""
        return Comparison.of(self.A.subs(values, **named), self.B.subs(values, **named), self.metric)

    def as_dict(self) -> dict:
        """Values as strings, or exact numbers where bound (what the CLI prints as JSON)."""
        out = {"A": _name(self.A), "B": _name(self.B), "metric": self.metric}
        for key in ("value_a", "value_b", "ratio", "difference", "savings"):
            out[key] = _plain(getattr(self, key))
        out["conditions"] = [str(c) for c in self.conditions]
        return out

    def __repr__(self) -> str:
        savings = (f"{float(self.savings):.2f}%" if self.savings.is_number else f"{self.savings} %")
        return (
            f"<Comparison of {self.metric}: A = {_name(self.A)}, B = {_name(self.B)}\n"
            f"  A = {self.value_a}\n  B = {self.value_b}\n"
            f"  B/A = {self.ratio}\n  A - B = {self.difference}\n  savings = {savings}>"
        )


@entry_point
def compare(A, B, /, metric: str = "macs", **shared) -> Comparison:
    """B against A for ``metric`` ("params", "macs", "flops", "memory" or any name in METRICS).

    >>> from convcost import InceptionBlock
    >>> c = compare(InceptionBlock(form="5x5"), InceptionBlock(form="3x3"), metric="params", C=3, O=32)
    >>> c.value_a, c.value_b, round(float(c.savings), 2)   # seed 000
    (35264, 28128, 20.24)
    """
    check_metric(metric)
    field_values("compare", shared)
    a, b = shared_costs(A, B, shared)
    return Comparison.of(a, b, metric)


def shared_costs(A, B, shared: dict) -> tuple[Cost, Cost]:
    """The costs of A and B with the shared values bound in both."""
    if isinstance(A, Cost) or isinstance(B, Cost):
        costs = [X if isinstance(X, Cost) else _build(X, {}) for X in (A, B)]
        fields = {}
    else:
        fields = {id_: _fields_for(X) for id_, X in (("A", A), ("B", B))}
        values = {"A": {}, "B": {}}
        for key, value in shared.items():
            for id_, X in (("A", A), ("B", B)):
                if key in fields[id_]:
                    pinned = _pinned(X)
                    if key in pinned and not _same(pinned[key], value):
                        raise ConvcostError(
                            f"{X!r} fixes {key}={_show(pinned[key])} but the shared value is {key}={_show(value)}"
                        )
                    values[id_][key] = value
        _carry_pinned(A, B, fields, values, shared)
        costs = [_build(X, values[id_]) for id_, X in (("A", A), ("B", B))]
    bindable = {k: v for k, v in shared.items() if isinstance(v, (int, sympy.Expr)) and not isinstance(v, bool)}
    known = set().union(*(fields.values() if fields else [set()]))
    for c in costs:
        known |= {s.name for s in c.free_symbols}
    unknown = [k for k in shared if k not in known]
    if unknown:
        raise ConvcostError(
            f"shared value {unknown[0]}={_show(shared[unknown[0]])} is neither a field of "
            f"{_label(A)} or {_label(B)} nor a symbol of their costs"
        )
    return tuple(c.subs(_held(c, bindable)) for c in costs)


def _held(c: Cost, values: dict) -> dict:
    """The values among ``values`` that bind a symbol of ``c`` (the other side may hold the rest)."""
    names = {s.name for s in c.free_symbols} | {s.name for cond in c.conditions for s in cond.free_symbols}
    return {k: v for k, v in values.items() if k in names}


def _fields_for(X) -> set:
    from convcost.layers import Layer

    if isinstance(X, type) and issubclass(X, Layer) or isinstance(X, Layer):
        return {f.name for f in dataclasses.fields(X) if f.init}
    raise ConvcostError(f"compare() needs variant classes, layers or costs, got {X!r}")


def _pinned(X) -> dict:
    """The fields an instance sets away from their defaults (a class pins nothing)."""
    if isinstance(X, type):
        return {}
    out = {}
    for f in dataclasses.fields(X):
        if f.init and f.default is not dataclasses.MISSING and not _same(getattr(X, f.name), f.default):
            out[f.name] = getattr(X, f.name)
    return out


def _carry_pinned(A, B, fields, values, shared) -> None:
    """A symbol field pinned by one spec and left at its default by the other binds both."""
    pa, pb = _pinned(A), _pinned(B)
    common = (fields["A"] & fields["B"] & _SHARED_FIELDS) - set(shared)
    for name in sorted(common):
        if name in pa and name in pb:
            # two different numbers conflict; expressions (C=a**2 against C=a*b) parametrise on purpose
            if not _same(pa[name], pb[name]) and _concrete(pa[name]) and _concrete(pb[name]):
                raise ConvcostError(
                    f"{A!r} and {B!r} fix the shared symbol {name} differently "
                    f"({_show(pa[name])} vs {_show(pb[name])}); compare them at one value, or compare their costs"
                )
        elif name in pa:
            values["B"][name] = pa[name]
        elif name in pb:
            values["A"][name] = pb[name]


def _concrete(value) -> bool:
    if isinstance(value, tuple):
        return all(map(_concrete, value))
    return isinstance(value, (str, bool)) or bool(getattr(sympy.sympify(value), "is_number", False))


def _build(X, values: dict) -> Cost:
    if isinstance(X, type):
        return X(**values).cost()
    _fields_for(X)
    return (X.replace(**values) if values else X).cost()


def _same(a, b) -> bool:
    if isinstance(a, (bool, str)) or isinstance(b, (bool, str)):
        return a == b and type(a) is type(b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    try:
        return bool(sympy.sympify(a) == sympy.sympify(b))
    except (sympy.SympifyError, TypeError):
        return a == b


def _show(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _label(X) -> str:
    return X.__name__ if isinstance(X, type) else _name(X) if isinstance(X, Cost) else repr(X)


def _name(c) -> str:
    spec = c.spec if isinstance(c, Cost) else c
    return repr(spec) if spec is not None else "a cost"


def _plain(value):
    value = sympy.sympify(value)
    if value.is_Integer:
        return int(value)
    if value.is_Rational:
        return str(value)
    return str(value)


def simplest(expr) -> sympy.Expr:
    """The shortest of a few equivalent forms (cancelled, expanded, factored) of ``expr``.

    >>> from convcost.symbols import K, O
    >>> simplest((K**2 + O) / (K**2 * O))
    1/O + K**(-2)
    """
    if isinstance(expr, str):  # sympify of text is eval
        raise ConvcostError(f"simplest: {expr!r} is text; give a sympy expression")
    expr = sympy.sympify(expr)
    if expr.is_number:
        return sympy.nsimplify(expr) if expr.has(sympy.Float) else expr
    forms = [expr]
    for make in (sympy.cancel, lambda e: sympy.expand(sympy.cancel(e)), sympy.factor):
        try:
            forms.append(make(expr))
        except (sympy.PolynomialError, TypeError, ValueError, NotImplementedError):
            pass
    return min(forms, key=lambda e: (sympy.count_ops(e), len(str(e))))
