"""Blocks that make a convolution cheaper by doing less of it: GhostNet, MixNet, Shift, BSConv, FasterNet.

Each is a composition of primitives; no formula is written here.

>>> from convcost import cost
>>> cost(GhostModule, C=16, O=32, H=8, W=8).params    # 16x16 primary, 16 depthwise 3x3, two batch norms
464
>>> cost(MixConv, C=12, H=8, W=8).macs                 # 4 channels each with 3x3, 5x5, 7x7 taps
21248
>>> cost(ShiftConv, C=16, O=32, H=8, W=8).params
512
>>> cost(BSConvU, C=16, O=32, H=8, W=8).params
832
>>> cost(PartialConv, C=64, H=8, W=8).params
2304
"""

from __future__ import annotations

from convcost.arith import ceildiv, floordiv, ge
from convcost.compose import Parallel, Sequential
from convcost.errors import ConvcostError, require
from convcost.primitives import Activation, BatchNorm, Conv, Identity, Narrow, Shift
from convcost.spec import count, size, spec
from convcost.symbols import C, O
from convcost.variants import Variant


def conv_bn(c_in, c_out, kernel, stride=1, pad=0, groups=1, act="relu"):
    """Conv (no bias) + BatchNorm (+ activation when ``act``)."""
    parts = {"conv": Conv(C=c_in, O=c_out, K=kernel, S=stride, P=pad, G=groups, bias=False), "bn": BatchNorm(C=c_out)}
    if act is not None:
        parts["act"] = Activation(kind=act)
    return Sequential(**parts)


@spec
class GhostModule(Variant):
    """GhostNet's Ghost module (timm ``GhostModule``): a primary KxK conv to ceil(O/s) channels, a cheap
    depthwise d x d conv making s-1 times as many ("ghosts"), each with BN and ReLU, concatenated and
    cut to O channels."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(1)
    s: object = size(2)
    d: object = size(3)
    S: object = size(1)

    def validate(self):
        require(ge(self.s, 2), self, f"s={self.s} must be at least 2 (s-1 cheap maps per primary map)")

    def layers(self):
        primary = ceildiv(self.O, self.s)
        ghosts = primary * (self.s - 1)
        return Sequential(
            primary=conv_bn(self.C, primary, self.K, self.S, floordiv(self.K, 2)),
            ghost=Parallel(identity=Identity(),
                           cheap=conv_bn(primary, ghosts, self.d, 1, floordiv(self.d, 2), groups=primary)),
            cut=Narrow(dim=1, start=0, length=self.O),
        )


@spec
class MixConv(Variant):
    """MixNet's mixed depthwise convolution (timm ``MixedConv2d``): the channels split into one group per
    kernel size, each group a depthwise KxK conv (padding K//2, no bias), concatenated. The split is
    equal and the first group takes the remainder."""

    C: object = size(C)
    kernels: tuple = size((3, 5, 7), per_axis=True)
    S: object = size(1)

    def validate(self):
        if not isinstance(self.kernels, tuple):
            raise ConvcostError(f"{self!r}: kernels={self.kernels!r} must be a tuple of kernel sizes")

    def splits(self) -> tuple:
        """The channels of each group: C // n each, the first also taking C mod n."""
        n = len(self.kernels)
        equal = floordiv(self.C, n)
        return (self.C - (n - 1) * equal, *([equal] * (n - 1)))

    def layers(self):
        groups, start = {}, 0
        for i, (k, channels) in enumerate(zip(self.kernels, self.splits())):
            conv = Conv(C=channels, O=channels, K=k, S=self.S, P=k // 2 if type(k) is int else floordiv(k, 2),
                        G=channels, bias=False)
            groups[f"group{i}"] = Sequential(split=Narrow(dim=1, start=start, length=channels), conv=conv)
            start = start + channels
        if len(groups) == 1:
            return groups["group0"]
        return Parallel(**groups)


@spec
class ShiftConv(Variant):
    """Shift (Wu et al., 2018): a zero-parameter, zero-MAC spatial shift of channel groups, then a 1x1
    convolution (no bias: a batch norm follows it in the paper's networks)."""

    C: object = size(C)
    O: object = size(O)
    S: object = size(1)

    def layers(self):
        return Sequential(shift=Shift(K=3), conv=Conv(C=self.C, O=self.O, K=1, S=self.S, bias=False))


@spec
class BSConvU(Variant):
    """Blueprint separable convolution, unconstrained (Haase and Amthor, 2020): a pointwise C -> O conv
    without bias, then a depthwise KxK conv on O channels with bias."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    S: object = size(1)
    P: object = count(1)

    def layers(self):
        return Sequential(
            pointwise=Conv(C=self.C, O=self.O, K=1, bias=False),
            depthwise=Conv(C=self.O, O=self.O, K=self.K, S=self.S, P=self.P, G=self.O, bias=True),
        )


@spec
class PartialConv(Variant):
    """FasterNet's partial convolution (``Partial_conv3``): a KxK conv (no bias, padding K//2) on the first
    C // n_div channels; the other channels pass through untouched and are concatenated after."""

    C: object = size(C)
    n_div: object = size(4)
    K: object = size(3)

    def layers(self):
        part = floordiv(self.C, self.n_div)
        return Parallel(
            conv=Sequential(split=Narrow(dim=1, start=0, length=part),
                            conv=Conv(C=part, O=part, K=self.K, P=floordiv(self.K, 2), bias=False)),
            rest=Narrow(dim=1, start=part, length=self.C - part),
        )
