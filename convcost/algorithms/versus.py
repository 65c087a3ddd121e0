"""Comparisons and break-evens between algorithms, on :mod:`convcost.breakeven`'s machinery."""

from __future__ import annotations

import sympy

from convcost.algorithms.result import AlgorithmCost
from convcost.breakeven import BreakEven, solve_comparison
from convcost.comparison import Comparison, simplest
from convcost.costs import Cost
from convcost.errors import ConvcostError


class _Named:
    """A label standing in for a spec in a comparison's display."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def compare_algorithms(A: AlgorithmCost, B: AlgorithmCost, quantity: str = "operations") -> Comparison:
    """B against A for one quantity (:data:`QUANTITIES`, or several joined by ``+``).

    Costs in different units are compared in real arithmetic (:meth:`AlgorithmCost.in_real_arithmetic`).

    >>> from convcost.primitives import Conv
    >>> from convcost.algorithms import direct, winograd
    >>> conv = Conv(C=64, O=64, K=3, P=1)
    >>> compare_algorithms(direct(conv, (1, 64, 8, 8)), winograd(conv, (1, 64, 8, 8), m=2), "multiplications").ratio
    4/9
    """
    for X in (A, B):
        if not isinstance(X, AlgorithmCost):
            raise ConvcostError(f"compare_algorithms() needs AlgorithmCost results, got {X!r}")
    if A.unit != B.unit:
        A, B = A.in_real_arithmetic(), B.in_real_arithmetic()
    va, vb = sympy.sympify(A.quantity(quantity)), sympy.sympify(B.quantity(quantity))
    if va == 0:
        raise ConvcostError(f"{A.algorithm} has {quantity} = 0: there is nothing to compare against")

    def as_cost(X: AlgorithmCost, value) -> Cost:
        # break-even's machinery reads symbols and positive sizes off Costs; the compared value
        # rides in the macs slot, the output shape supplies the positive factors it may cancel
        return Cost(output_shape=X.output_shape, macs=value, conditions=X.conditions,
                    spec=_Named(f"{X.algorithm} of {X.spec!r}"))

    return Comparison(
        metric=quantity,
        A=as_cost(A, va),
        B=as_cost(B, vb),
        value_a=va,
        value_b=vb,
        ratio=simplest(vb / va),
        difference=simplest(va - vb),
        savings=simplest(100 * (va - vb) / va),
        conditions=tuple(dict.fromkeys((*A.conditions, *B.conditions))),
    )


def break_even(A: AlgorithmCost, B: AlgorithmCost, /, quantity: str = "operations", solve_for="K") -> BreakEven:
    """Where algorithm B costs no more than algorithm A, solved for one symbol (:func:`convcost.break_even`'s method).

    Winograd F(2x2,3x3) against direct on a 48x48 output: when do the
    transform additions cost less than the multiplications saved?

    >>> from convcost.primitives import Conv
    >>> from convcost.algorithms import direct, winograd
    >>> from convcost.symbols import C, O
    >>> conv = Conv(C=C, O=O, K=3, P=1)
    >>> shape = (1, C, 48, 48)
    >>> be = break_even(direct(conv, shape), winograd(conv, shape, m=2),
    ...                 quantity="multiplications+transform_additions", solve_for="O")
    >>> be.condition
    2873*C*O - 4608*C - 3456*O >= 0
    >>> [be.holds(C=1, O=o) for o in (1, 10**6)], [be.holds(C=2, O=o) for o in (4, 5)]
    ([False, False], [False, True])
    """
    return solve_comparison(compare_algorithms(A, B, quantity), solve_for)
