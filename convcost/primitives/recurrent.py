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

The training step is what PyTorch 2.13 runs on the CPU in float32. Without a projection it trains
through oneDNN's fused RNN (``mkldnn_rnn_layer``, one call per layer and direction); a projection
(``P > 0``) is refused by oneDNN, and PyTorch runs the LSTM cell by cell (the path it also takes with
oneDNN switched off).

``backward_macs`` counts what the backward needs, per layer and direction: the input gradient
(``T N 4H I_l``, for the first layer only when its input needs one), the weight gradients (``T N 4H
(I_l + Hh)`` when trained), the hidden state's gradient at every step but the first (``(T - 1) N 4H Hh``:
the initial state is a constant zero) and, with a projection, its input and weight gradients (``T N H P``
each). That is what ``FlopCounterMode`` counts for the cell-by-cell path; oneDNN's backward computes
more than needed (every input, state and weight gradient, always) and is invisible to FlopCounterMode.

``saved_elements`` on the oneDNN path: the first layer's input (the input itself, or its contiguous copy
when ``batch_first`` reorders it), the zero initial states ``h_0`` and ``c_0``, each call's output and final
states and the *workspace* oneDNN fills for its backward (:func:`workspace`; a byte buffer, counted here
in float32 elements, its bytes / 4), the concatenated directions that feed the next layer, and, without
biases, the zero tensors PyTorch passes oneDNN in their place (``4H (I_l + H)`` per call).

>>> step = LSTM(I=8, H=16).cost((5, 2, 8))
>>> step.backward_macs        # input and weight gradients 2 x 5 x 2 x 64 x 8, recurrence 4 x 64 x 16 + 5 x 2 x 64 x 16
28672
>>> workspace(steps=5, batch=2, inputs=8, hidden=16)     # seven regions of oneDNN's workspace, a page each
7168
>>> step.saved_elements       # input 80 + h_0, c_0 2 x 32 + output 160 + h_n, c_n 2 x 32 + workspace 7168
7536
"""

from __future__ import annotations

from convcost.arith import both, ceildiv, divides, eq, gt, maximum, negate, total, where
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import fmt, plain
from convcost.spec import count, flag, size, spec
from convcost.symbols import C, O

#: oneDNN's page (4096 bytes) in float32 elements: every region of an RNN workspace starts on a new one
PAGE = 1024


def good_ld(width):
    """oneDNN's leading dimension for float32 rows of ``width`` (``rnn_utils::get_good_ld``): rounded up to 16
    elements (64 bytes), and 16 more when that is a multiple of 256 (to avoid 4K aliasing).

    >>> good_ld(1), good_ld(17), good_ld(250), good_ld(256), good_ld(257)
    (16, 32, 272, 272, 272)
    """
    ld = 16 * ceildiv(width, 16)
    return where(divides(256, ld), ld + 16, ld)


def workspace(steps, batch, inputs, hidden):
    """Float32 elements of the workspace one oneDNN LSTM call (one layer, one direction, ``inputs`` features
    in, ``hidden`` out) keeps for its backward: its bytes / 4.

    oneDNN 3.12 (the one PyTorch 2.13 bundles; ``src/cpu/rnn/rnn_utils.hpp`` ``init_conf`` and
    ``set_workspace_sizes``, ``src/cpu/rnn/rnn_utils.cpp`` ``set_offsets``) lays out seven regions, each
    starting on a page, the last one rounded to a page too: the gates (``T N`` rows of ``4H``), the hidden
    outputs (``T N`` rows of ``H``), and five of ``2 (T + 1) N`` rows (two layers of states, the call's input
    and output, over ``T + 1`` steps): the states, the cell states (``H`` wide), the states' gradients for
    the layer and the recurrence, and the cell states' gradients (``H`` wide). Rows holding states are
    ``max(inputs, hidden)`` wide; all but the cell states' are padded to :func:`good_ld`. In float32
    training oneDNN takes its reference path on every CPU (the brgemm one refuses float32 training), so the
    layout does not depend on the instruction set.

    >>> workspace(1, 1, 1, 1)         # seven regions, each smaller than a page
    7168
    >>> workspace(steps=64, batch=32, inputs=256, hidden=256)   # PyTorch 2.13 allocates 32,845,824 bytes
    8211456
    """
    rows = 2 * (steps + 1) * batch
    wide = good_ld(maximum(inputs, hidden))
    regions = (steps * batch * good_ld(4 * hidden), steps * batch * good_ld(hidden),
               rows * wide, rows * hidden, rows * wide, rows * wide, rows * hidden)
    return total(PAGE * ceildiv(r, PAGE) for r in regions)


@spec
class LSTM(Layer):
    """``nn.LSTM(input_size=I, hidden_size=H, num_layers=layers, bias, batch_first, bidirectional,
    proj_size=P)`` on ``(T, N, I)`` (``(N, T, I)`` when ``batch_first``, ``(T, I)`` unbatched).

    A symbolic ``P`` is costed as a projection (``P > 0``)."""

    I: object = size(C)
    H: object = size(O)
    layers: object = size(1)
    bias: bool = flag(True)
    batch_first: bool = flag(False)
    bidirectional: bool = flag(False)
    P: object = count(0)

    def default_input(self):
        return (1, 1, self.I)

    def kernel_kind(self) -> str:
        return "linear"

    def _cost(self, shape, grad=TRAINING):
        if len(shape) not in (2, 3):
            raise ConvcostError(f"{self!r}: expects a (T, N, I) or (T, I) input, got shape {fmt(shape)}")
        conditions = require(eq(shape[-1], self.I), self,
                             lambda: f"input has {shape[-1]} features, expected I={self.I}")
        if len(shape) == 3:
            steps, batch = (shape[1], shape[0]) if self.batch_first else (shape[0], shape[1])
        else:
            steps, batch = shape[0], 1
        # a batch_first input is reordered to (T, N, I), a copy unless one of the two axes is 1
        copied = both(self.batch_first, gt(batch, 1), gt(steps, 1)) if len(shape) == 3 else False
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
        needed = grad.input or grad.trainable
        if not needed:  # no graph: nothing saved, no backward
            extra, saves_input, saves_output = 0, False, False
        elif self.P != 0:
            extra, saves_input, saves_output = self._saved_by_cells(steps, batch, grad.trainable, copied)
        else:
            extra, saves_input, saves_output = self._saved_by_onednn(steps, batch, copied)
        return plain(out, shape, conditions, params=params, macs=macs, act_ops=5 * units, elementwise_ops=4 * units,
                     bias_ops=8 * units if self.bias else 0,
                     backward_macs=self._backward_macs(steps, batch, grad) if needed else 0,
                     saves_input=saves_input, saves_output=saves_output, extra_saved=extra, output_grad=needed,
                     param_tensors=self.layers * dirs * ((4 if self.bias else 2) + (1 if self.P != 0 else 0)))

    def _backward_macs(self, steps, batch, grad):
        """What the backward needs (see the module's docstring), when anything needs a gradient."""
        dirs = 2 if self.bidirectional else 1
        hidden = self.P if self.P != 0 else self.H
        gates = 4 * self.H
        macs = 0
        for layer in range(self.layers):
            inputs = self.I if layer == 0 else hidden * dirs
            # a deeper layer's input needs a gradient whenever anything does (it carries the earlier layers')
            products = (1 if grad.input or layer > 0 else 0) + (1 if grad.trainable else 0)
            per = steps * batch * gates * inputs * products
            per = per + (steps - 1) * batch * gates * hidden + (steps * batch * gates * hidden if grad.trainable else 0)
            if self.P != 0:
                per = per + steps * batch * self.H * self.P * (2 if grad.trainable else 1)
            macs = macs + dirs * per
        return macs

    def _saved_by_onednn(self, steps, batch, copied):
        """``(elements saved besides the input's and output's storages, saves_input, saves_output)`` on oneDNN's
        fused path: per call its input, ``h_0`` and ``c_0`` (views of two zero tensors, one per state), output,
        final states and workspace."""
        dirs = 2 if self.bidirectional else 1
        H = self.H
        first = steps * batch * self.I
        saved = where(copied, first, 0) + 2 * self.layers * dirs * batch * H
        for layer in range(self.layers):
            inputs = self.I if layer == 0 else dirs * H
            saved = saved + dirs * (steps * batch * H + 2 * batch * H + workspace(steps, batch, inputs, H))
            if not self.bias:
                saved = saved + dirs * 4 * H * (inputs + H)
            if dirs == 2 and layer < self.layers - 1:
                saved = saved + steps * batch * 2 * H  # both directions' outputs concatenated: the next input
        if dirs == 1:  # the last call's output is the layer's output: counted by plain() as saves_output
            saved = saved - steps * batch * H
        return saved, negate(copied), dirs == 1

    def _saved_by_cells(self, steps, batch, trainable, copied):
        """The same on PyTorch's cell-by-cell path (with a projection): per step the gates (their sigmoids and
        tanh keep them), ``tanh(c)``, the cell state the next step multiplies, and, for the weight gradients,
        the hidden state before and after the projection; per layer the input of its input projection."""
        dirs = 2 if self.bidirectional else 1
        H, P = self.H, self.P
        hidden = P if P != 0 else H
        saved = self.layers * dirs * batch * (H + (hidden if trainable else 0))  # c_0 always, h_0 for its matmul
        per_step = steps * batch * (4 * H + H) + (steps - 1) * batch * H
        if trainable:
            per_step = per_step + (steps * batch * H + (steps - 1) * batch * P if P != 0 else (steps - 1) * batch * H)
        saved = saved + self.layers * dirs * per_step
        if trainable:
            # the first layer's input: the input itself, or one contiguous copy per direction
            saved = saved + where(copied, dirs * steps * batch * self.I, 0)
            saved = saved + (self.layers - 1) * steps * batch * dirs * hidden
        return saved, both(trainable, negate(copied)), False

    def states(self, shape) -> tuple:
        """The shapes of the final hidden and cell states (``h_n``, ``c_n``) on ``shape``."""
        dirs = 2 if self.bidirectional else 1
        batch = (shape[0] if self.batch_first else shape[1],) if len(shape) == 3 else ()
        hidden = self.P if self.P != 0 else self.H
        return (dirs * self.layers, *batch, hidden), (dirs * self.layers, *batch, self.H)
