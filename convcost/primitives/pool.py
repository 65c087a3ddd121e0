"""Max, average and adaptive pooling over 1, 2 or 3 spatial axes.

>>> MaxPool(K=3, S=2, ceil_mode=True).cost((1, 96, 109, 109)).output_shape
(1, 96, 54, 54)
>>> AdaptiveAvgPool(1).cost((1, 16, 8, 8)).pool_ops
1024
"""

from __future__ import annotations

import dataclasses

from convcost.arith import both, eq, ge, le, negate, prod
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import plain, rank
from convcost.primitives.conv import dims_field
from convcost.shapes import adaptive_window_reads, ceil_pool_size, conv_size, numel, per_axis
from convcost.spec import count, flag, size, spec
from convcost.symbols import K


@spec
class MaxPool(Layer):
    """Max pooling (``nn.MaxPool1d/2d/3d``); ``S`` defaults to the kernel, as in PyTorch.

    ``pool_ops`` = outputs x window taps.
    """

    K: object = size(K, per_axis=True)
    S: object = size(None, per_axis=True)
    P: object = count(0, per_axis=True)
    D: object = size(1, per_axis=True)
    ceil_mode: bool = flag(False)
    dims: int = dims_field()

    #: training mode keeps the argmax of every window (int64) besides the input
    saves_indices = True

    def __post_init__(self):
        if self.S is None:
            object.__setattr__(self, "S", self.K)
        super().__post_init__()

    def window(self) -> tuple:
        """``(kernel, stride, padding, dilation)`` per spatial axis."""
        n = self.dims
        return tuple(
            zip(
                per_axis(self.K, n, self, "K"),
                per_axis(self.S, n, self, "S"),
                per_axis(self.P, n, self, "P"),
                per_axis(self.D, n, self, "D"),
            )
        )

    def validate(self):
        for k, _, p, _ in self.window():
            require(le(2 * p, k), self, lambda: f"padding P={p} must be at most half the kernel K={k}")

    def kernel_kind(self) -> str:
        # a window per output: on CPU tens of times slower per element than a plain element-wise pass
        return "pooling"

    def autocast_rule(self) -> str:
        return "fp32" if self.dims == 3 else "keep"  # max_pool3d and avg_pool3d are float32 operators

    def _cost(self, shape, grad=TRAINING):
        rank(self, shape, self.dims + 2)
        conditions = ()
        rule = ceil_pool_size if self.ceil_mode else conv_size
        window = self.window()
        out = []
        for length, (k, s, p, d) in zip(shape[2:], window):
            size_out = rule(length, k, s, p, d)
            if self.ceil_mode:  # a last window may hang over the edge: PyTorch only needs one output
                conditions += require(ge(size_out, 1), self,
                                      lambda: f"the window K={k} leaves no output on an input of {length}")
            else:
                conditions += require(
                    ge(length + 2 * p, d * (k - 1) + 1), self,
                    lambda: f"the window K={k} is wider than the padded input {length}"
                )
            out.append(size_out)
        out_shape = (*shape[:2], *out)
        taps = prod(k for k, *_ in window)
        indices = numel(out_shape) if grad.input and self.saves_indices else 0
        return plain(out_shape, shape, conditions, pool_ops=numel(out_shape) * taps,
                     saves_input=grad.input, saved_indices=indices, output_grad=grad.input)


@spec
class AvgPool(MaxPool):
    """Average pooling (``nn.AvgPool1d/2d/3d``); same windows as :class:`MaxPool`, no dilation."""

    saves_indices = False

    def validate(self):
        if any(d != 1 for *_, d in self.window()):
            raise ConvcostError(f"{self!r}: average pooling has no dilation")
        super().validate()

    def _cost(self, shape, grad=TRAINING):
        cost = super()._cost(shape, grad)
        if self.dims != 3:
            return cost
        # PyTorch's avg_pool3d (CPU and meta) also refuses an input shorter than the kernel, padding aside
        extra = ()
        for length, (k, *_) in zip(shape[2:], self.window()):
            extra += require(ge(length, k), self,
                             lambda: "PyTorch's 3-D average pooling needs each input axis >= the "
                                     f"kernel K={k}, got {length}")
        return dataclasses.replace(cost, conditions=cost.conditions + extra) if extra else cost


@spec
class AdaptiveAvgPool(Layer):
    """Adaptive average pooling to a fixed output size (``nn.AdaptiveAvgPool1d/2d/3d``).

    ``pool_ops`` = elements read by all bins (the input once when the bins tile it).
    """

    output_size: object = size(1, per_axis=True)
    dims: int = dims_field()

    def kernel_kind(self) -> str:
        return "elementwise"

    def autocast_rule(self) -> str:
        return "fp32" if self.dims == 3 else "keep"  # adaptive_avg_pool3d, adaptive_max_pool3d: float32

    def _cost(self, shape, grad=TRAINING):
        rank(self, shape, self.dims + 2)
        bins = per_axis(self.output_size, self.dims, self, "output_size")
        reads, conditions = numel(shape[:2]), ()
        for length, b in zip(shape[2:], bins):
            axis_reads, carried = adaptive_window_reads(length, b, self)
            reads, conditions = reads * axis_reads, conditions + carried
        out_shape = (*shape[:2], *bins)
        return plain(out_shape, shape, conditions, pool_ops=reads, output_grad=grad.input,
                     **self._saved(shape, out_shape, bins, grad))

    def _saved(self, shape, out_shape, bins, grad) -> dict:
        # PyTorch computes an all-ones output size as a mean, whose backward needs no saved tensor
        return {"saves_input": both(grad.input, negate(both(*(eq(b, 1) for b in bins))))}


@spec
class AdaptiveMaxPool(AdaptiveAvgPool):
    """Adaptive max pooling (``nn.AdaptiveMaxPool1d/2d/3d``); counted as :class:`AdaptiveAvgPool`, but training
    keeps its input and the argmax indices (int64) whatever the output size."""

    def _saved(self, shape, out_shape, bins, grad) -> dict:
        return {"saves_input": grad.input, "saved_indices": numel(out_shape) if grad.input else 0}
