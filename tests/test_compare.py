"""compare(): exact ratios, differences and savings, reproducing the seeds' and papers' numbers."""

import pytest
import sympy

from convcost import (
    AsymmetricConv,
    ConvcostError,
    FactorizedConv,
    GroupedConv,
    InceptionBlock,
    PointwiseConv,
    SeparableConv,
    StandardConv,
    compare,
    cost,
)
from convcost.symbols import C, H, K, O, W


@pytest.mark.parametrize("shared", [{}, {"P": "same"}, {"P": "same", "C": 7, "H": 9, "W": 11}])
def test_mobilenet_ratio(shared):
    # MobileNet (Howard et al. 2017, eq. 5): separable / standard = 1/N + 1/D_K^2 at stride 1, equal output sizes
    c = compare(StandardConv, SeparableConv, metric="macs", **shared)
    assert c.ratio == 1 / O + 1 / K**2
    assert sympy.simplify(c.value_b / c.value_a - (1 / O + 1 / K**2)) == 0


def test_mobilenet_ratio_numbers():
    c = compare(StandardConv, SeparableConv, metric="macs", C=512, O=512, K=3, P=1, H=14, W=14)
    assert c.value_a == 14 * 14 * 512 * 512 * 9 and c.value_b == 14 * 14 * 512 * (9 + 512)
    assert c.ratio == sympy.Rational(1, 512) + sympy.Rational(1, 9)
    assert c.difference == c.value_a - c.value_b and c.cheaper == "B"


def test_inception_seed_000_savings():
    shared = dict(C=3, O=32, H=32, W=32)
    base = InceptionBlock(form="5x5")
    two = compare(base, InceptionBlock(form="3x3"), metric="params", **shared)
    asym = compare(base, InceptionBlock(form="asymmetric"), metric="params", **shared)
    assert (two.value_a, two.value_b, asym.value_b) == (35264, 28128, 19008)
    assert two.savings == sympy.Rational(100 * (35264 - 28128), 35264)
    assert asym.savings == sympy.Rational(100 * (35264 - 19008), 35264)
    assert f"{float(two.savings):.2f}" == "20.24" and f"{float(asym.savings):.2f}" == "46.10"


def test_inception_v3_two_3x3_for_5x5_saves_28_percent():
    # Szegedy et al. 2016, sec. 3.1: (9 + 9) / 25 of the MACs at equal width, a 28% saving
    c = compare(StandardConv(K=5, P="same", bias=False), FactorizedConv(K=5, P="same", bias=False),
                metric="macs", C=O)
    assert 1 - sympy.Rational(18, 25) == sympy.Rational(28, 100)
    assert c.ratio == sympy.Rational(18, 25) and c.savings == 28


def test_inception_v3_asymmetric_saves_33_percent():
    # Szegedy et al. 2016, sec. 3.2: 3x1 then 1x3 is (3 + 3) / 9 of a 3x3
    c = compare(StandardConv(K=3, P=1, bias=False), AsymmetricConv(K=3, P=1, bias=False), metric="macs", C=O)
    assert 1 - sympy.Rational(6, 9) == sympy.Rational(1, 3)
    assert c.ratio == sympy.Rational(2, 3) and c.savings == sympy.Rational(100, 3)
    assert round(float(c.savings)) == 33


def test_grouped_ratio_and_flops_equal_macs_ratio():
    c = compare(StandardConv, GroupedConv, metric="params", bias=False)
    assert c.ratio == 1 / sympy.Symbol("G", integer=True, positive=True)
    assert compare(StandardConv, SeparableConv, metric="flops").ratio == compare(
        StandardConv, SeparableConv, metric="macs").ratio


def test_pinned_field_is_carried_to_the_other_spec():
    c = compare(StandardConv(K=5, P="same"), SeparableConv, metric="params")
    assert c.B.spec.K == 5 and c.value_b == C * 25 + C + C * O + O


def test_costs_and_bound_numbers():
    a, b = cost(StandardConv, C=3, O=8, K=3), cost(PointwiseConv, C=3, O=8)
    c = compare(a, b, metric="params", H=8, W=8)
    assert (c.value_a, c.value_b) == (3 * 8 * 9 + 8, 3 * 8 + 8)
    bound = compare(StandardConv, SeparableConv, metric="macs").subs(C=3, O=8, K=3, H=8, W=8)
    assert bound.value_a == 6 * 6 * 3 * 8 * 9 and bound.value_b == 6 * 6 * (3 * 9 + 3 * 8)
    assert bound.as_dict()["value_a"] == 6 * 6 * 3 * 8 * 9


def test_memory_metric_is_memory_access():
    c = compare(PointwiseConv(bias=False), StandardConv(K=1, bias=False), metric="memory")
    assert c.value_a == H * W * C + H * W * O + C * O and c.difference == 0 and c.cheaper == "equal"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: compare(StandardConv(K=3), SeparableConv(K=5)), "fix the shared symbol K differently (3 vs 5)"),
        (lambda: compare(StandardConv(K=3), SeparableConv, K=5), "fixes K=3 but the shared value is K=5"),
        (lambda: compare(StandardConv, SeparableConv, metric="latency"), "metric='latency' needs machine="),
        (lambda: compare(StandardConv, SeparableConv, metric="speed"), "unknown metric 'speed'"),
        (lambda: compare(StandardConv, SeparableConv, k=3), "shared value k=3 is neither a field"),
        (lambda: compare(StandardConv, 3), "needs variant classes, layers or costs"),
        (lambda: compare(StandardConv(P="same"), AsymmetricConv), "P='same' must be"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ConvcostError) as info:
        call()
    assert message in str(info.value)
