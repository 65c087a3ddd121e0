"""Primitives: the only hand-written cost formulas in convcost, each written once.

Every variant and block is a composition of these; see :mod:`convcost.costs`
for the counting conventions. Defaults follow PyTorch's modules (bias on,
stride 1, padding 0, dilation 1, groups 1) and inputs are channels-first
``(N, C, *spatial)`` except for :class:`Linear`, which acts on the last axis.

>>> Conv(C=3, O=32, K=3, P=1).cost((1, 3, 32, 32)).macs
884736
>>> ConvTranspose(C=32, O=16, K=3, S=2).cost((1, 32, 128, 128)).output_shape
(1, 16, 257, 257)
>>> Linear(C=96, O=384, bias=False).cost((1, 56, 56, 96)).macs
115605504
"""

from __future__ import annotations

import dataclasses

import sympy

from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import Layer, Merge
from convcost.shapes import (
    adaptive_window_reads,
    ceil_pool_size,
    conv_size,
    equal_sizes,
    numel,
    per_axis,
    same_padding,
    transposed_size,
)
from convcost.spec import choice, count, flag, padding, size, spec
from convcost.symbols import SPATIAL, C, G, K, O, r

ACTIVATIONS = ("relu", "relu6", "sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "gelu", "leaky_relu", "elu")


def _channels_first(layer, shape, rank: int | None, channels) -> tuple:
    """Check rank and channel count of a channels-first input; returns carried conditions."""
    if rank is not None and len(shape) != rank:
        raise ConvcostError(f"{layer!r}: expects a {rank}-D input (N, C, ...), got shape {_fmt(shape)}")
    if len(shape) < 2:
        raise ConvcostError(f"{layer!r}: expects an input (N, C, ...), got shape {_fmt(shape)}")
    return require(sympy.Eq(shape[1], channels), layer, f"input has {shape[1]} channels, expected C={channels}")


def _fmt(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def _dims_field(default: int = 2):
    return choice(default, (1, 2, 3))


def _plain(out_shape, in_shape, conditions=(), **counts) -> Cost:
    """A cost whose memory traffic is its input, output and parameters."""
    params = counts.get("params", 0)
    return Cost(
        output_shape=out_shape,
        activation_elements=numel(out_shape),
        memory_access=numel(in_shape) + numel(out_shape) + params,
        conditions=conditions,
        **counts,
    )


def _shape_rule(layer, shape, conditions=()):
    """A layer that only moves data: no parameters, no arithmetic."""
    return _plain(layer.reshape(shape), shape, conditions)


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
    dims: int = _dims_field()

    def default_input(self):
        return (1, self.C, *SPATIAL[self.dims])

    def axes(self) -> tuple:
        """``(kernel, stride, dilation)`` per spatial axis."""
        return tuple(
            zip(
                per_axis(self.K, self.dims, self, "K"),
                per_axis(self.S, self.dims, self, "S"),
                per_axis(self.D, self.dims, self, "D"),
            )
        )

    def validate(self):
        self.axes()  # tuple lengths match dims
        if self.P not in ("same", "valid"):
            per_axis(self.P, self.dims, self, "P")
        if self.P == "same":  # three-valued: a symbolic stride is carried as a condition by _cost
            for _, s, _ in self.axes():
                require(sympy.Eq(s, 1), self, f"padding='same' needs stride 1, got S={self.S}")

    def _cost(self, shape):
        conditions = _channels_first(self, shape, self.dims + 2, self.C)
        conditions += _divisible(self, "C", self.C, "G", self.G) + _divisible(self, "O", self.O, "G", self.G)
        pads = (0,) * self.dims if self.P in ("same", "valid") else per_axis(self.P, self.dims, self, "P")
        out = []
        for length, (k, s, d), p in zip(shape[2:], self.axes(), pads):
            if self.P == "same":  # PyTorch pads d*(k-1) in total, so the size is kept
                conditions += require(sympy.Eq(s, 1), self, f"padding='same' needs stride 1, got S={s}")
                out.append(length)
                continue
            if sympy.simplify(d * (k - 1) - 2 * p).is_nonpositive is not True:  # else it fits any input
                conditions += require(
                    length + 2 * p >= d * (k - 1) + 1,
                    self,
                    f"the kernel K={k} (dilation {d}) is wider than the padded input {length} + 2*{p}",
                )
            out.append(conv_size(length, k, s, p, d))
        out_shape = (shape[0], self.O, *out)
        taps = sympy.Mul(*(k for k, _, _ in self.axes()))
        positions = numel(out_shape)
        return _plain(
            out_shape,
            shape,
            conditions,
            params=self.O * (self.C / self.G) * taps + (self.O if self.bias else 0),
            macs=positions * (self.C / self.G) * taps,
            bias_ops=positions if self.bias else 0,
        )


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
    convcost.errors.ConvcostError: ConvTranspose(C=4, O=4, K=3, S=2, output_padding=2): output_padding=2 must be smaller than the stride S=2 or the dilation D=1
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
    dims: int = _dims_field()

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

    def _cost(self, shape):
        conditions = _channels_first(self, shape, self.dims + 2, self.C)
        conditions += _divisible(self, "C", self.C, "G", self.G) + _divisible(self, "O", self.O, "G", self.G)
        out = []
        for length, (k, s, p, d, op) in zip(shape[2:], self.axes()):
            conditions += require(
                sympy.Or(op < s, op < d),
                self,
                f"output_padding={op} must be smaller than the stride S={s} or the dilation D={d}",
            )
            size_out = transposed_size(length, k, s, p, d, op)
            conditions += require(size_out >= 1, self, f"the output size {size_out} is not positive")
            out.append(size_out)
        out_shape = (shape[0], self.O, *out)
        taps = sympy.Mul(*(k for k, *_ in self.axes()))
        return _plain(
            out_shape,
            shape,
            conditions,
            params=self.C * (self.O / self.G) * taps + (self.O if self.bias else 0),
            macs=numel(shape) * (self.O / self.G) * taps,
            bias_ops=numel(out_shape) if self.bias else 0,
        )


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

    def _cost(self, shape):
        conditions = require(sympy.Eq(shape[-1], self.C), self, f"the last axis has {shape[-1]} features, expected C={self.C}")
        out_shape = (*shape[:-1], self.O)
        rows = numel(shape[:-1])
        return _plain(
            out_shape,
            shape,
            conditions,
            params=self.C * self.O + (self.O if self.bias else 0),
            macs=rows * self.C * self.O,
            bias_ops=numel(out_shape) if self.bias else 0,
        )


@spec
class BatchNorm(Layer):
    """Batch normalisation over channel axis 1 (``nn.BatchNorm1d/2d/3d``), eval mode.

    params = 2C when affine; one fused multiply-add per element (``norm_ops``).
    """

    C: object = size(C)
    affine: bool = flag(True)

    def default_input(self):
        return (1, self.C, *SPATIAL[2])

    def _cost(self, shape):
        conditions = _channels_first(self, shape, None, self.C)
        return _plain(shape, shape, conditions, params=2 * self.C if self.affine else 0, norm_ops=numel(shape))


@spec
class Activation(Layer):
    """An element-wise activation function: one ``act_ops`` per element, no parameters."""

    kind: str = choice("relu", ACTIVATIONS)

    def _cost(self, shape):
        return _plain(shape, shape, act_ops=numel(shape))


@spec
class MaxPool(Layer):
    """Max pooling (``nn.MaxPool1d/2d/3d``); ``S`` defaults to the kernel, as in PyTorch.

    ``pool_ops`` = outputs x window taps.

    >>> MaxPool(K=3, S=2, ceil_mode=True).cost((1, 96, 109, 109)).output_shape
    (1, 96, 54, 54)
    """

    K: object = size(K, per_axis=True)
    S: object = size(None, per_axis=True)
    P: object = count(0, per_axis=True)
    D: object = size(1, per_axis=True)
    ceil_mode: bool = flag(False)
    dims: int = _dims_field()

    def __post_init__(self):
        if self.S is None:
            object.__setattr__(self, "S", self.K)
        super().__post_init__()

    def _window(self):
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
        for k, _, p, _ in self._window():
            require(2 * p <= k, self, f"padding P={p} must be at most half the kernel K={k}")

    def _cost(self, shape):
        _rank(self, shape, self.dims + 2)
        conditions = ()
        rule = ceil_pool_size if self.ceil_mode else conv_size
        out = []
        for length, (k, s, p, d) in zip(shape[2:], self._window()):
            size_out = rule(length, k, s, p, d)
            if self.ceil_mode:  # a last window may hang over the edge: PyTorch only needs one output
                conditions += require(size_out >= 1, self, f"the window K={k} leaves no output on an input of {length}")
            else:
                conditions += require(
                    length + 2 * p >= d * (k - 1) + 1, self, f"the window K={k} is wider than the padded input {length}"
                )
            out.append(size_out)
        out_shape = (*shape[:2], *out)
        taps = sympy.Mul(*(k for k, *_ in self._window()))
        return _plain(out_shape, shape, conditions, pool_ops=numel(out_shape) * taps)


@spec
class AvgPool(MaxPool):
    """Average pooling (``nn.AvgPool1d/2d/3d``); same windows as :class:`MaxPool`, no dilation."""

    def validate(self):
        if any(d != 1 for *_, d in self._window()):
            raise ConvcostError(f"{self!r}: average pooling has no dilation")
        super().validate()

    def _cost(self, shape):
        cost = super()._cost(shape)
        if self.dims != 3:
            return cost
        # PyTorch's avg_pool3d (CPU and meta) also refuses an input shorter than the kernel, padding aside
        extra = ()
        for length, (k, *_) in zip(shape[2:], self._window()):
            extra += require(length >= k, self, f"PyTorch's 3-D average pooling needs each input axis >= the kernel K={k}, got {length}")
        return dataclasses.replace(cost, conditions=cost.conditions + extra)


@spec
class AdaptiveAvgPool(Layer):
    """Adaptive average pooling to a fixed output size (``nn.AdaptiveAvgPool1d/2d/3d``).

    ``pool_ops`` = elements read by all bins (the input once when the bins tile it).

    >>> AdaptiveAvgPool(1).cost((1, 16, 8, 8)).pool_ops
    1024
    """

    output_size: object = size(1, per_axis=True)
    dims: int = _dims_field()

    def _cost(self, shape):
        _rank(self, shape, self.dims + 2)
        bins = per_axis(self.output_size, self.dims, self, "output_size")
        reads, conditions = numel(shape[:2]), ()
        for length, b in zip(shape[2:], bins):
            axis_reads, carried = adaptive_window_reads(length, b, self)
            reads, conditions = reads * axis_reads, conditions + carried
        return _plain((*shape[:2], *bins), shape, conditions, pool_ops=reads)


@spec
class AdaptiveMaxPool(AdaptiveAvgPool):
    """Adaptive max pooling (``nn.AdaptiveMaxPool1d/2d/3d``); counted as :class:`AdaptiveAvgPool`."""


@spec
class PixelShuffle(Layer):
    """Depth to space (``nn.PixelShuffle``): (N, C r^2, H, W) -> (N, C, rH, rW); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, c / self.r**2, self.r * h, self.r * w)

    def _cost(self, shape):
        _rank(self, shape, 4)
        return _shape_rule(self, shape, _divisible(self, "the channel count", shape[1], "r**2", self.r**2))


@spec
class PixelUnshuffle(Layer):
    """Space to depth (``nn.PixelUnshuffle``): (N, C, rH, rW) -> (N, C r^2, H, W); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, c * self.r**2, h / self.r, w / self.r)

    def _cost(self, shape):
        _rank(self, shape, 4)
        conditions = _divisible(self, "the height", shape[2], "r", self.r) + _divisible(self, "the width", shape[3], "r", self.r)
        return _shape_rule(self, shape, conditions)


@spec
class ChannelShuffle(Layer):
    """ShuffleNet's channel shuffle (``nn.ChannelShuffle``): a permutation of channels in G groups."""

    G: object = size(G)

    def reshape(self, shape):
        return shape

    def _cost(self, shape):
        return _shape_rule(self, shape, _divisible(self, "the channel count", shape[1], "G", self.G))


@spec
class Flatten(Layer):
    """Flatten axes ``start_dim..end_dim`` into one (``nn.Flatten``; a view, no work counted)."""

    start_dim: int = 1
    end_dim: int = -1

    def reshape(self, shape):
        start = self.start_dim % len(shape)
        end = self.end_dim % len(shape)
        if start > end:
            raise ConvcostError(f"{self!r}: start_dim comes after end_dim for a {len(shape)}-D input")
        return (*shape[:start], numel(shape[start : end + 1]), *shape[end + 1 :])

    def _cost(self, shape):
        return Cost(output_shape=self.reshape(shape))


@spec
class Narrow(Layer):
    """The slice ``start .. start+length-1`` of axis ``dim`` (``torch.narrow``; a view, no work counted).

    ShuffleNet V2 splits its channels in two halves with it (``x.chunk(2, dim=1)``).

    >>> Narrow(dim=1, start=58, length=58).cost((1, 116, 28, 28)).output_shape
    (1, 58, 28, 28)
    >>> Narrow(dim=1, start=64, length=58).cost((1, 116, 28, 28))
    Traceback (most recent call last):
    ...
    convcost.errors.ConvcostError: Narrow(dim=1, start=64, length=58): start=64 + length=58 goes past the 116 elements of axis 1
    """

    dim: int
    start: object = count(dataclasses.MISSING)
    length: object = size()

    def validate(self):
        if not isinstance(self.dim, int) or isinstance(self.dim, bool):
            raise ConvcostError(f"{self!r}: dim={self.dim!r} must be an integer axis")

    def axis(self, shape) -> int:
        """The sliced axis of an input of ``shape``, counted from 0."""
        if not -len(shape) <= self.dim < len(shape):
            raise ConvcostError(f"{self!r}: dim={self.dim!r} is not an axis of a {len(shape)}-D input")
        return self.dim % len(shape)

    def reshape(self, shape):
        axis = self.axis(shape)
        return (*shape[:axis], self.length, *shape[axis + 1 :])

    def _cost(self, shape):
        out, axis = self.reshape(shape), self.axis(shape)
        conditions = require(
            self.start + self.length <= shape[axis],
            self,
            f"start={self.start} + length={self.length} goes past the {shape[axis]} elements of axis {axis}",
        )
        return Cost(output_shape=out, conditions=conditions)


@spec
class Identity(Layer):
    """Pass the input through (``nn.Identity``, and dropout at inference); costs nothing."""

    def _cost(self, shape):
        return Cost(output_shape=shape)


@spec
class Add(Merge):
    """Element-wise sum of equal-shaped inputs: one ``elementwise_ops`` per element per extra input."""

    def _cost(self, shapes):
        conditions = ()
        for other in shapes[1:]:
            conditions += equal_sizes(shapes[0], other, self, "added tensors")
        out = shapes[0]
        return Cost(
            output_shape=out,
            elementwise_ops=numel(out) * (len(shapes) - 1),
            activation_elements=numel(out),
            memory_access=sum(numel(s) for s in shapes) + numel(out),
            conditions=conditions,
        )


@spec
class Mul(Merge):
    """Element-wise product with broadcasting (SE's channel scaling): one op per output element per extra input."""

    def _cost(self, shapes):
        out, conditions = list(shapes[0]), ()
        for other in shapes[1:]:
            if len(other) != len(out):
                raise ConvcostError(f"{self!r}: cannot broadcast shapes {_fmt(shapes[0])} and {_fmt(other)}")
            for i, (a, b) in enumerate(zip(out, other)):
                if a == 1:
                    out[i] = b
                elif b != 1:
                    conditions += equal_sizes((a,), (b,), self, "multiplied tensors")
        out = tuple(out)
        return Cost(
            output_shape=out,
            elementwise_ops=numel(out) * (len(shapes) - 1),
            activation_elements=numel(out),
            memory_access=sum(numel(s) for s in shapes) + numel(out),
            conditions=conditions,
        )


@spec
class Concat(Merge):
    """Concatenation along an axis (``torch.cat``, channels by default): data movement only."""

    dim: int = 1

    def _cost(self, shapes):
        axis = self.dim % len(shapes[0])
        conditions = ()
        for other in shapes[1:]:
            a = shapes[0][:axis] + shapes[0][axis + 1 :]
            b = other[:axis] + other[axis + 1 :] if len(other) == len(shapes[0]) else other
            conditions += equal_sizes(a, b, self, f"tensors concatenated along axis {axis}")
        out = (*shapes[0][:axis], sympy.Add(*(s[axis] for s in shapes)), *shapes[0][axis + 1 :])
        return Cost(
            output_shape=out,
            activation_elements=numel(out),
            memory_access=sum(numel(s) for s in shapes) + numel(out),
            conditions=conditions,
        )


def _divisible(layer, what: str, value, divisor: str, by) -> tuple:
    """``value`` divisible by ``by``; ``what``/``divisor`` name them in the message (``C=6 ... G=4``)."""
    shown = f"{what}={value}" if what.isidentifier() else f"{what} {value}"
    return require(sympy.Eq(sympy.Mod(value, by), 0), layer, f"{shown} is not divisible by {divisor}={by}")


def _rank(layer, shape, rank):
    if len(shape) != rank:
        raise ConvcostError(f"{layer!r}: expects a {rank}-D input (N, C, ...), got shape {_fmt(shape)}")
