"""RepVGG (Ding et al., 2021): structural re-parameterisation.

Trained as three branches summed (KxK conv + BN, 1x1 conv + BN, and a BN identity when C = O and
S = 1), then ReLU; deployed as one KxK conv with bias, then ReLU. :meth:`RepVGGBlock.fused` gives
the deploy form; the weights fold exactly (``convcost.torch.reparameterise.fuse_repvgg`` does it in PyTorch).

>>> from convcost import cost
>>> block = RepVGGBlock(C=64, O=64, H=56, W=56)
>>> block.cost().params, block.fused().cost().params
(41344, 36928)
"""

from __future__ import annotations

from convcost.arith import both, eq, floordiv, mod
from convcost.compose import Parallel, Residual, Sequential
from convcost.efficient.cheap import conv_bn
from convcost.errors import require
from convcost.primitives import Activation, BatchNorm, Conv
from convcost.spec import flag, size, spec
from convcost.symbols import C, O
from convcost.variants import Variant


@spec
class RepVGGBlock(Variant):
    """A RepVGG block; ``deploy=True`` is its re-parameterised (fused) form. K is odd, padding K//2."""

    C: object = size(C)
    O: object = size(O)
    K: object = size(3)
    S: object = size(1)
    G: object = size(1)
    deploy: bool = flag(False)

    def validate(self):
        require(eq(mod(self.K, 2), 1), self, f"K={self.K} must be odd (the 1x1 branch must meet the KxK one)")

    def fused(self) -> RepVGGBlock:
        """The deploy form: one KxK conv with bias, then ReLU."""
        return self.replace(deploy=True)

    def layers(self):
        pad = floordiv(self.K, 2)
        if self.deploy:
            return Sequential(conv=Conv(C=self.C, O=self.O, K=self.K, S=self.S, P=pad, G=self.G, bias=True),
                              act=Activation(kind="relu"))
        branches = Parallel(
            dense=conv_bn(self.C, self.O, self.K, self.S, pad, self.G, act=None),
            pointwise=conv_bn(self.C, self.O, 1, self.S, 0, self.G, act=None),
            merge="add",
        )
        identity = Residual(branches, shortcut=BatchNorm(C=self.C), when=both(eq(self.S, 1), eq(self.C, self.O)))
        return Sequential(branches=identity, act=Activation(kind="relu"))
