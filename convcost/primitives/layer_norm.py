"""Layer normalisation over the last axes (the one layer norm: ``nn.LayerNorm``, ``F.layer_norm``), and a learned
per-channel scale.

>>> LayerNorm(C=96).cost((1, 56, 56, 96)).params
192
>>> LayerNorm(C=64, axes=2).cost((2, 3, 8, 8)).norm_ops       # nn.LayerNorm((8, 8)): 64 elements normalised together
384
>>> LayerScale(C=96).cost((1, 96, 56, 56)).elementwise_ops
301056
"""

from __future__ import annotations

from convcost.arith import div, eq, prod
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import channels_first, plain
from convcost.shapes import numel
from convcost.spec import flag, size, spec
from convcost.symbols import C


@spec
class LayerNorm(Layer):
    """Layer normalisation over the last ``axes`` axes (``nn.LayerNorm(normalized_shape)``), as ConvNeXt uses it
    channels last and transformers on tokens; ``C`` is the number of elements normalised together.

    params = 2C when affine (C without ``bias``); one fused multiply-add per element (``norm_ops``), like batch norm.
    """

    C: object = size(C)
    affine: bool = flag(True)
    bias: bool = flag(True)
    #: how many trailing axes are normalised together (``len(normalized_shape)``); their sizes multiply to C
    axes: object = size(1)

    def default_input(self):
        return (1, self.C)

    def kernel_kind(self) -> str:
        return "elementwise"

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def private_dtype(self, operand, params):
        # the mean and reciprocal std take the weight's dtype where it has one (float32 under autocast); without
        # one (and with no running statistics, unlike batch norm) the input's
        return params if self.affine else operand

    def _cost(self, shape, grad=TRAINING):
        """In a training step autograd keeps the input and the mean and reciprocal std of every normalised
        row (``numel / C`` each), when the input or the affine parameters need a gradient."""
        if self.axes == 1:
            if not shape:
                raise ConvcostError(f"{self!r}: needs an input with a feature axis (the last), got shape ()")
            conditions = require(eq(shape[-1], self.C), self,
                                 lambda: f"the last axis has {shape[-1]} features, expected C={self.C}")
        else:
            if type(self.axes) is not int:
                raise ConvcostError(f"{self!r}: axes={self.axes} must be a number: it decides the input's rank")
            if len(shape) < self.axes:
                raise ConvcostError(f"{self!r}: normalises the last {self.axes} axes, got shape {shape}")
            normalised = prod(shape[len(shape) - self.axes:])
            conditions = require(eq(normalised, self.C), self, lambda: f"the last {self.axes} axes hold "
                                 f"{normalised} elements, expected C={self.C}")
        active = grad.input or self.affine and grad.trainable
        rows = div(numel(shape), self.C)
        weights = (2 if self.bias else 1) if self.affine else 0
        return plain(shape, shape, conditions, params=weights * self.C, norm_ops=numel(shape),
                     saves_input=active, extra_saved=2 * rows if active else 0, output_grad=active,
                     param_tensors=weights)


@spec
class LayerScale(Layer):
    """A learned scale per channel of a channels-first input (ConvNeXt's layer scale, CaiT's):
    params C, one multiplication per element (``elementwise_ops``)."""

    C: object = size(C)

    def default_input(self):
        return (1, self.C, 1, 1)

    def kernel_kind(self) -> str:
        return "elementwise"

    def _cost(self, shape, grad=TRAINING):
        """In a training step the product saves its input only for the scale's own gradient."""
        conditions = channels_first(self, shape, None, self.C)
        return plain(shape, shape, conditions, params=self.C, elementwise_ops=numel(shape),
                     saves_input=grad.trainable, output_grad=grad.input or grad.trainable, param_tensors=1)
