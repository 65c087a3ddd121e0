"""The one convolution an algorithm runs, and its cost as the layer states it."""

from __future__ import annotations

import sympy

from convcost.costs import Cost
from convcost.errors import ConvcostError
from convcost.primitives import Conv
from convcost.shapes import as_shape
from convcost.variants import Variant


def conv_of(spec) -> Conv:
    """The one :class:`Conv` a spec is: the spec itself, or the single conv of a variant.

    >>> from convcost import StandardConv, SeparableConv
    >>> conv_of(StandardConv(C=3, O=8, K=3))
    Conv(C=3, O=8, K=3)
    >>> conv_of(SeparableConv(C=3, O=8, K=3))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: SeparableConv(C=3, O=8, K=3): an algorithm runs one convolution; this is depthwise
    then pointwise (cost each Conv on its own input)
    """
    if isinstance(spec, Conv):
        return spec
    if isinstance(spec, Variant):
        parts = getattr(spec.layers(), "parts", ())
        if len(parts) == 1 and isinstance(parts[0][1], Conv):
            return parts[0][1]
        names = " then ".join(name for name, _ in parts) or "not one Conv"
        raise ConvcostError(f"{spec!r}: an algorithm runs one convolution; this is {names} "
                            f"(cost each Conv on its own input)")
    raise ConvcostError(f"{spec!r}: give a convolution (convcost.primitives.Conv or a variant such as StandardConv)")


def layer_cost(spec, input_shape) -> tuple[Conv, tuple, Cost]:
    """``(conv, input shape, the layer's cost on it)``; the spec's default input when ``input_shape`` is None.

    >>> from convcost import StandardConv
    >>> conv, shape, cost = layer_cost(StandardConv(C=3, O=8, K=3, N=2), (2, 3, 5, 5))
    >>> shape, cost.output_shape
    ((2, 3, 5, 5), (2, 8, 3, 3))
    """
    conv = conv_of(spec)
    if input_shape is None:
        shape = spec.default_input()
    else:
        shape = as_shape(input_shape, spec)
    return conv, tuple(sympy.sympify(x) for x in shape), conv.cost(shape)


def fields_of(conv: Conv, *names) -> tuple:
    """Fields as sympy values, so that ``C / G`` is exact even if a spec holds Python ints."""
    return tuple(sympy.sympify(getattr(conv, name)) for name in names)


def output_spatial(cost: Cost) -> tuple:
    """The spatial sizes of a channels-first output, as sympy values."""
    return tuple(sympy.sympify(x) for x in cost.output_shape[2:])
