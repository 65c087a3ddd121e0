"""The front doors' checks, and the paths hostile sizes used to blow up (each answer checked by hand)."""

from __future__ import annotations

import time
from fractions import Fraction

import numpy as np
import pytest
import sympy

from convcost import AsymmetricConv, ConvcostError, FactorizedConv, StandardConv, break_even, cost
from convcost.primitives import AdaptiveAvgPool
from convcost.shapes import adaptive_window_reads
from convcost.validate import kind_of


def test_adaptive_window_reads_closed_form_against_the_bins():
    for size in range(1, 40):
        for out in range(1, 40):
            # the bins as PyTorch's adaptive pooling lays them out: [floor(i*size/out), ceil((i+1)*size/out))
            by_bins = sum(-((-(i + 1) * size) // out) - (i * size) // out for i in range(out))
            assert adaptive_window_reads(size, out, "pool")[0] == by_bins, (size, out)


def test_huge_adaptive_pooling_answers_at_once():
    start = time.perf_counter()
    c = AdaptiveAvgPool(output_size=10**30).cost((1, 2, 3 * 10**30, 1))
    assert time.perf_counter() - start < 1
    # rows: 3e30 + 1e30 - gcd(3e30, 1e30) = 3e30 reads along H (every bin 3 wide), 1 column to 1e30 bins of width 1
    assert c.output_shape == (1, 2, 10**30, 10**30)


def test_huge_factorized_conv_is_refused_not_built():
    with pytest.raises(ConvcostError, match="K is at most"):
        cost(FactorizedConv, K=10**30 + 1)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float64("nan"), sympy.oo, sympy.zoo,
                                   sympy.nan])
def test_non_finite_values_are_refused_everywhere(value):
    c = cost(StandardConv, C=3, O=4, K=3)
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    for call in (lambda: c.subs(H=value), lambda: cost(StandardConv, C=value), lambda: be.holds(K=3, C=value, O=4),
                 lambda: be.region(K=3, C=np.array([1.0, value], dtype=object), O=4),
                 lambda: be.region(K=3, C=[1.0, value], O=4), lambda: be.threshold_at(C=value, O=4)):
        with pytest.raises(ConvcostError):
            call()


def test_region_broadcasts_by_numpys_rules():
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    grid = be.region(K=np.arange(1, 8)[None, :], C=np.array([1, 64])[:, None], O=64)
    assert grid.shape == (2, 7)
    # C*K**2 - C*K - K*O - 1 >= 0 written out: C=1 never (K**2 - 65K - 1 < 0 for K < 66), C=64 from K=3 (384 - 193 > 0)
    assert grid[0].tolist() == [False] * 7
    assert grid[1].tolist() == [False, False, True, True, True, True, True]
    with pytest.raises(ConvcostError, match="do not broadcast"):
        be.region(K=np.arange(3), C=np.arange(1, 5), O=4)


def test_region_stays_exact_past_int64():
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    big = 10**12  # C*K**2 is 1e36: int64 would wrap around
    got = be.region(K=np.array([big, big]), C=np.array([1, 1]), O=np.array([big - 2, big]))
    # K**2 - K - K*O - 1 = K*(K - 1 - O) - 1: positive for O = K - 2 (K - 1 > 0), negative for O = K
    assert got.tolist() == [True, False]


def test_holds_refuses_values_outside_the_symbols_domain():
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    for bad in (0, -3, 2.5, Fraction(1, 2)):
        with pytest.raises(ConvcostError, match="must be a positive integer"):
            be.holds(K=bad, C=3, O=4)


def test_subs_reads_a_numpy_float_as_its_decimal():
    c = cost(StandardConv, general=True, C=3, O=4, K=3, S=1, P=0, D=1, G=1)
    assert c.subs(H=np.float64(8.0), W=8, N=1).macs == 3 * 4 * 9 * 6 * 6


def test_kinds():
    assert [kind_of(v) for v in (None, True, np.bool_(False), "x", b"x", np.int8(1), 1, 1.0, float("nan"),
                                 Fraction(1, 2), 1j, np.zeros(2), sympy.Symbol("x"), sympy.Symbol("x") + 1,
                                 sympy.Eq(sympy.Symbol("x"), 1), sympy.oo, (1,), {}, int, object())] == [
        "none", "bool", "bool", "text", "bytes", "numpy integer", "int", "float", "non-finite number", "fraction",
        "complex number", "array", "symbol", "expression", "relation", "non-finite number", "sequence", "mapping",
        "class", "other"]


def test_a_call_python_cannot_bind_is_a_convcost_error():
    from convcost import compare

    with pytest.raises(ConvcostError, match="multiple values for argument 'metric'"):
        compare(StandardConv, AsymmetricConv, "params", metric="macs")
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    with pytest.raises(ConvcostError, match="no symbol 'self'|not a symbol"):
        be.holds(self=3)
