"""Convolution and transposed convolution over 1, 2 or 3 spatial axes.

>>> Conv(C=3, O=32, K=3, P=1).cost((1, 3, 32, 32)).macs
884736
>>> ConvTranspose(C=32, O=16, K=3, S=2).cost((1, 32, 128, 128)).output_shape
(1, 16, 257, 257)
"""

from __future__ import annotations

from convcost.arith import both, div, either, eq, ge, known_nonpositive, lt, mod, negate, prod, where
from convcost.errors import require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import backward, channels_first, divisible, plain
from convcost.shapes import conv_size, numel, per_axis, transposed_size
from convcost.spec import choice, count, flag, padding, size, spec
from convcost.symbols import SPATIAL, C, K, O


def dims_field(default: int = 2):
    """The number of spatial axes, 1, 2 or 3 (``nn.Conv1d/2d/3d``)."""
    return choice(default, (1, 2, 3))


@spec
class Conv(Layer):
    """Convolution over 1, 2 or 3 spatial axes (``nn.Conv1d/2d/3d``).

    ``K, S, P, D`` are one value for every axis or a tuple with one per axis;
    ``P`` may also be ``"same"`` (stride 1) or ``"valid"``.

    params = O (C/G) prod(K) + O [bias];  MACs = N O prod(out) (C/G) prod(K).

    >>> Conv(C=6, O=9, K=3, G=4).cost((1, 6, 8, 8))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: Conv(C=6, O=9, K=3, G=4): C=6 is not divisible by G=4
    >>> Conv(C=16, O=32, K=3, S=2, P=1, dims=3).cost((1, 16, 3, 512, 512)).output_shape
    (1, 32, 2, 256, 256)
    """

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = padding(0)
    D: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)
    dims: int = dims_field()

    def default_input(self):
        return (1, self.C, *SPATIAL[self.dims])

    def axes(self) -> tuple:
        """``(kernel, stride, dilation)`` per spatial axis."""
        n = self.dims
        return tuple(zip(per_axis(self.K, n, self, "K"), per_axis(self.S, n, self, "S"),
                         per_axis(self.D, n, self, "D")))

    def validate(self):
        self.axes()  # tuple lengths match dims
        if self.P not in ("same", "valid"):
            per_axis(self.P, self.dims, self, "P")
        if self.P == "same":  # three-valued: a symbolic stride is carried as a condition by _cost
            for _, s, _ in self.axes():
                require(eq(s, 1), self, lambda: f"padding='same' needs stride 1, got S={self.S}")

    def kernel_kind(self) -> str:
        if self.dims == 3:
            return "conv3d"
        if self.G != 1:
            return "depthwise_conv" if self.G == self.C else "grouped_conv"
        return "pointwise_conv" if prod(k for k, _, _ in self.axes()) == 1 else "dense_conv"

    def autocast_rule(self) -> str:
        return "lower"  # conv1d/2d/3d: cast to the autocast dtype

    def autocast_weight(self, cost, input_grads):
        # convolution_backward is one kernel for input and weight gradients: it keeps the weight copy whenever
        # the layer records a backward at all
        return cost.params - (self.O if self.bias else 0) if cost.output_grad else 0

    def _cost(self, shape, grad=TRAINING):
        conditions = channels_first(self, shape, self.dims + 2, self.C)
        conditions += divisible(self, "C", self.C, "G", self.G) + divisible(self, "O", self.O, "G", self.G)
        pads = (0,) * self.dims if self.P in ("same", "valid") else per_axis(self.P, self.dims, self, "P")
        axes = self.axes()
        out = []
        for length, (k, s, d), p in zip(shape[2:], axes, pads):
            if self.P == "same":  # PyTorch pads d*(k-1) in total, so the size is kept
                conditions += require(eq(s, 1), self, lambda: f"padding='same' needs stride 1, got S={s}")
                out.append(length)
                continue
            if not known_nonpositive(d * (k - 1) - 2 * p):  # else the kernel fits any input
                conditions += require(
                    ge(length + 2 * p, d * (k - 1) + 1),
                    self,
                    lambda: f"the kernel K={k} (dilation {d}) is wider than the padded input {length} + 2*{p}",
                )
            out.append(conv_size(length, k, s, p, d))
        out_shape = (shape[0], self.O, *out)
        taps = prod(k for k, _, _ in axes)
        positions = numel(out_shape)
        per_position = div(self.C, self.G) * taps
        macs = positions * per_position
        recorded = grad.input or grad.trainable  # else autograd records nothing
        copied, copy = self._padded_copy(shape, axes)
        return plain(
            out_shape,
            shape,
            conditions,
            params=self.O * per_position + (self.O if self.bias else 0),
            macs=macs,
            bias_ops=positions if self.bias else 0,
            backward_macs=backward(macs, grad),
            # for the weight gradient; saved even when the weight is frozen
            saves_input=both(recorded, negate(copied)),
            extra_saved=where(both(recorded, copied), copy, 0),
            output_grad=recorded,
            param_tensors=2 if self.bias else 1,
        )

    def _padded_copy(self, shape, axes) -> tuple:
        """Whether PyTorch pads a copy of the input first, and its size: ``padding="same"`` with an odd total
        padding ``d (k - 1)`` on some axis puts the odd element in a copy, which the convolution then saves."""
        if self.P != "same":
            return False, 0
        odd = [mod(d * (k - 1), 2) for k, _, d in axes]
        copied = either(*(eq(o, 1) for o in odd))
        return copied, numel((*shape[:2], *(length + o for length, o in zip(shape[2:], odd))))


@spec
class ConvTranspose(Layer):
    """Transposed convolution (``nn.ConvTranspose1d/2d/3d``), groups, dilation, output padding.

    Each input position scatters ``(O/G) prod(K)`` products, so
    MACs = N C prod(in) (O/G) prod(K): counted on the input, not the output.

    >>> ConvTranspose(C=64, O=32, K=4, S=2, P=1, G=2).cost((1, 64, 28, 28)).macs
    12845056
    >>> ConvTranspose(C=4, O=4, K=3, S=2, output_padding=2).cost((1, 4, 5, 5))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: ConvTranspose(C=4, O=4, K=3, S=2, output_padding=2): output_padding=2 must be smaller
    than the stride S=2 or the dilation D=1
    """

    C: object = size(C)
    O: object = size(O)
    K: object = size(K, per_axis=True)
    S: object = size(1, per_axis=True)
    P: object = count(0, per_axis=True)
    output_padding: object = count(0, per_axis=True)
    D: object = size(1, per_axis=True)
    G: object = size(1)
    bias: bool = flag(True)
    dims: int = dims_field()

    def default_input(self):
        return (1, self.C, *SPATIAL[self.dims])

    def axes(self) -> tuple:
        """``(kernel, stride, padding, dilation, output_padding)`` per spatial axis."""
        n = self.dims
        return tuple(
            zip(
                per_axis(self.K, n, self, "K"),
                per_axis(self.S, n, self, "S"),
                per_axis(self.P, n, self, "P"),
                per_axis(self.D, n, self, "D"),
                per_axis(self.output_padding, n, self, "output_padding"),
            )
        )

    def validate(self):
        self.axes()

    def kernel_kind(self) -> str:
        return "transposed_conv"

    def autocast_rule(self) -> str:
        return "lower"  # conv_transpose1d/2d/3d: cast to the autocast dtype

    def autocast_weight(self, cost, input_grads):
        return cost.params - (self.O if self.bias else 0) if cost.output_grad else 0

    def _cost(self, shape, grad=TRAINING):
        conditions = channels_first(self, shape, self.dims + 2, self.C)
        conditions += divisible(self, "C", self.C, "G", self.G) + divisible(self, "O", self.O, "G", self.G)
        axes = self.axes()
        out = []
        for length, (k, s, p, d, op) in zip(shape[2:], axes):
            conditions += require(
                either(lt(op, s), lt(op, d)),
                self,
                lambda: f"output_padding={op} must be smaller than the stride S={s} or the dilation D={d}",
            )
            size_out = transposed_size(length, k, s, p, d, op)
            conditions += require(ge(size_out, 1), self, lambda: f"the output size {size_out} is not positive")
            out.append(size_out)
        out_shape = (shape[0], self.O, *out)
        taps = prod(k for k, *_ in axes)
        per_input = div(self.O, self.G) * taps
        macs = numel(shape) * per_input
        recorded = grad.input or grad.trainable
        return plain(
            out_shape,
            shape,
            conditions,
            params=self.C * per_input + (self.O if self.bias else 0),
            macs=macs,
            bias_ops=numel(out_shape) if self.bias else 0,
            backward_macs=backward(macs, grad),
            saves_input=recorded,
            output_grad=recorded,
            param_tensors=2 if self.bias else 1,
        )
