"""Latency in the analyses: ``compare`` and ``break_even`` of two variants on one machine's latency model.

A variant's latency over symbols is the latency model's sum over its kernels, as a formula
(:func:`latency_formula`): each kernel ``overhead + Max(compute / e_c, memory / e_m)`` plus the fresh
memory its output is written to, the memory term split at the machine's cache tier. The break-even is the
exact condition ``A - B >= 0`` on that formula; the roofline's ``Max`` terms split it into cases (each kernel
compute- or memory-bound), and in each case the condition is a plain inequality that the MACs break-even's
reduction solves where it can. :meth:`BreakEven.holds`, ``region`` and ``threshold_at`` evaluate the exact
condition, cases and all.

A variant is a layer timed alone, as ``predict_latency(spec, machine)`` predicts it: what a layer pays only among
others inside a network (its cold call, the in-network factors and the per-call term, ``Machine.network_call``:
:mod:`convcost.model_latency`) is left out. The per-call term is the same for both variants of a call each (it
would cancel), and charging it to a variant of two kernels (a separable convolution) twice would take a row for
a call: the term is per row of a whole network's profile, as calibration counted it.

>>> from convcost import StandardConv, SeparableConv
>>> from convcost.latency import Machine
>>> m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.1}, overhead=1e-6)
>>> c = compare_latency(StandardConv, SeparableConv, m, dict(C=64, O=64, K=3, P=1, H=56, W=56))
>>> c.cheaper, round(float(c.value_a) * 1e3, 3), round(float(c.value_b) * 1e3, 3)
('B', 2.315, 1.869)
>>> be = break_even_latency(StandardConv, SeparableConv, m, "C", dict(O=64, K=3, P=1, H=56, W=56))
>>> be.holds(C=64), len(be.cases)
(True, 4)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import sympy

from convcost import display
from convcost.breakeven import BreakEven, _positive_facts, _reduce, _solve, _solved_symbol
from convcost.comparison import Comparison, shared_costs
from convcost.costs import ITEMSIZE, Cost
from convcost.errors import ConvcostError
from convcost.latency import Machine, op_key, pixels_of, primitives, work
from convcost.validate import field_values

#: the most roofline terms whose cases are listed one by one (2**n cases); beyond, the condition stays whole
MOST_CASE_TERMS = 6


def machine_of(metric, shared: dict):
    """The ``machine`` a latency comparison needs, taken out of the shared values (one error otherwise)."""
    machine = shared.pop("machine", None)
    if metric != "latency":
        raise ConvcostError(f"machine= is for metric='latency'; metric={metric!r} counts exactly, on no machine")
    if machine is None:
        raise ConvcostError("metric='latency' needs machine=: a convcost.latency.Machine, such as "
                            "convcost.torch.calibrate('cpu')")
    return machine


def latency_formula(c: Cost, machine: Machine, dtype: str = "float32") -> sympy.Expr:
    """The latency model's seconds of a cost over its symbols (``predict_latency``'s number once bound).

    >>> from convcost import PointwiseConv
    >>> from convcost.latency import predict_latency
    >>> m = Machine("toy", peak_flops=1e9, bandwidth=1e9, overhead=1e-6)
    >>> f = latency_formula(PointwiseConv(C=64, O=64).cost(), m)
    >>> at = f.subs({s: {"H": 56, "W": 56, "N": 1}[s.name] for s in f.free_symbols})
    >>> round(float(at), 12), round(predict_latency(PointwiseConv(C=64, O=64, H=56, W=56), m).seconds, 12)
    (0.025891816, 0.025891816)
    """
    if not isinstance(machine, Machine):
        raise ConvcostError(f"a latency needs a Machine (convcost.torch.calibrate), got {machine!r}")
    if dtype not in ITEMSIZE:
        raise ConvcostError(f"unknown dtype {dtype!r}; known: {', '.join(ITEMSIZE)}")
    total, roof = sympy.Integer(0), machine.roof()
    for _, part in primitives(c):
        kind = op_key(part)  # the operation's own factors where calibration fitted them, else its kind's
        if kind is None:
            continue
        moved = sympy.sympify(part.memory_access) * ITEMSIZE[dtype]
        if machine.cache_bytes:
            memory = (sympy.Min(moved, machine.cache_bytes) / machine.cache_bandwidth
                      + sympy.Max(moved - machine.cache_bytes, 0) / machine.bandwidth)
        else:
            memory = moved / machine.bandwidth
        compute = sympy.sympify(work(part)) / machine.peak_flops
        # a convolution's compute efficiency takes the size of its call (an expression where the batch or image is free)
        total += roof.overhead_of(kind) + sympy.Max(compute * roof.slowdown(kind, pixels_of(part)),
                                                    memory / roof.memory_efficiency_of(kind))
        if machine.alloc_bandwidth:
            out = sympy.sympify(part.activation_elements) * ITEMSIZE[dtype]
            total += sympy.Piecewise((out / machine.alloc_bandwidth, out >= machine.alloc_threshold), (0, True))
    return total


def compare_latency(A, B, machine: Machine, shared: dict, dtype: str = "float32") -> Comparison:
    """B against A in predicted seconds on ``machine`` (``compare(A, B, metric="latency", machine=m, ...)``)."""
    field_values("compare", shared)
    a, b = shared_costs(A, B, shared)
    va, vb = latency_formula(a, machine, dtype), latency_formula(b, machine, dtype)
    if va == 0:
        raise ConvcostError(f"{display.spec(a.spec)} runs no kernel: there is no latency to compare B against")
    return Comparison(metric="latency", A=a, B=b, value_a=va, value_b=vb, ratio=vb / va, difference=va - vb,
                      savings=100 * (va - vb) / va, conditions=tuple(dict.fromkeys((*a.conditions, *b.conditions))))


@dataclasses.dataclass(frozen=True, repr=False)
class LatencyBreakEven(BreakEven):
    """A :class:`BreakEven` on latency: ``cases`` lists, for each way the roofline's ``Max`` terms can fall
    (``bounds``: which side of each term is the larger), the condition B is no slower than A under it and,
    where the case's inequality has one, its closed-form threshold."""

    cases: tuple = ()

    def holds(self, /, **values) -> bool:
        """Whether B is no slower than A at one point (the model's seconds are floats: evaluated in floats).

        >>> from convcost import StandardConv, SeparableConv
        >>> m = Machine("toy", peak_flops=1e11, bandwidth=1e10, overhead=1e-6)
        >>> be = break_even_latency(StandardConv, SeparableConv, m, "C", dict(O=64, K=3, P=1, H=56, W=56))
        >>> be.holds(C=1), be.holds(C=64)
        (False, True)
        """
        mapping = self._bind(values, self.variables, where="holds")
        return bool(float(self._vectorised(*(float(mapping[s]) for s in self.variables))) >= 0)

    def __str__(self) -> str:
        lines = [super().__str__()]
        if self.cases:
            lines.append(f"  cases (which side of each of the {len(self.cases[0].bounds)} roofline terms is larger):")
            for case in self.cases:
                solved = f";  {display.formula(case.solution)}" if case.solution is not None else ""
                lines.append(f"    {' and '.join(map(display.formula, case.bounds))}:  "
                             f"{display.formula(case.condition)}{solved}")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class Case:
    """One way the roofline terms fall: ``bounds`` (relations, one per term), the condition under them, and
    the closed-form ``solution`` where the reduction finds one (else None; solved on first use)."""

    bounds: tuple
    condition: sympy.Basic
    symbol: sympy.Symbol
    facts: frozenset = frozenset()

    @functools.cached_property
    def solution(self) -> sympy.Basic | None:
        expr, x = self.condition.lhs if isinstance(self.condition, sympy.GreaterThan) else None, self.symbol
        if expr is None or x not in expr.free_symbols or expr.has(sympy.Max, sympy.Min, sympy.Piecewise):
            return None
        try:
            reduced, _, _ = _reduce(sympy.nsimplify(expr, rational=True), set(self.facts))
            threshold, direction, _, _ = _solve(reduced, x, set(self.facts))
        except (sympy.PolynomialError, ValueError, TypeError, NotImplementedError, ZeroDivisionError):
            return None
        if threshold is None:
            return None
        return (sympy.Ge if direction == ">=" else sympy.Le)(x, sympy.N(threshold, 6))


def break_even_latency(A, B, machine: Machine, solve_for, shared: dict, dtype: str = "float32") -> LatencyBreakEven:
    """Where B is no slower than A on ``machine``, solved for ``solve_for``
    (``break_even(A, B, metric="latency", machine=m, solve_for=...)``)."""
    comparison = compare_latency(A, B, machine, shared, dtype)
    x = _solved_symbol(comparison, solve_for)
    diff = comparison.difference
    if x not in diff.free_symbols:
        depends = ", ".join(sorted(s.name for s in diff.free_symbols)) or "nothing (it is a number)"
        raise ConvcostError(f"latency of {display.spec(comparison.B.spec)} against {display.spec(comparison.A.spec)} "
                            f"does not depend on {x.name}; it depends on {depends}")
    facts = _positive_facts(comparison.A, comparison.B)
    terms = sorted(diff.atoms(sympy.Max), key=sympy.default_sort_key)
    roofs = [t for t in terms if len(t.args) == 2 and not any(a == 0 for a in t.args)]
    cases = []
    if len(roofs) <= MOST_CASE_TERMS:
        for sides in itertools.product((0, 1), repeat=len(roofs)):
            bounds = tuple(sympy.Ge(t.args[s], t.args[1 - s]) for t, s in zip(roofs, sides))
            if sympy.false in bounds:
                continue
            expr = diff.xreplace({t: t.args[s] for t, s in zip(roofs, sides)})  # structural: fast
            cases.append(Case(bounds, sympy.Ge(expr, 0), x, frozenset(facts)))
    condition = sympy.Ge(diff, 0)
    if condition in (sympy.true, sympy.false):
        direction, note = (("always", "B is never slower than A") if condition
                           else ("never", "B is always slower than A"))
        method = "closed form"
    else:
        direction = None
        note = (f"the roofline's {len(roofs)} Max terms split the condition into {len(cases)} cases"
                if cases else f"{len(roofs)} roofline Max terms: too many to list the cases (at most "
                f"{MOST_CASE_TERMS})")
        note += "; the condition is exact, thresholds come numerically from threshold_at()"
        method = "numeric"
    return LatencyBreakEven(metric="latency", symbol=x, comparison=comparison, expression=diff, condition=condition,
                            cancelled=(), threshold=None, direction=direction, solution=None,
                            rule_of_thumb=None, method=method, note=f"on {machine.name}: {note}", cases=tuple(cases))


__all__ = ["Case", "LatencyBreakEven", "break_even_latency", "compare_latency", "latency_formula"]
