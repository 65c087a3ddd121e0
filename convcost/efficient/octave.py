"""Octave convolution (Chen et al., 2019), the middle layer: feature maps in two frequencies.

An octave feature map with C channels is ``C - floor(alpha C)`` high-frequency channels at H x W and
``floor(alpha C)`` low-frequency ones at H/2 x W/2 (the reference code's ``int(alpha * C)``). convcost
writes it by its nominal shape ``(N, C, H, W)``, so an octave layer chains like any other; the parts
are costed on the tensors they really see.

>>> from convcost import cost
>>> cost(OctaveConv, C=64, O=64, H=32, W=32).macs
16515072
>>> 64 * 64 * 9 * 32 * 32 * 7 // 16          # 7/16 of the plain 3x3 convolution
16515072
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.arith import div, divides, either, floordiv, integer, lt, total, where
from convcost.compose import Sequential
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives import Add, AvgPool, Conv, Interpolate
from convcost.primitives.base import rank
from convcost.shapes import equal_sizes, numel
from convcost.spec import layer, real, size, spec
from convcost.symbols import C, O
from convcost.variants import Variant

#: the four paths of an octave layer, in the order they are costed
PATHS = ("high_to_high", "high_to_low", "low_to_high", "low_to_low")


@spec
class Octave(Layer):
    """The four paths of an octave layer on the nominal input ``(N, C, H, W)``, whose last ``low``
    channels are the low-frequency map at H/2 x W/2: ``high_to_*`` read the high map, ``low_to_*`` the
    low one; ``add_high`` and ``add_low`` sum what reaches each frequency."""

    low: object = size()
    high_to_high: object = layer()
    high_to_low: object = layer()
    low_to_high: object = layer()
    low_to_low: object = layer()

    def _cost(self, shape, grad=TRAINING):
        """A training step on the nominal input, as :func:`convcost.torch.to_torch` builds the layer: the high
        and low maps are views of that one tensor (its first channels; its last ``low`` channels at every
        second pixel), so a path that keeps its input keeps that tensor, once for all four paths; each path
        keeps what its own layers keep, and the sums keep nothing. (A network that passes the two maps as a
        pair keeps them instead: N (C - low) H W + N low H W / 4 elements where this keeps N C H W.)"""
        rank(self, shape, 4)
        n, c, h, w = shape
        conditions = require(lt(self.low, c), self, f"low={self.low} must leave high-frequency channels of the {c}")
        for name, length in (("height", h), ("width", w)):
            conditions += require(divides(2, length), self, f"the {name} {length} must be even (the low map is half)")
        high_in, low_in = (n, c - self.low, h, w), (n, self.low, div(h, 2), div(w, 2))
        costs = {name: getattr(self, name).cost(high_in if name.startswith("high") else low_in, input_grad=grad.input,
                                                trainable=grad.trainable) for name in PATHS}
        high = Add().cost([costs["high_to_high"].output_shape, costs["low_to_high"].output_shape])
        low = Add().cost([costs["high_to_low"].output_shape, costs["low_to_low"].output_shape])
        (_, o_high, h_out, w_out), (_, o_low, h_low, w_low) = high.output_shape, low.output_shape
        conditions += equal_sizes((2 * h_low, 2 * w_low), (h_out, w_out), self, "twice the low map and the high map")
        named = [*costs.items(), ("add_high", high), ("add_low", low)]
        # the paths' inputs are views of the nominal input: kept once if any path keeps its own
        own = total(c.saved_elements - where(c.saves_input, numel(c.input_shape), 0) for c in costs.values())
        kept = either(*(c.saves_input for c in costs.values()))
        step = dict(saved_elements=own + where(kept, numel(shape), 0), saves_input=kept, saves_output=False,
                    output_view=False, output_grad=either(*(c.output_grad for c in costs.values())))
        summed = Cost.total(named, output_shape=(n, o_high + o_low, h_out, w_out), input_shape=shape, **step)
        return dataclasses.replace(summed, conditions=summed.conditions + conditions)


@spec
class OctaveConv(Variant):
    """The middle octave convolution: H->H, H->L (2x2 average pool, then conv), L->H (conv, then 2x
    nearest upsampling) and L->L, KxK with padding (K-1)/2, no bias; ``alpha`` of the channels, in and
    out, are low-frequency. At S = 2 both maps are pooled first and L->H is not upsampled, as in the
    reference code. MACs against a plain conv: 1 - (3/4) alpha (2 - alpha), 7/16 at alpha = 1/2."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    alpha: object = real(sympy.Rational(1, 2))
    S: object = size(1)

    _kept_in_general = ("S",)

    def validate(self):
        if self.S not in (1, 2):
            raise ConvcostError(f"{self!r}: S={self.S} must be 1 or 2 (the reference octave layer's strides)")
        if sympy.sympify(self.alpha).is_number and not self.alpha < 1:
            raise ConvcostError(f"{self!r}: alpha={self.alpha} must be below 1 (a share of the channels)")

    def low(self, channels):
        """The low-frequency channels of ``channels``: floor(alpha channels)."""
        return integer(sympy.floor(self.alpha * channels))

    def layers(self):
        low_in, low_out = self.low(self.C), self.low(self.O)
        high_in, high_out = self.C - low_in, self.O - low_out
        for what, value in (("C", self.C), ("O", self.O)):
            low = self.low(value)  # a closed form while alpha is a symbol: checked once it is bound
            if type(value) is int and type(low) is int and not 0 < low < value:
                raise ConvcostError(f"{self!r}: alpha={self.alpha} of {what}={value} leaves an empty frequency")

        def conv(c_in, c_out):
            return Conv(C=c_in, O=c_out, K=self.K, P=floordiv(self.K - 1, 2), bias=False)

        def pool():
            return AvgPool(K=2, S=2)

        if self.S == 1:
            paths = dict(
                high_to_high=conv(high_in, high_out),
                high_to_low=Sequential(pool=pool(), conv=conv(high_in, low_out)),
                low_to_high=Sequential(conv=conv(low_in, high_out), upsample=Interpolate(scale=2)),
                low_to_low=conv(low_in, low_out),
            )
        else:
            paths = dict(
                high_to_high=Sequential(pool=pool(), conv=conv(high_in, high_out)),
                high_to_low=Sequential(pool=pool(), pool_again=pool(), conv=conv(high_in, low_out)),
                low_to_high=conv(low_in, high_out),
                low_to_low=Sequential(pool=pool(), conv=conv(low_in, low_out)),
            )
        return Octave(low=low_in, **paths)
