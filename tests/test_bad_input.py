"""Bad input: one ConvcostError naming the spec, the value and the rule; never a sympy traceback."""

import importlib

import pytest
import sympy

from convcost import ConvcostError, GroupedConv, StandardConv, TransposedConv, cost
from convcost.compose import Residual
from convcost.primitives import Activation, Conv, ConvTranspose, Einsum, Linear, MultiheadAttention, PixelShuffle


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cost(GroupedConv, C=6, O=9, K=3, G=4, H=8, W=8), "C=6 is not divisible by G=4"),
        (lambda: cost(StandardConv, C=0, O=4, K=3), "C=0 must be a positive integer"),
        (lambda: cost(StandardConv, C=-3, O=4, K=3), "C=-3 must be a positive integer"),
        (lambda: cost(StandardConv, C=3, O=4, K=7, H=5, W=5), "wider than the padded input"),
        (lambda: cost(StandardConv, C=3, O=4, K=3, P=-1), "P=-1 must be a non-negative integer"),
        (lambda: cost(StandardConv, C=3.5, O=4, K=3), "C=3.5 must be a positive integer"),
        (lambda: cost(StandardConv, C="64", O=4, K=3), "C='64' must be a positive integer"),
        (lambda: cost(StandardConv, C=True, O=4, K=3), "C=True must be a positive integer"),
        (lambda: cost(StandardConv, C=3, O=4, K=3, colour=1), "unknown keyword 'colour'"),
        (lambda: cost(StandardConv, C=3, O=4, K=3, S=2, P="same"), "padding='same' needs stride 1"),
        (lambda: cost(StandardConv, C=3, O=4, K=3, bias="yes"), "bias='yes' must be True or False"),
        (lambda: cost(TransposedConv, C=4, O=4, K=3, S=2, output_padding=2, H=5, W=5),
         "output_padding=2 must be smaller than the stride S=2 or the dilation D=1"),
        (lambda: Conv(C=3, O=4, K=(3, 3, 3)).cost((1, 3, 8, 8)), "3 entries for 2 spatial axes"),
        (lambda: Conv(C=3, O=4, K=3).cost((1, 5, 8, 8)), "input has 5 channels, expected C=3"),
        (lambda: Conv(C=3, O=4, K=3).cost((1, 3, 8)), "expects a 4-D input"),
        (lambda: Linear(C=10, O=4).cost((1, 9)), "expected C=10"),
        (lambda: PixelShuffle(r=2).cost((1, 6, 4, 4)), "not divisible by r**2=4"),
        (lambda: Einsum(equation="ij,jk->ik").cost([(2, 3), (4, 5)]), "index 'j' has sizes 3 and 4"),
        (lambda: Einsum(equation="ii,i->i").cost([(2, 3), (3,)]), "index 'i' is repeated in operand 0 with sizes 2"),
        (lambda: Einsum(equation="ij,jk->iz").cost([(2, 3), (3, 5)]), "output index 'z'"),
        (lambda: MultiheadAttention(E=8, H=2, kdim=4, vdim=4).cost([(5, 2, 8)]), "needs kdim == vdim == E"),
        (lambda: MultiheadAttention(E=8, H=2).cost([(5, 2, 8)] * 4), "[query, key, value]"),
        (lambda: ConvTranspose(C=4, O=4, K=3).cost((1, 4, 0, 3)), "sizes must be positive integers"),
        (lambda: cost(StandardConv, C=3, O=4, K=3).subs(H=2.5), "must be an integer"),
        (lambda: cost("StandardConv"), "needs a convcost layer"),
        (lambda: __import__("convcost").Cost(output_shape=(1,), params="__import__('os')"), "not text"),
        (lambda: Residual(Activation("relu"), when="__import__('os')"), "must be True, False or a sympy condition"),
        (lambda: importlib.import_module("convcost.comparison").simplest("__import__('os')"), "is text"),
        (lambda: cost(StandardConv, C=3, O=4, K=3).subs(h=56), "the cost has no symbol 'h' (its symbols: H, W)"),
    ],
)
def test_one_clear_error(make, message):
    with pytest.raises(ConvcostError) as info:
        make()
    assert message in str(info.value)
    assert info.value.__cause__ is None or not isinstance(info.value.__cause__, sympy.SympifyError)


def test_errors_are_value_errors():
    assert issubclass(ConvcostError, ValueError)


def test_free_symbols_are_not_refused_but_carried():
    c = cost(StandardConv, C=3, O=4, K=7)
    assert c.conditions, "a kernel that may not fit a symbolic input is a condition, not an error"


def test_ceil_mode_pool_accepts_what_pytorch_accepts():
    """PyTorch's rule for pools is one output or more under its own rounding (checked by hand on torch 2.13)."""
    from convcost.primitives import MaxPool

    assert MaxPool(K=2, S=2, ceil_mode=True).cost((1, 1, 1, 1)).output_shape == (1, 1, 1, 1)
    assert MaxPool(K=3, S=2, ceil_mode=True).cost((1, 1, 2, 2)).output_shape == (1, 1, 1, 1)
    with pytest.raises(ConvcostError, match="leaves no output"):
        MaxPool(K=3, S=2, ceil_mode=True).cost((1, 1, 1, 1))
    with pytest.raises(ConvcostError, match="wider than the padded input"):
        MaxPool(K=2, S=2).cost((1, 1, 1, 1))
