"""Recurrent layers: the LSTM (``nn.LSTM``), as sequence models built on convolutional features use it
(timm's Sequencer reads image rows and columns with bidirectional LSTMs).

Counted as ``FlopCounterMode`` counts the products PyTorch runs: per layer and direction, the input
projection and the recurrence are ``T N 4H (I + Hh)`` MACs (``Hh`` the hidden state's size: ``P`` with a
projection, else ``H``), and a projection adds ``T N H P``. Element-wise work per step and unit: three
sigmoid and two tanh (``act_ops``), three products and one sum (``elementwise_ops``); biases one addition
per gate output.

>>> LSTM(I=8, H=16).cost((5, 2, 8)).macs          # 5 steps x batch 2 x 64 gates x (8 + 16)
15360
>>> LSTM(I=8, H=16, layers=2, bidirectional=True).cost((5, 2, 8)).output_shape
(5, 2, 32)
"""

from __future__ import annotations

from convcost.arith import eq
from convcost.errors import ConvcostError, require
from convcost.layers import Layer
from convcost.primitives.base import fmt, plain
from convcost.spec import count, flag, size, spec
from convcost.symbols import C, O


@spec
class LSTM(Layer):
    """``nn.LSTM(input_size=I, hidden_size=H, num_layers=layers, bias, batch_first, bidirectional,
    proj_size=P)`` on ``(T, N, I)`` (``(N, T, I)`` when ``batch_first``, ``(T, I)`` unbatched)."""

    I: object = size(C)
    H: object = size(O)
    layers: object = size(1)
    bias: bool = flag(True)
    batch_first: bool = flag(False)
    bidirectional: bool = flag(False)
    P: object = count(0)

    #: why a training step holding one is listed, not counted
    untrained_why = ("no training counts: on the CPU PyTorch 2.13 trains an LSTM through oneDNN's fused RNN, which "
                     "keeps one workspace whose size is that library's internal layout (28,672 elements for the "
                     "smallest LSTM), and FlopCounterMode sees none of its backward")

    def default_input(self):
        return (1, 1, self.I)

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shape):
        if len(shape) not in (2, 3):
            raise ConvcostError(f"{self!r}: expects a (T, N, I) or (T, I) input, got shape {fmt(shape)}")
        conditions = require(eq(shape[-1], self.I), self, lambda: f"input has {shape[-1]} features, expected I={self.I}")
        if len(shape) == 3:
            steps, batch = (shape[1], shape[0]) if self.batch_first else (shape[0], shape[1])
        else:
            steps, batch = shape[0], 1
        dirs = 2 if self.bidirectional else 1
        hidden = self.P if self.P != 0 else self.H  # what each step outputs and feeds back
        params, macs = 0, 0
        for layer in range(self.layers):
            inputs = self.I if layer == 0 else hidden * dirs
            per = 4 * self.H * (inputs + hidden) + (self.H * self.P if self.P != 0 else 0)
            params = params + dirs * (per + (8 * self.H if self.bias else 0))
            macs = macs + dirs * steps * batch * per
        units = dirs * self.layers * steps * batch * self.H
        out = (*shape[:-1], dirs * hidden)
        return plain(out, shape, conditions, params=params, macs=macs, act_ops=5 * units, elementwise_ops=4 * units,
                     bias_ops=8 * units if self.bias else 0)

    def states(self, shape) -> tuple:
        """The shapes of the final hidden and cell states (``h_n``, ``c_n``) on ``shape``."""
        dirs = 2 if self.bidirectional else 1
        batch = (shape[0] if self.batch_first else shape[1],) if len(shape) == 3 else ()
        hidden = self.P if self.P != 0 else self.H
        return (dirs * self.layers, *batch, hidden), (dirs * self.layers, *batch, self.H)
