"""The ConvNeXt block (Liu et al., 2022; torchvision ``CNBlock``).

A depthwise KxK conv (padding K//2, bias), channels last, LayerNorm, Linear C -> expansion C, GELU,
Linear back to C, channels first, the layer scale, and the residual (stochastic depth is the identity
at inference).

>>> from convcost import cost
>>> cost(ConvNeXtBlock, C=96, H=56, W=56).params
79296
"""

from __future__ import annotations

from convcost.arith import floordiv
from convcost.compose import Residual, Sequential
from convcost.primitives import Activation, Conv, LayerNorm, LayerScale, Linear, Permute
from convcost.spec import size, spec
from convcost.symbols import C
from convcost.variants import Variant


@spec
class ConvNeXtBlock(Variant):
    """A ConvNeXt block on C channels."""

    C: object = size(C)
    K: object = size(7)
    expansion: object = size(4)

    def layers(self):
        hidden = self.expansion * self.C
        return Residual(Sequential(
            depthwise=Conv(C=self.C, O=self.C, K=self.K, P=floordiv(self.K, 2), G=self.C, bias=True),
            to_channels_last=Permute(dims=(0, 2, 3, 1)),
            norm=LayerNorm(C=self.C),
            expand=Linear(C=self.C, O=hidden),
            act=Activation(kind="gelu"),
            project=Linear(C=hidden, O=self.C),
            to_channels_first=Permute(dims=(0, 3, 1, 2)),
            scale=LayerScale(C=self.C),
        ))
