"""The fully connected layer.

>>> Linear(C=96, O=384, bias=False).cost((1, 56, 56, 96)).macs
115605504
"""

from __future__ import annotations

from convcost.arith import eq
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import backward, plain
from convcost.shapes import numel
from convcost.spec import flag, size, spec
from convcost.symbols import C, O


@spec
class Linear(Layer):
    """Fully connected layer on the last axis (``nn.Linear``), any number of leading axes.

    MACs = (elements of the input / C) x C x O.
    """

    C: object = size(C)
    O: object = size(O)
    bias: bool = flag(True)

    def default_input(self):
        return (1, self.C)

    def kernel_kind(self) -> str:
        return "linear"

    def autocast_rule(self) -> str:
        return "lower"  # linear: cast to the autocast dtype

    def autocast_weight(self, cost, input_grads):
        # a matmul keeps each operand for the other's gradient: the weight copy for the input's
        return self.C * self.O if input_grads[0] else 0

    def axis_names(self, rank: int) -> tuple:
        """Names of the input axes in formulas: channels last, ``(N, H, W, C)`` for a 4-D input."""
        leading = {1: (), 2: ("N",), 3: ("N", "L"), 4: ("N", "H", "W"), 5: ("N", "T", "H", "W")}
        return (*leading.get(rank, tuple(f"d{i}" for i in range(rank - 1))), "C")

    def _cost(self, shape, grad=TRAINING):
        if not shape:
            raise ConvcostError(f"{self!r}: needs an input with a feature axis (the last), got shape ()")
        conditions = require(eq(shape[-1], self.C), self,
                             lambda: f"the last axis has {shape[-1]} features, expected C={self.C}")
        out_shape = (*shape[:-1], self.O)
        rows = numel(shape[:-1])
        macs = rows * self.C * self.O
        return plain(
            out_shape,
            shape,
            conditions,
            params=self.C * self.O + (self.O if self.bias else 0),
            macs=macs,
            bias_ops=numel(out_shape) if self.bias else 0,
            backward_macs=backward(macs, grad),
            # a matmul saves each operand only for the other's gradient: the input for the weight's
            saves_input=grad.trainable,
            output_grad=grad.input or grad.trainable,
            param_tensors=2 if self.bias else 1,
        )
