"""Layer, group and instance normalisation (batch norm is :mod:`convcost.primitives.norm`).

>>> Normalization(kind="layer", C=64).cost((2, 10, 64)).norm_ops
1280
>>> Normalization(kind="group", C=32).cost((1, 32, 8, 8)).params
64
"""

from __future__ import annotations

from convcost.layers import Layer
from convcost.primitives.base import plain
from convcost.shapes import numel
from convcost.spec import choice, flag, size, spec
from convcost.symbols import C

KINDS = ("layer", "group", "instance", "rms")


@spec
class Normalization(Layer):
    """Normalisation of ``kind`` (``nn.LayerNorm``, ``nn.GroupNorm``, ``nn.InstanceNorm*d``, ``nn.RMSNorm``)
    whose affine weight holds ``C`` elements: params = C (weight) + C (bias) when ``affine``; one fused
    multiply-add per element normalised (``norm_ops``), as for batch norm."""

    kind: str = choice("layer", KINDS)
    C: object = size(C)
    affine: bool = flag(True)
    bias: bool = flag(True)

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shape):
        params = (self.C + (self.C if self.bias else 0)) if self.affine else 0
        return plain(shape, shape, params=params, norm_ops=numel(shape))
