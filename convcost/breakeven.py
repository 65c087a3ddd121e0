"""Exact break-even conditions: where B costs no more than A, solved for one symbol.

``break_even(A, B, metric, solve_for)`` reduces ``A - B`` of the metric to a
condition ``p >= 0`` and solves it for the symbol. sympy's ``solve`` cannot
order parametric roots of an inequality, so the reduction is done here:

1. ``A - B`` over a common denominator; the denominator's sign is decided
   from the symbols' assumptions and multiplied out.
2. The numerator is factored; factors whose sign the assumptions decide
   (``O``, ``C + O``, ...) or that are output sizes of either layer (positive
   for every valid configuration) are cancelled, flipping the relation for
   negative ones. What remains is ``p``: the condition is ``p >= 0``.
3. ``p`` as a polynomial in the solved symbol ``x > 0``: when the signs of
   its coefficients are decided and change exactly once (Descartes' rule of
   signs), ``p`` has exactly one positive root ``r`` and the sign of the
   leading coefficient says which side wins: ``x >= r`` or ``x <= r``. The root
   is in closed form for degree 1 and 2, binomials ``a x**n + c``, and cubics or
   quartics whose positive root sympy's formulas single out.
4. The rule of thumb is the same solution at leading order when every other
   symbol is large (scale them by ``lambda -> oo`` and keep the top power).

Otherwise there is no closed form and the result says why; the exact
condition still holds, and :meth:`BreakEven.threshold_at` answers numerically
(clearly labelled) once the other symbols are bound. Over the canonical
symbols the solved symbol is an integer: the real threshold ``r`` means
``x >= ceil(r)``.

Seed 004 (KxK against Kx1 then 1xK, bias on, O filters each):

>>> from convcost import StandardConv, AsymmetricConv
>>> be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
>>> be.condition
C*K**2 - C*K - K*O - 1 >= 0
>>> be.solution
K >= (C + O + sqrt(4*C + (C + O)**2))/(2*C)
>>> be.rule_of_thumb
K > 1 + O/C
>>> [be.holds(K=3, C=c, O=o) for c, o in ((1, 32), (32, 64), (64, 64))]
[False, False, True]
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import sympy

from convcost import display
from convcost.comparison import Comparison, compare, simplest
from convcost.costs import Cost, check_metric
from convcost.errors import ConvcostError
from convcost.validate import broadcast, entry_point, field_values, grid, is_integral, number

_LAMBDA = sympy.Symbol("lambda_", positive=True)

#: the largest ``limit`` :meth:`BreakEven.threshold_at` scans to
_THRESHOLD_LIMIT = 10**6

#: the most points :meth:`BreakEven.region` evaluates in Python integers (when int64 could overflow)
_EXACT_OBJECT_POINTS = 10**5


def _show_values(mapping: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items()) or "no values"


@dataclasses.dataclass(frozen=True, repr=False)
class BreakEven:
    """Where B costs no more than A for one metric, solved for one symbol.

    ``condition`` is the exact relation ``p >= 0`` (``p`` is ``A - B`` with
    positive factors cancelled, listed in ``cancelled``). Where a closed form
    exists, ``threshold`` is the root and ``solution`` the relation
    ``x >= threshold`` (or ``<=``); ``rule_of_thumb`` is its leading order.
    ``method`` is ``"closed form"`` or ``"numeric"``; ``note`` says why.
    """

    metric: str
    symbol: sympy.Symbol | None  # None when every value is bound: the result is which side is cheaper
    comparison: Comparison
    expression: sympy.Expr
    condition: sympy.Basic
    cancelled: tuple
    threshold: sympy.Expr | None
    direction: str | None
    solution: sympy.Basic | None
    rule_of_thumb: sympy.Basic | None
    method: str
    note: str
    assuming: tuple = ()

    @property
    def closed_form(self) -> bool:
        """Whether the winner is decided by a closed form (a threshold, or a sign that never changes)."""
        return self.method == "closed form"

    @property
    def variables(self) -> tuple:
        """The symbols the condition depends on, sorted by name (the order :meth:`region` uses)."""
        return tuple(sorted(self.expression.free_symbols, key=lambda s: s.name))

    # -- evaluation -----------------------------------------------------------------
    def holds(self, /, **values) -> bool:
        """Whether B costs no more than A at one point (exact integer arithmetic).

        >>> from convcost import StandardConv, AsymmetricConv
        >>> be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
        >>> be.holds(K=7, C=16, O=64)
        True
        """
        mapping = self._bind(values, self.variables, where="holds")
        value = sympy.sympify(self.expression.subs(mapping))
        if not value.is_number:
            raise ConvcostError(f"holds(): the condition still depends on {value.free_symbols}")
        if value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) or value.is_extended_real is not True:
            raise ConvcostError(f"holds(): at {_show_values(mapping)} the condition's left side is {value}, "
                                "not a finite real number")
        return bool(value >= 0)

    def region(self, /, **grids) -> np.ndarray:
        """Vectorised :meth:`holds`: numpy arrays (broadcast together) for every symbol.

        Arrays broadcast by numpy's rules (else one error naming their shapes), up to
        ``convcost.validate.MAX_GRID`` points. Integer arrays are evaluated exactly: in int64 where
        no intermediate value can overflow it, otherwise in Python integers; floats in float64.

        >>> import numpy as np
        >>> from convcost import StandardConv, AsymmetricConv
        >>> be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
        >>> be.region(K=np.arange(1, 8), C=64, O=64)
        array([False, False,  True,  True,  True,  True,  True])
        """
        self._bind(grids, self.variables, arrays=True)
        arrays = {s.name: grid("region", s.name, grids[s.name]) for s in self.variables}
        shape = broadcast("region", arrays)
        args = self._exact(list(arrays.values()), shape)
        with np.errstate(all="ignore"):  # nan (a root of a negative number) compares as False
            result = np.asarray(self._vectorised(*args) >= 0, dtype=bool)
        return result if result.shape == shape else np.broadcast_to(result, shape).copy()

    def _exact(self, arrays: list, shape: tuple) -> list:
        """Integer grids as int64 where the condition cannot overflow it, else as Python ints (exact)."""
        if not arrays or any(a.dtype.kind == "f" for a in arrays) or not self.expression.is_polynomial():
            try:  # floats throughout (a Python int past int64 among them becomes one)
                return [a.astype(np.float64) if a.dtype == object else a for a in arrays]
            except OverflowError:
                raise ConvcostError("region: a value exceeds floating point") from None
        largest = max((max(int(a.max()), -int(a.min())) for a in arrays if a.size), default=0)
        weight, degree = self._size
        if weight * max(largest, 1) ** degree < 2**62 and largest < 2**62:
            return [a.astype(np.int64) for a in arrays]
        if math.prod(shape) > _EXACT_OBJECT_POINTS:
            raise ConvcostError(f"region: values up to {largest} overflow int64 in this condition; exact "
                                f"evaluation takes at most {_EXACT_OBJECT_POINTS:,} points, the grid has "
                                f"{math.prod(shape):,}")
        return [a.astype(object) for a in arrays]

    @functools.cached_property
    def _size(self) -> tuple:
        """``(sum of |coefficients|, total degree)``: with every |value| <= v, |p| <= sum * v**degree."""
        poly = sympy.Poly(self.expression, *self.variables)
        if not all(c.is_Integer for c in poly.coeffs()):
            return 2**62, 1  # rational coefficients: no int64 evaluation
        return sum(abs(int(c)) for c in poly.coeffs()), max(poly.total_degree(), 1)

    @functools.cached_property
    def _vectorised(self):
        return sympy.lambdify(self.variables, sympy.horner(self.expression) if self.expression.is_polynomial() else
                              self.expression, modules="numpy")

    def threshold_at(self, /, **values) -> tuple:
        """The values of the solved symbol where the winner changes, the other symbols bound.

        From the closed form where there is one (exact); otherwise numeric
        (floats: the positive real roots of the polynomial where it changes
        sign, or for a non-polynomial condition the integers ``x`` in
        ``1..limit`` at which the winner differs from ``x - 1``).

        >>> from convcost import StandardConv, AsymmetricConv
        >>> be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
        >>> be.threshold_at(C=64, O=64)
        (1 + sqrt(65)/8,)
        """
        limit = values.pop("limit", 4096)
        if not is_integral(limit) or not 1 <= limit <= _THRESHOLD_LIMIT:
            raise ConvcostError(f"threshold_at: limit={limit!r} must be an integer from 1 to {_THRESHOLD_LIMIT}")
        others = tuple(s for s in self.variables if s != self.symbol)
        mapping = self._bind(values, others, where="threshold_at")
        if self.threshold is not None:
            return (sympy.nsimplify(sympy.expand(self.threshold.subs(mapping))),)
        bound = sympy.sympify(self.expression.subs(mapping))
        x = self.symbol
        if bound.free_symbols - {x} or not all(v.is_number for v in mapping.values()):
            raise ConvcostError(f"threshold_at: there is no closed form, so every other symbol needs a number "
                                f"(got {_show_values(mapping)})")
        try:
            return self._numeric_thresholds(bound, x, int(limit))
        except OverflowError:
            raise ConvcostError(f"threshold_at: at {_show_values(mapping)} the numbers exceed floating point; "
                                "no numeric threshold") from None

    def _numeric_thresholds(self, bound, x, limit: int) -> tuple:
        try:
            poly = sympy.Poly(bound, x)
        except sympy.PolynomialError:
            f = sympy.lambdify(x, bound, modules="numpy")
            xs = np.arange(1, int(limit) + 1)
            wins = np.asarray(f(xs) >= 0) * np.ones(xs.shape, dtype=bool)
            return tuple(int(v) for v in xs[1:][wins[1:] != wins[:-1]])
        coeffs = [float(c) for c in poly.all_coeffs()]
        roots = np.roots(coeffs) if len(coeffs) > 1 else np.array([])
        real = sorted({float(r.real) for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r)) and r.real > 0})
        g = sympy.lambdify(x, bound)
        eps = 1e-7
        return tuple(r for r in real if (g(r * (1 - eps) - eps) >= 0) != (g(r * (1 + eps) + eps) >= 0))

    def _bind(self, values: dict, needed: tuple, arrays: bool = False, where: str = "holds") -> dict:
        known = {s.name for s in self.comparison.free_symbols} | {s.name for s in needed}
        extra = [k for k in values if k not in known]
        if extra:
            raise ConvcostError(
                f"{extra[0]} is not a symbol of this comparison; it depends on {', '.join(s.name for s in needed)}"
            )
        missing = [s.name for s in needed if s.name not in values]
        if missing:
            raise ConvcostError(f"give a value for {', '.join(missing)} (the condition depends on it)")
        if arrays:
            return {}
        mapping = {}
        for s in needed:
            v = number(where, s.name, values[s.name])
            # the condition is exact for the values its symbols stand for (sizes are positive integers)
            if v.is_number and ((s.is_integer and not v.is_integer) or (s.is_positive and not v.is_positive)):
                rule = "a positive integer" if s.is_integer and s.is_positive else "positive" if s.is_positive \
                    else "an integer"
                raise ConvcostError(f"{where}: {s.name}={v} must be {rule}")
            mapping[s] = v
        return mapping

    # -- display --------------------------------------------------------------------
    def as_dict(self) -> dict:
        """Every part for JSON (what the CLI prints): formulas and conditions as text, as the glossary writes them."""
        show = lambda v: None if v is None else display.formula(v)  # noqa: E731
        return {
            "A": display.spec(self.comparison.A.spec),
            "B": display.spec(self.comparison.B.spec),
            "metric": self.metric,
            "solve_for": None if self.symbol is None else self.symbol.name,
            "difference": display.formula(self.comparison.difference),
            "condition": display.formula(self.condition),
            "cancelled": [display.formula(c) for c in self.cancelled],
            "threshold": show(self.threshold),
            "solution": show(self.solution),
            "rule_of_thumb": show(self.rule_of_thumb),
            "method": self.method,
            "note": self.note,
            "assuming": [display.formula(a) for a in self.assuming],
        }

    def __str__(self) -> str:
        a, b = display.spec(self.comparison.A.spec), display.spec(self.comparison.B.spec)
        f = display.formula
        lines = [f"{self.metric}: A = {a}, B = {b}"]
        if self.condition in (sympy.true, sympy.false):  # decided: no relation left to print ("when True")
            lines.append(f"  B costs no more than A: {_decided_word(self)}")
        else:
            lines.append(f"  B costs no more than A exactly when  {f(self.condition)}")
        if self.cancelled:
            lines.append(f"  (A - B = {f(self.comparison.difference)}; cancelled positive factors: "
                         f"{', '.join(map(f, self.cancelled))})")
        if self.solution is not None:
            where = f"  (assuming {' and '.join(map(f, self.assuming))})" if self.assuming else ""
            lines.append(f"  threshold (closed form):  {f(self.solution)}{where}")
        if self.rule_of_thumb is not None:
            lines.append(f"  rule of thumb (leading order, other symbols large):  {f(self.rule_of_thumb)}")
        lines.append(f"  method: {self.method}: {self.note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BreakEven {self}>"

    def _repr_html_(self) -> str:
        """The result as an HTML table, for Jupyter (the text's lines)."""
        return display.html_lines(str(self))

    def _repr_latex_(self) -> str:
        """The condition, the threshold and the rule of thumb as an aligned block, for Jupyter.

        >>> from convcost import StandardConv, AsymmetricConv
        >>> print(break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")._repr_latex_())
        $\\begin{aligned}&\\text{params: A = StandardConv(), B = AsymmetricConv()} \\\\ &\\text{B costs no more than A
        exactly when } C K^{2} - C K - K O - 1 \\geq 0 \\\\ &\\text{threshold (closed form): } K \\geq ...
        \\\\ &\\text{rule of thumb: } K > 1 + \\frac{O}{C}\\end{aligned}$
        """
        a, b = display.spec(self.comparison.A.spec), display.spec(self.comparison.B.spec)
        rows = [rf"&\text{{{display.latex_text(f'{self.metric}: A = {a}, B = {b}')}}}"]
        if self.condition in (sympy.true, sympy.false):
            rows.append(rf"&\text{{B costs no more than A: {_decided_word(self)}}}")
        else:
            rows.append(rf"&\text{{B costs no more than A exactly when }} {sympy.latex(self.condition)}")
        if self.solution is not None:
            rows.append(rf"&\text{{threshold (closed form): }} {sympy.latex(self.solution)}")
        if self.rule_of_thumb is not None:
            rows.append(rf"&\text{{rule of thumb: }} {sympy.latex(self.rule_of_thumb)}")
        if self.solution is None and self.rule_of_thumb is None:
            rows.append(rf"&\text{{{display.latex_text(self.method + ': ' + self.note)}}}")
        return r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"


@entry_point
def break_even(A, B, /, metric: str = "macs", solve_for=None, **shared) -> BreakEven:
    """The exact condition under which B costs no more than A, solved for ``solve_for``; the front door
    :func:`convcost.break_even` also takes ``metric="latency"`` with ``machine=``: under which B is no slower on
    that machine (:func:`convcost.latency_analysis.break_even_latency`: the roofline's Max terms as cases).

    A, B and the shared values are as in :func:`convcost.comparison.compare`. ``solve_for`` left out is ``K``
    where the costs depend on it, else the one symbol they depend on. With every value bound there is
    nothing to solve: the result says which side is cheaper and by how much.

    >>> from convcost import StandardConv, SeparableConv
    >>> print(break_even(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3))
    params: A = StandardConv(C=64, O=128, K=3), B = SeparableConv(C=64, O=128, K=3)
      B costs no more than A: yes
      method: closed form: every value is bound: B is cheaper by 64,896 (87.87% of A)
    >>> break_even(StandardConv, SeparableConv, metric="params", C=64, O=128).solution   # K, the default
    K >= sqrt(16383)/127

    >>> from convcost import StandardConv, SeparableConv
    >>> break_even(StandardConv, SeparableConv, metric="params", solve_for="H")
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: params of SeparableConv() against StandardConv() does not depend on H; it depends on
    C, K, O
    """
    check_metric(metric)
    field_values("break_even", shared)
    return solve_comparison(compare(A, B, metric=metric, **shared), solve_for)


def solve_comparison(comparison: Comparison, solve_for=None) -> BreakEven:
    """The break-even of a comparison already made, solved for ``solve_for``.

    :func:`break_even` is this on ``compare(A, B, metric, **shared)``; other
    analyses (the algorithms of :mod:`convcost.algorithms`) build their own
    comparison of two costs and reuse the same reduction and solving.

    >>> from convcost import StandardConv, SeparableConv
    >>> solve_comparison(compare(StandardConv, SeparableConv, metric="params"), "O").solution
    O >= (K**2 + 1)/(K**2 - 1)
    """
    metric = comparison.metric
    diff = comparison.difference
    if not sympy.sympify(diff).free_symbols and solve_for is None:
        return _decided(comparison)
    x = _solved_symbol(comparison, solve_for)
    if x not in diff.free_symbols:
        depends = ", ".join(sorted(s.name for s in diff.free_symbols)) or "nothing (it is a number)"
        raise ConvcostError(
            f"{metric} of {display.spec(comparison.B.spec)} against {display.spec(comparison.A.spec)} does not "
            f"depend on {x.name}; "
            f"it depends on {depends}"
        )
    facts = _positive_facts(comparison.A, comparison.B)
    expr, cancelled, reduce_note = _reduce(diff, facts)
    condition = sympy.Ge(expr, 0)
    if condition in (sympy.true, sympy.false):  # decided by the assumptions alone
        threshold, direction, assuming = None, "always" if condition else "never", ()
        note = ("B never costs more than A" if condition else "B always costs more than A") + \
            ", for every value the assumptions allow"
    else:
        threshold, direction, note, assuming = _solve(expr, x, facts)
    solution = None
    if threshold is not None:
        solution = (sympy.Ge if direction == ">=" else sympy.Le)(x, threshold)
    method = "closed form" if threshold is not None or direction in ("always", "never", "independent") else "numeric"
    if reduce_note:
        note = f"{reduce_note}; {note}"
    if method == "numeric":
        note += "; the condition is exact, thresholds come numerically from threshold_at()"
    return BreakEven(
        metric=metric,
        symbol=x,
        comparison=comparison,
        expression=expr,
        condition=condition,
        cancelled=cancelled,
        threshold=threshold,
        direction=direction,
        solution=solution,
        rule_of_thumb=_rule_of_thumb(expr, x, facts),
        method=method,
        note=note,
        assuming=assuming,
    )


def _decided_word(be) -> str:
    """A decided condition in a word: yes or no at bound values, always or never by the assumptions."""
    if be.symbol is None:
        return "yes" if be.condition else "no"
    return "always" if be.condition else "never"


def _decided(comparison: Comparison) -> BreakEven:
    """Every value bound: which side is cheaper, and by how much."""
    diff = sympy.sympify(comparison.difference)
    a = sympy.sympify(comparison.value_a)
    share = f" ({display.percent(100 * abs(diff) / a)} of A)" if a.is_number and a != 0 else ""
    if diff == 0:
        note = "every value is bound: A and B cost the same"
    else:
        note = (f"every value is bound: {'B' if diff > 0 else 'A'} is cheaper by {display.number(abs(diff))}{share}")
    condition = sympy.Ge(diff, 0)
    return BreakEven(metric=comparison.metric, symbol=None, comparison=comparison, expression=diff,
                     condition=condition, cancelled=(), threshold=None, direction="always" if condition else "never",
                     solution=None, rule_of_thumb=None, method="closed form", note=note)


def _solved_symbol(comparison: Comparison, solve_for) -> sympy.Symbol:
    if solve_for is None:  # K where the costs depend on it, else their one symbol
        names = sorted(s.name for s in sympy.sympify(comparison.difference).free_symbols)
        if "K" in names or len(names) != 1:
            if "K" not in names:
                raise ConvcostError(f"give solve_for: the difference depends on {', '.join(names)}, not on K")
            solve_for = "K"
        else:
            solve_for = names[0]
    name = solve_for.name if isinstance(solve_for, sympy.Symbol) else solve_for
    if not isinstance(name, str):
        raise ConvcostError(f"solve_for={solve_for!r}: give a symbol name such as 'K'")
    symbols = {s.name: s for s in comparison.A.free_symbols | comparison.B.free_symbols}
    if name not in symbols:
        known = ", ".join(sorted(symbols)) or "no symbols (every value is bound)"
        raise ConvcostError(f"unknown solve-for symbol {name!r}: the costs depend on {known}")
    return symbols[name]


# -- step 1 and 2: reduce A - B to p >= 0 -------------------------------------------------
def _positive_facts(*costs: Cost) -> set:
    """Factors of output sizes of every part: positive in every valid configuration."""
    facts = set()

    def visit(c: Cost):
        for entry in c.output_shape:
            for f in _factors(entry):
                facts.add(f)
        for _, part in c.parts:
            visit(part)

    for c in costs:
        visit(c)
    return facts


def _factors(expr) -> list:
    """The factors of a positive quantity that are themselves positive (all but one decided)."""
    try:
        const, factors = sympy.factor_list(sympy.sympify(expr))
    except (sympy.PolynomialError, NotImplementedError):
        return [sympy.sympify(expr)]
    undecided = [f for f, m in factors if not (f.is_positive or m % 2 == 0)]
    if len(undecided) != 1:
        return []
    return [undecided[0] if const > 0 else -undecided[0]]


def _sign(expr, facts: set) -> int | None:
    expr = sympy.sympify(expr)
    if expr.is_positive:
        return 1
    if expr.is_negative:
        return -1
    if expr in facts:
        return 1
    if -expr in facts:
        return -1
    expanded = sympy.expand(expr)
    if expanded.is_positive:
        return 1
    if expanded.is_negative:
        return -1
    return None


def _reduce(diff, facts: set) -> tuple:
    """``(p, cancelled, note)``: ``diff >= 0`` exactly when ``p >= 0`` for valid configurations."""
    num, den = sympy.fraction(sympy.together(diff))
    cancelled = []
    sd = _sign(den, facts)
    if sd is None:
        return diff, (), f"the sign of the denominator {den} is not decided"
    if den != 1:
        cancelled.append(den)
    num = sd * num
    try:
        const, factors = sympy.factor_list(num)
    except (sympy.PolynomialError, NotImplementedError):
        return num, tuple(cancelled), ""
    sign = 1 if const > 0 else -1
    if abs(const) != 1:
        cancelled.append(abs(const))
    kept, squares = [], []
    for f, m in factors:
        s = _sign(f, facts)
        if s is None:
            # an even power stays a visible square, so that (a - b)**2 >= 0 is decided as true
            (squares if m % 2 == 0 else kept).append(f**m)
            continue
        if s < 0 and m % 2:
            sign = -sign
        cancelled.append(f**m if s > 0 else (-f) ** m)
    return sign * sympy.expand(sympy.Mul(*kept)) * sympy.Mul(*squares), tuple(cancelled), ""


# -- step 3: one positive root, chosen by the leading coefficient's sign -----------------
def _solve(expr, x, facts) -> tuple:
    """``(threshold, direction, note, assuming)`` for ``expr >= 0`` over ``x > 0``.

    A coefficient the assumptions prove only non-negative (``O - 1``) counts as
    positive, and the answer says it assumes so (``O - 1 > 0``).
    """
    if x not in expr.free_symbols:
        return None, "independent", (f"the winner does not depend on {x}: after cancelling positive factors the "
                                     "condition does not involve it"), ()
    try:
        poly = sympy.Poly(expr, x)
    except sympy.PolynomialError:
        return None, None, f"no closed form: the condition is not a polynomial in {x}", ()
    coeffs = poly.all_coeffs()
    terms = [(poly.degree() - i, c) for i, c in enumerate(coeffs) if c != 0]
    signs, assuming = [], []
    for power, c in terms:
        s = _sign(c, facts)
        if s is None:
            weak = 1 if c.is_nonnegative or sympy.expand(c).is_nonnegative else (
                -1 if c.is_nonpositive or sympy.expand(c).is_nonpositive else None)
            if weak is None:
                return None, None, (
                    f"no closed form: the sign of the coefficient {c} of {x}**{power} is not decided by the assumptions"
                ), ()
            assuming.append(sympy.Gt(c, 0) if weak > 0 else sympy.Lt(c, 0))
            s = weak
        signs.append(s)
    threshold, direction, note = _from_signs(poly, terms, signs, x)
    if assuming:
        note += f" (assuming {' and '.join(map(str, assuming))}; the exact condition covers the rest)"
    return threshold, direction, note, tuple(assuming)


def _from_signs(poly, terms, signs, x) -> tuple:
    changes = sum(1 for s, t in zip(signs, signs[1:]) if s != t)
    if changes == 0:
        verdict = "always" if signs[0] > 0 else "never"
        return None, verdict, (
            f"B costs no more than A for every positive {x}" if verdict == "always"
            else f"B costs more than A for every positive {x}"
        )
    if changes > 1:
        return None, None, (
            f"no single threshold: the coefficients change sign {changes} times, so {x} may "
            f"cross up to {changes} roots"
        )
    root = _positive_root(poly, terms, signs, x)
    if root is None:
        return None, None, f"no closed form for the one positive root of a degree-{poly.degree()} polynomial in {x}"
    direction = ">=" if signs[0] > 0 else "<="
    return simplest(root), direction, (
        f"exactly one positive root (one sign change); the leading coefficient is "
        f"{'positive' if signs[0] > 0 else 'negative'}, so B wins for {x} {direction} it"
    )


def _positive_root(poly, terms, signs, x):
    degree = poly.degree()
    if len(terms) == 2:  # a x**n + c x**m (m = 0 once positive factors of x are cancelled)
        (n, a), (m, c) = terms
        return sympy.Pow(-c / a, sympy.Rational(1, n - m))
    if degree == 2:
        a, b, c = poly.all_coeffs()
        minus_b = sympy.factor(-b)  # b**2 as (-b)**2 reads (C + O)**2, not (-C - O)**2
        return (minus_b + signs[0] * sympy.sqrt(minus_b**2 - 4 * a * c)) / (2 * a)
    try:
        roots = sympy.roots(poly, filter=None)
    except (sympy.PolynomialError, NotImplementedError):
        return None
    positive = [r for r in roots if r.is_positive]
    return positive[0] if len(positive) == 1 and sum(roots.values()) == degree else None


# -- step 4: the rule of thumb -------------------------------------------------------------
def _rule_of_thumb(expr, x, facts):
    """The solution at leading order when every symbol but ``x`` is large (seed 004's ``n > 1 + m/c``)."""
    others = [s for s in expr.free_symbols if s != x]
    if not others or x not in expr.free_symbols:
        return None
    scaled = sympy.expand(expr.subs({s: _LAMBDA * s for s in others}, simultaneous=True))
    try:
        leading = sympy.Poly(scaled, _LAMBDA).LC()
    except sympy.PolynomialError:
        return None
    lead, _, _ = _reduce(leading, facts)
    threshold, direction, _, _ = _solve(lead, x, facts)
    if threshold is None:
        return None
    return (sympy.Gt if direction == ">=" else sympy.Lt)(x, simplest(sympy.expand(threshold)))
