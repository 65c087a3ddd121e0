"""Shipped general forms: current with the primitives, and equal to the sympy cost they stand for."""

import collections
import pathlib

import pytest
import sympy

from convcost.costs import METRICS
from convcost.forms import key_text, shipped, source
from convcost.layers import Merge
from convcost.numeric import compile_exprs, fast_cost, structure_key
from convcost.primitives import Conv
from convcost.symbols import H

pytest.importorskip("torch")

from convcost.torch.shipping import shipped_layers  # noqa: E402

SHIPPED = pathlib.Path(__file__).resolve().parent.parent / "convcost" / "_shipped_forms.py"


@pytest.fixture(scope="module")
def layers():
    return list(shipped_layers())


def test_shipped_forms_are_current(layers):
    assert SHIPPED.read_text() == source(layers), "regenerate: python -m convcost.torch.shipping > convcost/_shipped_forms.py"


def test_every_shipped_layer_is_served_by_a_shipped_form_equal_to_its_sympy_cost(layers):
    checked = collections.Counter()
    for layer, shapes in layers:
        for keep_defaults in (False, True):  # the order numeric.fast_cost looks them up in
            key, values = structure_key(layer, shapes, keep_defaults)
            found = shipped(key)
            if found is not None:
                break
        assert found is not None, key_text(key)
        if checked[key_text(key)] == 2:  # two layers of each structure: the sympy side is slow
            continue
        checked[key_text(key)] += 1
        function, n_metrics, rank_out, n_conditions, _ = found
        out = function(*values)
        c = layer.cost(shapes if isinstance(layer, Merge) else shapes[0])
        assert list(out[:n_metrics]) == [getattr(c, m) for m in METRICS], layer
        assert tuple(out[n_metrics:n_metrics + rank_out]) == c.output_shape, layer
        assert all(out[n_metrics + rank_out:]), layer
    assert len(checked) == SHIPPED.read_text().count("\ndef _form_")


def test_a_shipped_form_still_refuses_what_the_layer_refuses():
    # the structure of the SqueezeNet 1.0 stem conv (unpadded), on an input narrower than its kernel:
    # the condition fails in the shipped form, and the layer's own formula raises the library error
    from convcost.errors import ConvcostError

    layer = Conv(C=3, O=96, K=7, S=2)
    assert shipped(structure_key(layer, [(1, 3, 224, 224)])[0]) is not None
    with pytest.raises(ConvcostError, match="kernel K=7 .* wider than the padded input 5"):
        fast_cost(layer, (1, 3, 5, 5))


def test_a_structure_not_shipped_is_compiled_on_first_use():
    layer = Conv(C=4, O=6, K=3, P=(1, 2))  # padding per axis: in no shipped model
    assert all(shipped(structure_key(layer, [(2, 4, 10, 10)], keep)[0]) is None for keep in (False, True))
    counts, shape = fast_cost(layer, (2, 4, 10, 10))
    c = layer.cost((2, 4, 10, 10))
    assert shape == c.output_shape == (2, 6, 10, 12) and counts["macs"] == c.macs == 2 * 6 * 10 * 12 * 4 * 9


def test_negated_conditions_are_booleans_not_bitwise_complements():
    f = compile_exprs([sympy.Not(H > 3)], [H])
    assert f(5) == [False] and f(2) == [True]  # ~True is -2 in Python: truthy
