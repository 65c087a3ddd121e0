"""Symbolic costs: closed forms, binding, addition, conditions."""

import pytest
import sympy

from convcost import ConvcostError, InvertedResidual, SeparableConv, StandardConv, cost
from convcost.symbols import C, G, H, K, O, W


def test_front_door_example():
    c = cost(SeparableConv, C=64, O=128, K=3)
    assert c.params == sympy.Integer(64 * 9 + 64 + 64 * 128 + 128)
    assert sympy.expand(c.macs - (64 * 9 + 64 * 128) * (H - 2) * (W - 2)) == 0
    assert c.flops == 2 * c.macs
    assert c.output_shape == (1, 128, H - 2, W - 2)
    assert c.subs(H=56, W=56).macs == 54 * 54 * (64 * 9 + 64 * 128)


def test_general_form_is_symbolic_in_every_field():
    c = cost(StandardConv, general=True)
    assert {s.name for s in c.macs.free_symbols} == set("COKHWSPDGN")
    assert sympy.simplify(c.params - (O * C / G * K**2 + O)) == 0


def test_fields_left_out_take_their_pytorch_default_or_their_symbol():
    c = cost(StandardConv)
    assert {s.name for s in c.macs.free_symbols} == set("COKHW")
    assert c.params == C * K**2 * O + O  # groups 1, bias on: PyTorch's defaults
    assert cost(StandardConv, S=sympy.Symbol("S", positive=True, integer=True)).output_shape[2] != H - K + 1


def test_binding_a_name_that_is_no_symbol_is_refused():
    with pytest.raises(ConvcostError, match="no symbol 'Q'"):
        cost(StandardConv).subs(Q=2)


def test_subs_equals_cost_built_from_numbers():
    symbolic = cost(StandardConv, general=True)
    values = dict(C=8, O=16, K=3, S=2, P=1, D=1, G=4, N=2, H=17, W=9)
    assert symbolic.subs(**values) == cost(StandardConv, **values)


def test_costs_add_over_compositions():
    c = cost(SeparableConv, C=10, O=32, K=3, H=128, W=128)
    assert sum(part for _, part in c.parts).macs == c.macs
    assert c.parts[0][1] + c.parts[1][1] == c


def test_binding_checks_carried_conditions():
    c = cost(StandardConv, C=3, O=8, K=5)
    # a 5x5 kernel with no padding fits only an input of at least 5 x 5
    assert set(c.conditions) == {sympy.Ge(H, 5), sympy.Ge(W, 5)}
    assert c.subs(H=5).conditions == (sympy.Ge(W, 5),)
    with pytest.raises(ConvcostError, match="does not hold"):
        c.subs(H=4)


def test_symbolic_groups_become_conditions():
    c = cost(StandardConv, G=G)
    # groups must divide both channel counts
    assert {sympy.Eq(sympy.Mod(C, G), 0), sympy.Eq(sympy.Mod(O, G), 0)} <= set(c.conditions)
    with pytest.raises(ConvcostError):
        c.subs(C=6, G=4)


def test_inverted_residual_symbolic_expansion_is_exact_at_t_1():
    general = cost(InvertedResidual, C=32, O=32, H=14, W=14)
    assert general.subs(t=1).params == cost(InvertedResidual, C=32, O=32, t=1, H=14, W=14).params
    assert general.subs(t=6).params == cost(InvertedResidual, C=32, O=32, t=6, H=14, W=14).params
    assert cost(InvertedResidual, C=32, O=32, t=1, H=14, W=14).elementwise_ops == 32 * 14 * 14


def test_as_dict_numeric_and_bytes():
    c = cost(StandardConv, C=3, O=32, K=3, P=1, H=32, W=32)
    d = c.as_dict(numeric=True)
    assert d["macs"] == 884_736 and d["flops"] == 2 * 884_736 and d["output_shape"] == (1, 32, 32, 32)
    assert c.bytes("float32")["weights"] == 4 * 896
    with pytest.raises(ConvcostError, match="free symbols"):
        cost(StandardConv, C=3, O=32, K=3).as_dict(numeric=True)


def test_memory_access_of_pointwise_is_shufflenet_formula():
    c = cost(StandardConv, C=C, O=O, K=1, bias=False)
    assert sympy.expand(c.memory_access - (H * W * (C + O) + C * O)) == 0


@pytest.mark.parametrize("name", sorted(__import__("convcost").VARIANTS))
def test_general_form_bound_equals_cost_built_from_numbers(name):
    """Every variant has a general closed form; binding it gives the cost built from the numbers."""
    from convcost import VARIANTS
    from convcost.tour import EXAMPLES

    cls, example = VARIANTS[name], EXAMPLES[name]
    general = cls.general()
    structural = {k: v for k, v in example.items() if not isinstance(getattr(general, k), sympy.Symbol)}
    concrete = cls(**example)  # with the defaults the example leaves out
    bound = {k: getattr(concrete, k) for k, v in general.fields().items() if isinstance(v, sympy.Symbol)}
    symbolic = general.replace(**structural).cost()
    assert symbolic.free_symbols, "the general form must be symbolic"
    assert symbolic.subs(**bound) == cost(cls, **example)
