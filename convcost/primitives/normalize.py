"""Group, instance and RMS normalisation (batch norm is :mod:`convcost.primitives.norm`, layer norm
:class:`convcost.primitives.LayerNorm`).

>>> Normalization(kind="rms", C=64).cost((2, 10, 64)).norm_ops
1280
>>> Normalization(kind="group", C=32).cost((1, 32, 8, 8)).params
64
"""

from __future__ import annotations

import dataclasses

from convcost.arith import div
from convcost.errors import ConvcostError
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import divisible, plain
from convcost.shapes import numel
from convcost.spec import choice, flag, size, spec
from convcost.symbols import C

KINDS = ("group", "instance", "rms")


@spec
class Normalization(Layer):
    """Normalisation of ``kind`` (``nn.GroupNorm``, ``nn.InstanceNorm*d``, ``nn.RMSNorm``) whose affine weight
    holds ``C`` elements: params = C (weight) + C (bias) when ``affine``; one fused multiply-add per element
    normalised (``norm_ops``), as for batch norm. Layer norm is :class:`~convcost.primitives.LayerNorm`.

    >>> Normalization(kind="layer", C=8)
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: Normalization(kind='layer', C=8): layer norm is LayerNorm(C=8)
    """

    # "layer" is accepted only to point at LayerNorm, the one layer norm
    kind: str = choice(dataclasses.MISSING, (*KINDS, "layer"))
    C: object = size(C)
    affine: bool = flag(True)
    bias: bool = flag(True)
    #: group norm's number of groups (it changes only what a training step saves: N x groups statistics)
    groups: object = size(1)

    def validate(self):
        if self.kind == "layer":
            raise ConvcostError(f"{self!r}: layer norm is LayerNorm(C={self.C}"
                                f"{'' if self.affine else ', affine=False'}{'' if self.bias else ', bias=False'})")

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shape, grad=TRAINING):
        """A training step (PyTorch 2.13's CPU kernels) saves, when the input or the affine parameters need
        a gradient, the input and two statistics per normalised slice: ``numel / C`` rows (layer), N x groups
        (group), N x C (instance, plus the weight repeated N times when affine). RMS norm, a composition of
        element-wise ops in torch 2.13, saves the input and one statistic per row for the input's gradient,
        and the normalised input for the weight's."""
        params = (self.C + (self.C if self.bias else 0)) if self.affine else 0
        trained = self.affine and grad.trainable
        counts = dict(params=params, norm_ops=numel(shape), output_grad=grad.input or trained,
                      param_tensors=(2 if self.bias else 1) if self.affine else 0)
        if self.kind == "rms":
            rows = div(numel(shape), self.C) if shape else 0
            return plain(shape, shape, saves_input=grad.input, extra_saved=(rows if grad.input else 0)
                         + (numel(shape) if trained else 0), **counts)
        active = grad.input or trained
        if self.kind == "group":
            stats = shape[0] * self.groups if shape else 0
        else:
            stats = shape[0] * shape[1] if len(shape) > 1 else 0
        extra = 2 * stats + (stats if self.kind == "instance" and self.affine else 0)
        conditions = divisible(self, "C", self.C, "groups", self.groups) if self.kind == "group" else ()
        return plain(shape, shape, conditions, saves_input=active, extra_saved=extra if active else 0, **counts)
