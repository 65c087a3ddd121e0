"""What a person sees: one number format, conditions and specs as text, rich displays in Jupyter,
latencies in human units, derivations without repeated lines, and comparisons that never drop a field."""

import pytest
import sympy

from convcost import (
    AsymmetricConv,
    ConvcostError,
    DepthwiseConv,
    SeparableConv,
    StandardConv,
    break_even,
    compare,
    cost,
    display,
)
from convcost.symbols import C, G, H, K, O

SEPARABLE_64_128_3 = 64 * 9 + 64 + 64 * 128 + 128
STANDARD_64_128_3 = 64 * 128 * 9 + 128


def test_numbers_have_one_format():
    assert display.number(sympy.Integer(1234567)) == "1,234,567" and display.number(7) == "7"
    assert display.number(sympy.Rational(25375, 288)) == "88.11 (exactly 25375/288)"  # 25375 / 288 = 88.107...
    assert display.json_fields("savings", sympy.Rational(25375, 288)) == {
        "savings": 25375 / 288, "savings_exact": "25375/288"}
    assert display.json_fields("params", sympy.Integer(8960)) == {"params": 8960}
    assert display.json_value((1, 128, H - 2)) == [1, 128, "H - 2"]


def test_conditions_and_specs_print_as_text():
    assert display.condition(sympy.Eq(sympy.Mod(C, G), 0)) == "C mod G = 0"
    assert display.condition(sympy.Ne(K, 1)) == "K != 1"
    assert display.condition(sympy.And(H >= K, sympy.Eq(sympy.Mod(O, G), 0))) in (
        "H >= K and O mod G = 0", "O mod G = 0 and H >= K")
    assert display.formula(C * K**2 * O / G + O) == "C*K**2*O/G + O"
    assert display.spec(StandardConv.general()) == "StandardConv(general)"
    assert display.spec(StandardConv(C=64, O=128, K=3, H=56, W=56)) == "StandardConv(C=64, O=128, K=3, H=56, W=56)"
    assert display.spec(StandardConv(C=64, G=G)) == "StandardConv(C=64; symbolic: G)"


def test_every_result_object_renders_in_jupyter():
    c = cost(SeparableConv, C=64, O=128, K=3)
    html = c._repr_html_()
    assert html.startswith("<table>") and f"<td>{SEPARABLE_64_128_3:,}</td>" in html and "H &gt;= 3" in html
    comparison = compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3)
    latex = comparison._repr_latex_()
    assert latex.startswith("$\\begin{aligned}") and "\\frac{70}{577}" in latex and str(STANDARD_64_128_3) in latex
    be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
    latex = be._repr_latex_()
    assert latex.startswith("$\\begin{aligned}") and sympy.latex(be.condition) in latex
    assert sympy.latex(be.rule_of_thumb) in latex


def test_comparison_text_has_separators_and_exact_values():
    text = str(compare(StandardConv, SeparableConv, metric="params", C=64, O=128, K=3))
    assert f"A       = {STANDARD_64_128_3:,}" in text and "(exactly 70/577)" in text and "savings = 87.87%" in text
    assert repr(compare(StandardConv, SeparableConv, metric="params")).startswith("<Comparison of params: ")


def test_latency_prints_human_units():
    from convcost.latency import Machine, predict_latency

    m = Machine("toy", peak_flops=1e11, bandwidth=1e10, efficiency={"depthwise_conv": 0.25}, overhead=1e-5)
    est = predict_latency(DepthwiseConv(C=64, K=3, P=1, H=56, W=56), m)
    # memory-bound: (2 x 64 x 56 x 56 activations + 64 x 10 weights) x 4 bytes at 1e10 B/s, / 0.25, + 10 µs
    moved = (2 * 64 * 56 * 56 + 64 * 10) * 4
    assert est.seconds == pytest.approx(1e-5 + moved / 1e10 / 0.25)
    assert repr(est) == "<Latency 653 µs (model; roofline 161 µs), memory-bound, 1 kernel, on toy>"
    assert [display.seconds(s) for s in (3.2e-9, 2.5e-5, 0.0123, 3.2, 4000.0)] == [
        "3.20 ns", "25.0 µs", "12.3 ms", "3.20 s", "4,000 s"]


def test_a_derivation_never_prints_the_same_step_twice():
    from convcost.catalog import VARIANTS
    from convcost.derivation import derive
    from convcost.tour import EXAMPLES

    for name, cls in VARIANTS.items():
        for d in (derive(cls), derive(cost(cls, **EXAMPLES[name]))):
            for text in (d.latex(), d.markdown()):
                formulas = [line.split("&&")[0] if "&&" in line else line for line in text.splitlines()
                            if "&=" in line or line.startswith("$$")]
                repeated = [a for a, b in zip(formulas, formulas[1:]) if a == b]
                assert not repeated, (name, repeated[:1])


# -- a shared value must mean the same on both sides ---------------------------------------------------------
def test_compare_refuses_a_field_one_side_lacks():
    with pytest.raises(ConvcostError, match="O=128 is a field of StandardConv but not of DepthwiseConv"):
        compare(StandardConv, DepthwiseConv, C=64, O=128, K=3)
    with pytest.raises(ConvcostError, match="M=2 is a field of DepthwiseConv but not of StandardConv"):
        compare(StandardConv, DepthwiseConv, C=64, M=2, K=3)
    with pytest.raises(ConvcostError, match="not of DepthwiseConv"):
        break_even(StandardConv, DepthwiseConv, O=128, solve_for="K")


def test_each_side_binds_its_own_fields_in_its_spec():
    c = compare(StandardConv(O=128), DepthwiseConv(M=2), metric="params", C=64, K=3)
    assert (c.value_a, c.value_b) == (STANDARD_64_128_3, 64 * 2 * 9 + 64 * 2)  # depthwise: C x M filters + bias


def test_costs_and_comparison_subs_refuse_a_symbol_one_side_lacks():
    with pytest.raises(ConvcostError, match="O=128 is a symbol of"):
        compare(cost(StandardConv), cost(DepthwiseConv), O=128)
    with pytest.raises(ConvcostError, match="not of"):
        compare(StandardConv, DepthwiseConv).subs(O=128)
    # a symbol outside the glossary (a parametrisation) binds wherever it occurs
    a = sympy.Symbol("a", positive=True, integer=True)
    c = compare(StandardConv(C=a), SeparableConv(C=a), metric="params", O=8, K=3, a=4)
    assert (c.value_a, c.value_b) == (4 * 8 * 9 + 8, 4 * 9 + 4 + 4 * 8 + 8)
