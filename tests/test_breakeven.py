"""break_even(): exact conditions, closed-form thresholds, rules of thumb, vectorised regions."""

import itertools

import numpy as np
import pytest
import sympy

from convcost import (
    AsymmetricConv,
    ConvcostError,
    InvertedResidual,
    MobileNetV1Block,
    PointwiseConv,
    SeparableConv,
    StandardConv,
    break_even,
    cost,
)
from convcost.symbols import C, H, K, O, W, symbol


@pytest.fixture(scope="module")
def seed004():
    return break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")


def test_seed_004_condition_threshold_and_rule(seed004):
    # P0 = O(K^2 C + 1) >= P1 = O(K C + K O + 2)  <=>  K^2 C - K C - K O - 1 >= 0 (O > 0 cancelled)
    assert sympy.expand(O * (K**2 * C + 1) - O * (K * C + K * O + 2)) \
        == sympy.expand(O * (K**2 * C - K * C - K * O - 1))
    assert seed004.condition == sympy.Ge(K**2 * C - K * C - K * O - 1, 0)
    assert O in seed004.cancelled
    expected = (C + O + sympy.sqrt((C + O) ** 2 + 4 * C)) / (2 * C)
    assert sympy.simplify(seed004.threshold - expected) == 0
    assert seed004.solution == sympy.Ge(K, seed004.threshold) and seed004.closed_form
    assert seed004.rule_of_thumb == sympy.Gt(K, 1 + O / C)
    # the threshold is a root, and the rule of thumb is its limit for wide layers
    assert sympy.simplify((C * K**2 - (C + O) * K - 1).subs(K, expected)) == 0
    assert sympy.limit(expected.subs({C: 64 * symbol("n"), O: 64 * symbol("n")}), symbol("n"), sympy.oo) == 2


@pytest.mark.parametrize("c, o, replace", [(1, 32, False), (32, 64, False), (64, 64, True)])
def test_seed_004_table(seed004, c, o, replace):
    assert 9 * c - 3 * c - 3 * o - 1 == {(1, 32): -91, (32, 64): -1, (64, 64): 191}[(c, o)]
    assert seed004.holds(K=3, C=c, O=o) is replace
    assert bool(seed004.region(K=np.array([3]), C=c, O=o)[0]) is replace
    standard, asym = cost(StandardConv, K=3, C=c, O=o).params, cost(AsymmetricConv, K=3, C=c, O=o).params
    assert bool(standard >= asym) is replace


def test_region_equals_exact_costs(seed004):
    ks, cs, os_ = np.arange(1, 8), np.arange(1, 13), np.arange(1, 13)
    grid = seed004.region(K=ks[:, None, None], C=cs[None, :, None], O=os_[None, None, :])
    assert grid.shape == (7, 12, 12)
    for (i, k), (j, c), (l, o) in itertools.product(enumerate(ks), enumerate(cs), enumerate(os_)):
        # oracle: the costs themselves, not the reduced condition
        k_, c_, o_ = int(k), int(c), int(o)
        expected = k_ ** 2 * c_ * o_ + o_ >= k_ * c_ * o_ + k_ * o_ ** 2 + 2 * o_
        assert bool(grid[i, j, l]) is expected


def test_mobilenet_threshold():
    be = break_even(StandardConv, SeparableConv, metric="macs", solve_for="K", P="same")
    # C K^2 O HW >= C K^2 HW + C O HW  <=>  K^2 (O - 1) >= O
    assert be.condition == sympy.Ge(K**2 * O - K**2 - O, 0)
    assert sympy.simplify(be.threshold - sympy.sqrt(O / (O - 1))) == 0
    assert be.assuming == (sympy.Gt(O - 1, 0),)
    assert be.holds(K=2, O=2) and not be.holds(K=1, O=2) and not be.holds(K=5, O=1)
    assert be.threshold_at(O=2) == (sympy.sqrt(2),)


def test_shufflenet_v2_g1_balanced_channels_minimise_memory_access():
    c1, c2, h, w = symbol("c1"), symbol("c2"), symbol("h"), symbol("w")
    mac = cost(PointwiseConv, C=c1, O=c2, bias=False, H=h, W=w).memory_access
    assert sympy.expand(mac - (h * w * (c1 + c2) + c1 * c2)) == 0  # inputs + outputs + weights
    flops = h * w * c1 * c2  # B of the paper
    bound = 2 * sympy.sqrt(h * w * flops) + flops / (h * w)
    gap = sympy.simplify(mac - bound)
    assert sympy.simplify(gap - h * w * (sympy.sqrt(c1) - sympy.sqrt(c2)) ** 2) == 0  # >= 0, zero at c1 = c2
    assert gap.subs(c2, c1) == 0 and gap.subs({c1: 1, c2: 4, h: 1, w: 1}) == 1
    # the same as a break-even: at equal FLOPs (c1 = a^2, c2 = b^2 against c1 = c2 = a b) balanced never loses
    a, b = symbol("a"), symbol("b")
    be = break_even(PointwiseConv(C=a**2, O=b**2, bias=False), PointwiseConv(C=a * b, O=a * b, bias=False),
                    metric="memory", solve_for="a")
    assert be.condition is sympy.true and be.direction == "always"
    assert be.comparison.difference.subs(b, a) == 0
    assert sympy.factor(be.comparison.difference) == H * W * (a - b) ** 2


def test_numeric_fallback_for_several_roots_is_labelled_and_right():
    be = break_even(StandardConv(P=1), MobileNetV1Block, metric="macs", solve_for="K")
    assert be.method == "numeric" and not be.closed_form and be.threshold is None
    assert "no single threshold" in be.note and "numerically" in be.note
    values = dict(O=32, H=16, W=16)
    crossings = be.threshold_at(**values)
    assert crossings and all(isinstance(x, float) for x in crossings)
    for x in crossings:  # the winner really changes across each numeric root
        lo, hi = int(np.floor(x)), int(np.ceil(x))
        if lo >= 1 and lo != hi:
            assert be.holds(K=lo, **values) != be.holds(K=hi, **values)


def test_numeric_fallback_for_a_non_polynomial_condition():
    t = symbol("t")
    be = break_even(InvertedResidual(t=t, K=3), StandardConv(K=3, P=1), metric="params", solve_for="t")
    assert be.method == "numeric" and "not a polynomial in t" in be.note
    switches = be.threshold_at(C=64, O=64, limit=64)
    assert switches
    for x in switches:
        assert be.holds(t=x, C=64, O=64) != be.holds(t=x - 1, C=64, O=64)


def test_independent_and_always():
    be = break_even(StandardConv, SeparableConv, metric="memory", solve_for="C", K=3, P=1)
    assert be.direction == "independent" and be.threshold is None and C not in be.condition.free_symbols
    grouped = break_even(StandardConv(bias=False), PointwiseConv(bias=False), metric="params", solve_for="K")
    assert grouped.condition is sympy.true


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(metric="params", solve_for="H"), "params of SeparableConv() against StandardConv() does not depend on H"),
        (dict(metric="params", solve_for="Q"), "unknown solve-for symbol 'Q'"),
        (dict(metric="speed", solve_for="K"), "unknown metric 'speed'"),
        (dict(metric="params", solve_for=3), "give a symbol name"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(ConvcostError) as info:
        break_even(StandardConv, SeparableConv, **kwargs)
    assert message in str(info.value)


def test_conflicting_specs_and_bad_points(seed004):
    with pytest.raises(ConvcostError, match="fix the shared symbol K differently"):
        break_even(StandardConv(K=3), AsymmetricConv(K=5), metric="params", solve_for="K")
    with pytest.raises(ConvcostError, match="give a value for C"):
        seed004.holds(K=3, O=4)
    with pytest.raises(ConvcostError, match="zeta is not a symbol"):
        seed004.region(K=3, C=4, O=4, zeta=1)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_plot_files(seed004, tmp_path, suffix, magic):
    from convcost.plot import plot_break_even

    path = tmp_path / f"where{suffix}"
    fig = plot_break_even(seed004, path, y="C", O=64, ranges={"K": (1, 9), "C": (1, 64)})
    assert path.read_bytes().startswith(magic)
    assert fig.axes[0].get_xlabel() == "K" and "O=64" in fig.axes[0].get_title()
    with pytest.raises(ConvcostError, match="ending in .png, .svg, .pdf"):
        plot_break_even(seed004, tmp_path / "where.jpg")
    with pytest.raises(ConvcostError, match="cannot plot along H"):
        plot_break_even(seed004, y="H")


def test_cli_breakeven_plot_and_errors(tmp_path, capsys):
    import json

    from convcost.cli import main

    out = tmp_path / "out.png"
    assert main(["breakeven", "StandardConv", "AsymmetricConv", "--metric", "params", "--solve-for", "K",
                 "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG") and "K > 1 + O/C" in capsys.readouterr().out
    assert main(["breakeven", "StandardConv", "AsymmetricConv", "C=64", "O=64", "--metric", "params", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 64 * 9 - 64 * 3 - 3 * 64 - 1 == 191
    assert data["condition"] == "64*K**2 - 128*K - 1 >= 0" and data["method"] == "closed form"
    assert main(["compare", "StandardConv", "SeparableConv", "P=same", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ratio"] == "1/O + K**(-2)"
    assert main(["breakeven", "StandardConv", "SeparableConv", "--metric", "params", "--solve-for", "H"]) == 2
    assert "does not depend on H" in capsys.readouterr().err
