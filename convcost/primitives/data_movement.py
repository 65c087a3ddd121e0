"""Operations that only move or view data: pixel and channel shuffles, flatten, narrow, identity, spatial shift,
axis permutation (upsampling is :class:`convcost.primitives.Interpolate`).

None of them has parameters or multiply-accumulates; those that copy write their output once.

>>> PixelShuffle(2).cost((1, 32, 8, 8)).output_shape
(1, 8, 16, 16)
>>> Narrow(dim=1, start=58, length=58).cost((1, 116, 28, 28)).output_shape
(1, 58, 28, 28)
>>> Narrow(dim=1, start=64, length=58).cost((1, 116, 28, 28))
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Narrow(dim=1, start=64, length=58): start=64 + length=58 goes past the 116 elements of
axis 1
>>> Shift().cost((1, 9, 4, 4)).macs
0
>>> Permute(dims=(0, 2, 3, 1)).cost((1, 8, 4, 5)).output_shape
(1, 4, 5, 8)
"""

from __future__ import annotations

import dataclasses

from convcost.arith import div, le
from convcost.costs import Cost
from convcost.errors import ConvcostError, require
from convcost.layers import TRAINING, Layer
from convcost.primitives.base import divisible, plain, rank
from convcost.shapes import numel
from convcost.spec import count, size, spec
from convcost.symbols import G, r


class _Rearrangement(Layer):
    """A layer that only moves data: no parameters, no arithmetic; subclasses give ``reshape``."""

    abstract_base = True

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> str:
        return "data_movement"

    def reshape(self, shape) -> tuple:
        raise NotImplementedError

    def moved(self, shape, conditions=(), grad=TRAINING) -> Cost:
        # a copy into a fresh tensor; its backward is the inverse permutation, which saves nothing
        return plain(self.reshape(shape), shape, conditions, output_grad=grad.input)


@spec
class PixelShuffle(_Rearrangement):
    """Depth to space (``nn.PixelShuffle``): (N, C r^2, H, W) -> (N, C, rH, rW); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, div(c, self.r**2), self.r * h, self.r * w)

    def _cost(self, shape, grad=TRAINING):
        rank(self, shape, 4)
        return self.moved(shape, divisible(self, "the channel count", shape[1], "r**2", self.r**2), grad)


@spec
class PixelUnshuffle(_Rearrangement):
    """Space to depth (``nn.PixelUnshuffle``): (N, C, rH, rW) -> (N, C r^2, H, W); no parameters."""

    r: object = size(r)

    def reshape(self, shape):
        n, c, h, w = shape
        return (n, c * self.r**2, div(h, self.r), div(w, self.r))

    def _cost(self, shape, grad=TRAINING):
        rank(self, shape, 4)
        conditions = divisible(self, "the height", shape[2], "r", self.r) + divisible(self, "the width", shape[3], "r",
                                                                                      self.r)
        return self.moved(shape, conditions, grad)


@spec
class ChannelShuffle(_Rearrangement):
    """ShuffleNet's channel shuffle (``nn.ChannelShuffle``): a permutation of channels in G groups."""

    G: object = size(G)

    def reshape(self, shape):
        return shape

    def _cost(self, shape, grad=TRAINING):
        if len(shape) < 2:
            raise ConvcostError(f"{self!r}: expects an input (N, C, ...), got shape {tuple(shape)}")
        return self.moved(shape, divisible(self, "the channel count", shape[1], "G", self.G), grad)


@spec
class Flatten(Layer):
    """Flatten axes ``start_dim..end_dim`` into one (``nn.Flatten``; a view, no work counted)."""

    start_dim: int = 1
    end_dim: int = -1

    def validate(self):
        for name in ("start_dim", "end_dim"):
            value = getattr(self, name)
            if type(value) is not int:
                raise ConvcostError(f"{self!r}: {name}={value!r} must be an integer axis")

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> None:
        return None

    def reshape(self, shape):
        if not (-len(shape) <= self.start_dim < len(shape) and -len(shape) <= self.end_dim < len(shape)):
            raise ConvcostError(f"{self!r}: axes {self.start_dim}..{self.end_dim} do not exist "
                                f"in a {len(shape)}-D input")
        start = self.start_dim % len(shape)
        end = self.end_dim % len(shape)
        if start > end:
            raise ConvcostError(f"{self!r}: start_dim comes after end_dim for a {len(shape)}-D input")
        return (*shape[:start], numel(shape[start : end + 1]), *shape[end + 1 :])

    def _cost(self, shape, grad=TRAINING):
        return Cost(output_shape=self.reshape(shape), output_view=True, output_grad=grad.input)


@spec
class Narrow(Layer):
    """The slice ``start .. start+length-1`` of axis ``dim`` (``torch.narrow``; a view, no work counted).

    ShuffleNet V2 splits its channels in two halves with it (``x.chunk(2, dim=1)``).
    """

    dim: int
    start: object = count(dataclasses.MISSING)
    length: object = size()

    def validate(self):
        if type(self.dim) is not int:
            raise ConvcostError(f"{self!r}: dim={self.dim!r} must be an integer axis")

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> None:
        return None

    def axis(self, shape) -> int:
        """The sliced axis of an input of ``shape``, counted from 0."""
        if not -len(shape) <= self.dim < len(shape):
            raise ConvcostError(f"{self!r}: dim={self.dim!r} is not an axis of a {len(shape)}-D input")
        return self.dim % len(shape)

    def reshape(self, shape):
        axis = self.axis(shape)
        return (*shape[:axis], self.length, *shape[axis + 1 :])

    def _cost(self, shape, grad=TRAINING):
        out, axis = self.reshape(shape), self.axis(shape)
        conditions = require(
            le(self.start + self.length, shape[axis]),
            self,
            lambda: f"start={self.start} + length={self.length} goes past the {shape[axis]} elements of axis {axis}",
        )
        return Cost(output_shape=out, conditions=conditions, output_view=True, output_grad=grad.input)


@spec
class Identity(Layer):
    """Pass the input through (``nn.Identity``, and dropout at inference); costs nothing."""

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> None:
        return None

    def _cost(self, shape, grad=TRAINING):
        return Cost(output_shape=shape, output_view=True, output_grad=grad.input)


@spec
class Shift(Layer):
    """The Shift operation (Wu et al., 2018): channels split into ``K**2`` equal groups, each moved
    one step of a KxK neighbourhood (zeros fill the edge; the remainder stays put). No parameters,
    no multiply-accumulates: only data movement."""

    K: object = size(3)

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> str:
        return "data_movement"

    def _cost(self, shape, grad=TRAINING):  # its backward moves the gradient back: nothing is saved
        rank(self, shape, 4)
        return plain(shape, shape, output_grad=grad.input)


@spec
class Permute(Layer):
    """A reordering of axes (``x.permute(dims)``, torchvision's ``Permute``): a view, no work counted.

    ConvNeXt moves channels last around its LayerNorm and linear layers with it.
    """

    dims: tuple = (0, 2, 3, 1)

    def validate(self):
        if not isinstance(self.dims, tuple) or sorted(self.dims) != list(range(len(self.dims))) \
                or not all(type(d) is int for d in self.dims):
            raise ConvcostError(f"{self!r}: dims={self.dims!r} must be a permutation of 0..n-1")

    def autocast_rule(self) -> str:
        return "keep"  # not on the CPU autocast lists: it runs in its input's dtype

    def kernel_kind(self) -> None:
        return None

    def _cost(self, shape, grad=TRAINING):  # a view of its input's storage
        if len(shape) != len(self.dims):
            raise ConvcostError(f"{self!r}: permutes {len(self.dims)} axes, got a {len(shape)}-D input")
        return Cost(output_shape=tuple(shape[d] for d in self.dims), output_view=True, output_grad=grad.input)


