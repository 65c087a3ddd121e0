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

A shared value must mean the same on both sides: a field (or glossary symbol)
that only one side has is refused, never bound on one side and dropped on the
other. Bind it on its own side instead, in the spec (``StandardConv(O=128)``;
``A.O=128`` from the shell):

>>> from convcost import StandardConv, DepthwiseConv
>>> compare(StandardConv, DepthwiseConv, C=64, O=128, K=3)
Traceback (most recent call last):
...
convcost.errors.ConvcostError: shared value O=128 is a field of StandardConv but not of DepthwiseConv, so it would
compare different layers; bind it on one side instead: StandardConv(O=128) (from the shell: A.O=128)
>>> c = compare(StandardConv(O=128), DepthwiseConv(M=2), metric="params", C=64, K=3)
>>> c.value_a, c.value_b
(73856, 1280)

>>> from convcost import StandardConv, SeparableConv
>>> compare(StandardConv, SeparableConv, metric="macs").ratio   # MobileNet: 1/N + 1/D_K**2
1/O + K**(-2)
>>> c = compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3)
>>> c.ratio, c.difference, round(float(c.savings), 2)
(70/577, 64896, 87.87)
>>> compare(StandardConv(K=3), SeparableConv(K=5), metric="params")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: StandardConv(K=3) and SeparableConv(K=5) fix the shared symbol K differently (3 vs 5);
compare them at one value, or compare their costs
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost import display
from convcost.costs import Cost, check_metric, metric_of
from convcost.errors import ConvcostError
from convcost.symbols import GLOSSARY
from convcost.validate import entry_point, field_values

_SHARED_FIELDS = set(GLOSSARY) | {"N", "T", "H", "W"}


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
        """Bind symbols in both costs (checked as :meth:`Cost.subs` checks them).

        A glossary symbol that only one cost has is refused, as in :func:`compare`.
        """
        given = {(k.name if isinstance(k, sympy.Symbol) else k): v for k, v in {**(values or {}), **named}.items()}
        refuse_one_sided(self.A, self.B, given, _symbol_names(self.A), _symbol_names(self.B))
        return Comparison.of(self.A.subs(values, **named), self.B.subs(values, **named), self.metric)

    def as_dict(self) -> dict:
        """Values for JSON (what the CLI prints): integers as ints, a non-integer number as a float with its
        exact value in ``..._exact``, a formula as text.

        >>> from convcost import StandardConv, SeparableConv
        >>> d = compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3).as_dict()
        >>> d["value_a"], d["ratio"], d["ratio_exact"], round(d["savings"], 2), d["savings_exact"]
        (73856, 0.12131715771230503, '70/577', 87.87, '50700/577')
        """
        out = {"A": display.spec(self.A.spec), "B": display.spec(self.B.spec), "metric": self.metric}
        for key in ("value_a", "value_b", "ratio", "difference", "savings"):
            out.update(display.json_fields(key, getattr(self, key)))
        out["conditions"] = [display.condition(c) for c in self.conditions]
        return out

    def __str__(self) -> str:
        lines = [f"{self.metric}: A = {display.spec(self.A.spec)}, B = {display.spec(self.B.spec)}"]
        for label, value in (("A", self.value_a), ("B", self.value_b), ("B/A", self.ratio),
                             ("A - B", self.difference)):
            lines.append(f"  {label:<7} = {display.number(value)}")
        lines.append(f"  savings = {display.percent(self.savings)}")
        lines += [f"  valid when {display.condition(c)}" for c in self.conditions]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Comparison of {self}>"

    def _repr_html_(self) -> str:
        """The comparison as an HTML table, for Jupyter (the text's lines, numbers right-aligned)."""
        return display.html_lines(str(self))

    def _repr_latex_(self) -> str:
        """The comparison as an aligned block, for Jupyter."""
        head = display.latex_text(f"{self.metric}: A = {display.spec(self.A.spec)}, B = {display.spec(self.B.spec)}")
        rows = [rf"&\text{{{head}}}"]
        for label, value in ((r"A", self.value_a), (r"B", self.value_b), (r"B / A", self.ratio),
                             (r"A - B", self.difference), (r"\text{savings}", self.savings)):
            rows.append(rf"{label} &= {display.latex(value)}" + (r" \,\%" if label == r"\text{savings}" else ""))
        rows += [rf"&\text{{valid when }} {sympy.latex(c)}" for c in self.conditions]
        return r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"


@entry_point
def compare(A, B, /, metric: str = "macs", **shared) -> Comparison:
    """B against A for ``metric`` ("params", "macs", "flops", "memory" or any name in METRICS); the front door
    :func:`convcost.compare` also takes ``metric="latency"`` with ``machine=`` (:mod:`convcost.latency_analysis`).

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
    names = [fields.get(id_, set()) | _symbol_names(c) for id_, c in zip("AB", costs)]
    refuse_one_sided(A, B, shared, *names, fields_a=fields.get("A", set()), fields_b=fields.get("B", set()))
    known = names[0] | names[1]
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


def refuse_one_sided(A, B, shared: dict, names_a: set, names_b: set, fields_a=(), fields_b=()) -> None:
    """Refuse a shared layer field or glossary symbol that only one side has (it would be dropped on the other).

    ``names_a``/``names_b`` are each side's field names and cost symbols. A symbol
    outside the glossary (a parametrisation such as ``C=a**2``) binds wherever it occurs.
    """
    layer_names = _SHARED_FIELDS | set(fields_a) | set(fields_b)
    for key, value in shared.items():
        if key not in layer_names or (key in names_a) == (key in names_b):
            continue
        has, lacks, side = (A, B, "A") if key in names_a else (B, A, "B")
        what = "a field" if key in (fields_a if side == "A" else fields_b) else "a symbol"
        binding = f"{key}={_show(value)}"
        if isinstance(has, Cost):
            fix = f"bind it in {side}'s cost alone ({side}.subs({binding}))"
        else:
            name = has.__name__ if isinstance(has, type) else type(has).__name__
            fix = f"bind it on one side instead: {name}({'' if isinstance(has, type) else '..., '}{binding})"
            fix += f" (from the shell: {side}.{binding})"
        raise ConvcostError(
            f"shared value {binding} is {what} of {_label(has)} but not of {_label(lacks)}, "
            f"so it would compare different layers; {fix}"
        )


def _symbol_names(c: Cost) -> set:
    found = {s.name for s in c.free_symbols}
    for cond in c.conditions:
        found |= {s.name for s in cond.free_symbols}
    return found


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
    return display.spec(c.spec if isinstance(c, Cost) else c)


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
