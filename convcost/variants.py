"""Named convolution variants, each a composition of primitives.

A variant takes its layer fields plus the input size ``N, H, W`` (``T`` for
3-D) as keywords; ``Variant(**kw).cost()`` costs it on that input and
``variant.cost(shape)`` on any other. No variant writes a formula: its cost
is the sum of its primitives' costs.

>>> from convcost import cost
>>> cost(StandardConv, C=10, O=32, K=3, H=128, W=128).params
2912
>>> cost(SeparableConv, C=10, O=32, K=3, H=128, W=128).macs
6509160
>>> cost(DepthwiseConv, C=32, K=3, M=2, P=1).params
640
"""

from __future__ import annotations

import dataclasses

from convcost.compose import Sequential
from convcost.errors import ConvcostError
from convcost.layers import Layer
from convcost.primitives import ChannelShuffle, Conv, ConvTranspose, PixelShuffle, PixelUnshuffle
from convcost.spec import count, flag, padding, size, spec
from convcost.symbols import C, D, G, H, K, O, T, W, r

INPUT_FIELDS = ("N", "T", "H", "W")


@spec
class Variant(Layer):
    """A named composition of primitives with its own default input ``(N, C, H, W)``.

    Subclasses define :meth:`layers`; the input size fields are keyword-only.
    """

    abstract_base = True

    _: dataclasses.KW_ONLY
    N: object = size(1)
    H: object = size(H)
    W: object = size(W)

    def layers(self) -> Layer:
        """The composition of primitives this variant is."""
        raise NotImplementedError

    def default_input(self):
        return (self.N, self.C, self.H, self.W)

    def _cost(self, shape, grad=None):
        try:
            if grad is None:
                return self.layers().cost(shape)
            return self.layers().cost(shape, input_grad=grad.input, trainable=grad.trainable)
        except ConvcostError as exc:  # name the variant the user wrote, then the part that failed
            raise ConvcostError(f"{self!r}: {exc}") from None

    def precision_rows(self, cost, inputs, graph):
        return self.layers().precision_rows(cost, inputs, graph)  # its cost's parts are its composition's

    # the input size reads best last: StandardConv(C=3, O=32, K=3, H=32, W=32)
    _shown_last = INPUT_FIELDS


@spec
class StandardConv(Variant):
    """A KxK convolution from C to O channels (``nn.Conv2d``)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, G=self.G,
                                    bias=self.bias))


@spec
class PointwiseConv(Variant):
    """A 1x1 convolution: channel mixing only (grouped when G > 1)."""

    C: object = size(C)
    O: object = size(O)
    S: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.O, K=1, S=self.S, G=self.G, bias=self.bias))


@spec
class DepthwiseConv(Variant):
    """One KxK filter per input channel (G = C), M filters each: O = C M."""

    C: object = size(C)
    K: object = size(K, per_axis=True)
    M: object = size(1)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.C * self.M, K=self.K, S=self.S, P=self.P, D=self.D, G=self.C,
                                    bias=self.bias))


@spec
class SeparableConv(Variant):
    """Depthwise KxK then pointwise 1x1 (MobileNet's depthwise separable convolution)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(
            depthwise=Conv(C=self.C, O=self.C, K=self.K, S=self.S, P=self.P, D=self.D, G=self.C, bias=self.bias),
            pointwise=Conv(C=self.C, O=self.O, K=1, bias=self.bias),
        )


@spec
class GroupedConv(Variant):
    """A KxK convolution in G independent groups (AlexNet, ResNeXt)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    G: object = size(G)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, G=self.G,
                                    bias=self.bias))


@spec
class ShuffleGroupedConv(Variant):
    """A grouped convolution followed by ShuffleNet's channel shuffle over its G groups."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    G: object = size(G)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(
            conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, G=self.G, bias=self.bias),
            shuffle=ChannelShuffle(G=self.G),
        )


@spec
class DilatedConv(Variant):
    """A KxK convolution with dilation D: receptive field D(K-1)+1 at the cost of KxK."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    D: object = size(D, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, bias=self.bias))


@spec
class AsymmetricConv(Variant):
    """Kx1 then 1xK, O filters each (seed 004, Inception-v3's spatial factorisation).

    Stride and padding of the KxK it replaces act on the height in the first
    convolution and on the width in the second, so the output matches.
    """

    C: object = size(C)
    O: object = size(O)
    K: object = size(K)
    S: object = size(1)
    P: object = count(0)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(
            conv_kx1=Conv(C=self.C, O=self.O, K=(self.K, 1), S=(self.S, 1), P=(self.P, 0), bias=self.bias),
            conv_1xk=Conv(C=self.O, O=self.O, K=(1, self.K), S=(1, self.S), P=(0, self.P), bias=self.bias),
        )


#: the largest K a FactorizedConv builds ((K - 1) / 2 layers, one by one)
MAX_FACTORIZED_K = 2001


@spec
class FactorizedConv(Variant):
    """A KxK convolution as a stack of (K-1)/2 3x3 convolutions (VGG, Inception-v3).

    ``P`` is the padding of the KxK it replaces, spread over the 3x3 layers
    (one each for ``"same"``), so the output size matches. K and P must be
    concrete: they decide how many layers there are and how padding splits.
    K is at most ``MAX_FACTORIZED_K`` (the stack is built layer by layer).
    """

    C: object = size(C)
    O: object = size(O)
    K: object = size(5)
    P: object = padding(0)
    bias: bool = flag(True)

    _kept_in_general = ("K", "P")

    def validate(self):
        if type(self.K) is not int:
            raise ConvcostError(f"{self!r}: K={self.K} must be a concrete odd integer >= 3 (it sets "
                                "the number of 3x3 layers)")
        if self.K < 3 or self.K % 2 == 0:
            raise ConvcostError(f"{self!r}: K={self.K} must be an odd integer >= 3 to factor into 3x3 layers")
        if self.K > MAX_FACTORIZED_K:
            raise ConvcostError(f"{self!r}: K={self.K} would make {(self.K - 1) // 2} 3x3 layers; "
                                f"K is at most {MAX_FACTORIZED_K}")
        if not isinstance(self.P, str) and type(self.P) is not int:
            raise ConvcostError(f"{self!r}: P={self.P} must be a concrete integer or 'same' to "
                                "split over the 3x3 layers")

    def paddings(self) -> list:
        """The padding of each 3x3 layer."""
        n = int(self.K - 1) // 2
        if self.P == "same":
            return [1] * n
        total = 0 if self.P == "valid" else int(self.P)
        return [total // n + (1 if i < total % n else 0) for i in range(n)]

    def layers(self):
        convs = {}
        for i, p in enumerate(self.paddings()):
            convs[f"conv{i + 1}"] = Conv(C=self.C if i == 0 else self.O, O=self.O, K=3, P=p, bias=self.bias)
        return Sequential(**convs)


@spec
class TransposedConv(Variant):
    """A transposed (fractionally strided) convolution (``nn.ConvTranspose2d``)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = count(0, per_axis=True)
    output_padding: object = count(0, per_axis=True)
    D: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)

    def layers(self):
        return Sequential(
            conv_transpose=ConvTranspose(
                C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, output_padding=self.output_padding, D=self.D,
                G=self.G, bias=self.bias,
            )
        )


@spec
class Conv3d(Variant):
    """A KxKxK convolution over depth (time), height and width (``nn.Conv3d``)."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)
    _: dataclasses.KW_ONLY
    T: object = size(T)

    def default_input(self):
        return (self.N, self.C, self.T, self.H, self.W)

    def layers(self):
        return Sequential(conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=self.P, D=self.D, G=self.G,
                                    bias=self.bias, dims=3))


@spec
class SpaceToDepth(Variant):
    """Space to depth (pixel unshuffle): r x r blocks move into channels; no parameters."""

    C: object = size(C)
    r: object = size(r)

    def layers(self):
        return Sequential(unshuffle=PixelUnshuffle(r=self.r))


@spec
class DepthToSpace(Variant):
    """Depth to space (pixel shuffle, sub-pixel convolution's rearrangement); no parameters."""

    C: object = size(C)
    r: object = size(r)

    def layers(self):
        return Sequential(shuffle=PixelShuffle(r=self.r))

